"""Runbook Investigation 1, "Check NextAuth.js logs" (`vercel logs | grep NextAuth`), counted and explained.

Every ``[next-auth][error][CODE]`` (v4), ``[auth][error] Type`` (v5) and ``?error=Code`` redirect in the
window, with what the code means and what fixes it (``ERROR_CODES``). Check ``auth.error-codes``: one
conclusion for all codes seen, the worst code setting the severity; logs that cannot be read, or hold no line
in the window, are inconclusive (a quiet log is not a clean one).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from opsnb.checks.findings import CouldNotLook, check, conclude, could_not_look
from opsnb.checks.logs.window import utc_column
from opsnb.checks.severity import ORDER

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

LOGS_HINT = (
    "point log_source at the Vercel log drain (an NDJSON file, a .gz or a folder of them) or at "
    "vercel://PROJECT/DEPLOYMENT, and check that the drain delivers"
)
CODES_IN_TITLE = 3  # the rest are in the evidence table


@dataclass(frozen=True)
class ErrorCode:
    """What a NextAuth error code means, what fixes it, and how bad it is when seen in the window."""

    explanation: str
    fix: str
    severity: str = "P2"


# NextAuth v4 codes ([next-auth][error][CODE]), Auth.js v5 error types ([auth][error] Type) and the codes of
# the error pages (?error=…).
ERROR_CODES: dict[str, ErrorCode] = {
    "CLIENT_FETCH_ERROR": ErrorCode(
        "the client could not fetch /api/auth/session or /providers (NEXTAUTH_URL wrong or unreachable)",
        "set NEXTAUTH_URL to the public URL exactly; check the route answers",
        "P1",
    ),
    "CLIENT_SESSION_ERROR": ErrorCode(
        "useSession/getSession got an error from /api/auth/session",
        "look for the server-side error logged at the same time",
        "P2",
    ),
    "OAUTH_CALLBACK_ERROR": ErrorCode(
        "the provider's callback failed (often checks.state / PKCE cookie missing, or redirect_uri_mismatch)",
        "cookies SameSite=Lax, Path=/ on the same domain as NEXTAUTH_URL; redirect URIs as in the runbook",
        "P1",
    ),
    "OAUTH_CALLBACK_HANDLER_ERROR": ErrorCode(
        "the callback handler threw (adapter or profile problem)",
        "read the stack trace; check the database adapter and the profile() mapping",
        "P1",
    ),
    "OAUTH_GET_ACCESS_TOKEN_ERROR": ErrorCode(
        "exchanging the code for tokens failed (client secret or redirect URI wrong)",
        "check GOOGLE_CLIENT_ID/SECRET and the authorized redirect URIs",
        "P1",
    ),
    "OAUTH_PARSE_PROFILE_ERROR": ErrorCode(
        "the provider's profile could not be parsed", "check the provider's profile() and scopes", "P2"
    ),
    "SIGNIN_OAUTH_ERROR": ErrorCode(
        "starting the OAuth sign-in failed (provider misconfigured)",
        "check the provider id/secret and NEXTAUTH_URL",
        "P1",
    ),
    "JWT_SESSION_ERROR": ErrorCode(
        "a session JWT could not be decrypted (NEXTAUTH_SECRET changed or differs between deployments)",
        "restore the previous secret or let users sign in again; one secret everywhere",
        "P1",
    ),
    "SESSION_ERROR": ErrorCode(
        "reading the session failed (adapter/database error)",
        "check the database and the Session table",
        "P1",
    ),
    "NO_SECRET": ErrorCode(
        "NEXTAUTH_SECRET is not set in production",
        "set NEXTAUTH_SECRET (openssl rand -base64 32) and redeploy",
        "P1",
    ),
    "MISSING_NEXTAUTH_API_ROUTE_ERROR": ErrorCode(
        "pages/api/auth/[...nextauth] (or app/api/auth/[...nextauth]/route) is missing",
        "add the catch-all route",
        "P1",
    ),
    "CALLBACK_CREDENTIALS_HANDLER_ERROR": ErrorCode(
        "the credentials authorize() threw", "fix authorize(); return null for bad credentials", "P2"
    ),
    "ADAPTER_ERROR": ErrorCode(
        "the database adapter failed", "check DATABASE_URL and the Prisma adapter tables", "P1"
    ),
    "OAuthAccountNotLinked": ErrorCode(
        "a user signed in with a provider whose email already belongs to an account linked to another provider",
        "let them use the original provider, or link accounts deliberately (allowDangerousEmailAccountLinking "
        "only for trusted providers)",
        "P3",
    ),
    "OAuthCallback": ErrorCode("error page: the OAuth callback failed", "see OAUTH_CALLBACK_ERROR", "P2"),
    "OAuthSignin": ErrorCode(
        "error page: building the authorization URL failed", "check the provider configuration", "P2"
    ),
    "Configuration": ErrorCode(
        "error page: server configuration problem (secret, URL, provider)",
        "read the server log at the same time",
        "P1",
    ),
    "AccessDenied": ErrorCode(
        "the signIn callback refused the user", "expected when the callback denies; check its rules", "P3"
    ),
    "Verification": ErrorCode(
        "email sign-in link expired or already used", "ask the user to request a new link", "P3"
    ),
    "JWTSessionError": ErrorCode(
        "v5: the session JWT could not be decrypted (AUTH_SECRET changed)",
        "restore the secret or rotate with AUTH_SECRET_1",
        "P1",
    ),
    "UntrustedHost": ErrorCode(
        "v5: the request host is not trusted",
        "set AUTH_URL or AUTH_TRUST_HOST=true (implied on Vercel)",
        "P1",
    ),
    "MissingCSRF": ErrorCode(
        "v5: the csrf cookie/token did not come back with the sign-in POST",
        "cookies: SameSite=Lax, Path=/, __Host- only on https",
        "P1",
    ),
    "InvalidCheck": ErrorCode(
        "v5: state/PKCE/nonce cookie missing or wrong (checks.state)",
        "same domain for the site and AUTH_URL; cookies SameSite=Lax",
        "P1",
    ),
    "CallbackRouteError": ErrorCode(
        "v5: the callback route threw", "read the cause in the same log line", "P1"
    ),
}
UNKNOWN_CODE = ErrorCode("not in this catalogue", "see the NextAuth/Auth.js errors reference", "P3")

_V4_PATTERN = re.compile(r"\[next-auth\]\[error\]\[([A-Za-z_]+)\]")
_V5_PATTERN = re.compile(r"\[auth\]\[error\]\s*([A-Za-z]+)")
_PAGE_PATTERN = re.compile(r"[?&]error=([A-Za-z]+)")
_ANY_CODE = r"\[next-auth\]\[error\]|\[auth\]\[error\]|error="  # cheap filter before the patterns
SUMMARY_COLUMNS = ["code", "count", "first", "last", "severity", "explanation", "fix"]


def error_codes_in(text: str) -> list[str]:
    """NextAuth/Auth.js error codes named in one log message (or request path with ?error=)."""
    if not isinstance(text, str):
        return []
    return _V4_PATTERN.findall(text) + _V5_PATTERN.findall(text) + _PAGE_PATTERN.findall(text)


def error_events(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per error code occurrence (timestamp, code) from a log frame with message/path columns."""
    import pandas as pd

    rows = []
    for column in ("message", "path"):
        if column not in frame.columns or frame.empty:
            continue
        text = frame[column].astype("string")
        hit = text.str.contains(_ANY_CODE, regex=True, na=False)
        for value, ts in zip(text[hit], frame.loc[hit, "timestamp"], strict=True):
            rows.extend({"timestamp": ts, "code": code} for code in dict.fromkeys(error_codes_in(str(value))))
    return pd.DataFrame(rows, columns=["timestamp", "code"])


def summarize_error_codes(events: pd.DataFrame) -> pd.DataFrame:
    """Per code: count, first/last seen, severity, explanation and fix (worst, then most frequent first)."""
    import pandas as pd

    if events.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    ts = utc_column(events["timestamp"])
    rows = []
    for code, group in events.assign(ts=ts).groupby("code"):
        info = ERROR_CODES.get(code, UNKNOWN_CODE)
        rows.append(
            {
                "code": code,
                "count": len(group),
                "first": group["ts"].min(),
                "last": group["ts"].max(),
                "severity": info.severity,
                "explanation": info.explanation,
                "fix": info.fix,
            }
        )
    summary = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    rank = summary["severity"].map(ORDER.index)
    order = summary.assign(rank=rank).sort_values(["rank", "count", "code"], ascending=[True, False, True])
    return order.drop(columns="rank").reset_index(drop=True)


@dataclass
class ErrorEvents:
    """The NextAuth error codes of one log window, and what was read to find them."""

    source: str
    scope: str  # "in the last 60 min" or "since 2024-05-01 12:00 UTC"
    lines: int  # log rows in the window
    events: pd.DataFrame  # timestamp, code
    error: str = ""  # why the logs could not be read ('' when they were)


def read_error_events(log_source: str, window_minutes: float = 60.0, since: str = "") -> ErrorEvents:
    """The error codes in the last ``window_minutes`` of ``log_source`` — or since ``since`` (ISO time, e.g.
    when a fix went live). A source that cannot be read gives no events and an ``error`` saying why."""
    import pandas as pd

    from opsnb.checks.logs import read_logs
    from opsnb.checks.logs.window import utc, window_start
    from opsnb.checks.secrets import scrub

    start = window_start(window_minutes, since)
    scope = (
        f"since {start:%Y-%m-%d %H:%M} UTC"
        if utc(since) is not None
        else f"in the last {window_minutes:g} min"
    )
    no_events = pd.DataFrame(columns=["timestamp", "code"])
    try:
        read = read_logs(log_source, since=start)
    except Exception as exc:
        if not could_not_look(exc):
            raise  # a bug in opsnb
        return ErrorEvents(log_source, scope, 0, no_events, scrub(f"{type(exc).__name__}: {exc}"))
    if read.error:
        return ErrorEvents(log_source, scope, 0, no_events, read.error)
    return ErrorEvents(log_source, scope, len(read.frame), error_events(read.frame))


@check("auth.error-codes", hint=LOGS_HINT)
def check_error_codes(seen: ErrorEvents) -> pd.DataFrame:
    """Investigation 1: NextAuth's error codes in the window, each with its meaning and fix; the worst sets
    the severity (sign-in broken for everyone: P1; single users: P3)."""
    if seen.error:
        raise CouldNotLook(f"could not read the logs at {seen.source}: {seen.error}", LOGS_HINT)
    if not seen.lines:
        raise CouldNotLook(
            f"no log line {seen.scope} in {seen.source}: a quiet log is not a clean one", LOGS_HINT
        )
    summary = summarize_error_codes(seen.events)
    if summary.empty:
        return conclude(
            "pass",
            f"No NextAuth error code in the logs {seen.scope}",
            detail=f"{seen.lines} log lines read from {seen.source}",
            evidence=summary,
        )
    top = summary.head(CODES_IN_TITLE).to_dict(orient="records")
    counted = ", ".join(f"{row['code']} ×{row['count']}" for row in top)
    more = f" and {len(summary) - len(top)} more" if len(summary) > len(top) else ""
    worst = str(summary.loc[0, "severity"])
    return conclude(
        "fail" if worst in ("P0", "P1") else "warn",
        f"NextAuth logged {counted}{more} {seen.scope}",
        severity=worst,
        detail=" ".join(f"{row['code']}: {row['explanation']}. Fix: {row['fix']}." for row in top),
        evidence=summary,
    )


def plot_error_codes(seen: ErrorEvents | None, bucket: str = "5min") -> Figure | None:
    """The window's error codes over time, stacked per ``bucket``; None when there is nothing to plot."""
    import matplotlib.pyplot as plt
    import pandas as pd

    if seen is None or seen.events.empty:
        return None
    events = seen.events
    ts = utc_column(events["timestamp"])
    counts = (
        events.assign(ts=ts)
        .dropna(subset=["ts"])
        .groupby([pd.Grouper(key="ts", freq=bucket), "code"])
        .size()
        .unstack(fill_value=0)
    )
    if counts.empty:
        return None
    counts.index = [t.strftime("%m-%d %H:%M") for t in counts.index]
    fig, ax = plt.subplots(figsize=(9, 3))
    counts.plot(kind="bar", stacked=True, width=0.9, rot=45, fontsize=7, ax=ax)
    ax.set_xlabel(f"UTC, {bucket} buckets")
    ax.set_ylabel("errors")
    ax.set_title(f"NextAuth error codes {seen.scope}")
    fig.tight_layout()
    return fig


def error_codes_step(log_source: str, window_minutes: float = 60.0, since: str = "") -> ErrorEvents | None:
    """Investigation 1 as one notebook step: read the logs and judge their error codes (shown), returning the
    events for the chart. An empty ``log_source`` means the step is not configured: skipped with a note,
    not a blind spot."""
    if not log_source:
        print("log_source is empty: the log step is skipped")
        return None
    from IPython.display import display

    events = read_error_events(log_source, window_minutes, since=since)
    display(check_error_codes(events))
    return events
