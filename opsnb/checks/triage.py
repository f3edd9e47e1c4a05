"""500 triage: health probes, error rate and the runbook's alert rule, error signatures, common causes.

Follows operations-runbook.md, "P0 Response Checklist" and "Issue: Site Returns 500 Error". The pure parts
(signatures, per-minute error rate, the alert rule, onset) take DataFrames and are unit-tested; ``check_*``
functions run one probe/query/call, record findings (opsnb.checks.findings) and return the table to show.

Severities (runbook "Severity Levels" / "Alert Configuration"):
- /api/health non-200 → P0 (site down; "Alert: Site Down … returns non-200 … page on-call").
- database unreachable → P0 ("Alert: Database Connection Failed … page on-call").
- error rate > 5 % for 5 minutes → P1 ("Alert: High Error Rate"; partial outage).
- another probed URL failing → P1 (core feature broken, partial outage).
- required environment variable missing in production → P1 (runbook "Cause 3").
- connection use > 80 % of max_connections → P2 ("High Database Connection Usage" warning alert);
  ≥ 95 % → P1 (pool exhaustion, runbook "Cause 1").
- unhandled exceptions / crashed functions while the rate stays under the alert rule → P2.
- unresolved Sentry error issues seen in the judged window while the rate stays under the alert rule → P2.
"""

from __future__ import annotations

import datetime as _dt
import re
import time
from dataclasses import dataclass, field
from typing import Any

from opsnb.checks import findings

ALERT_RATE = 0.05  # runbook "Alert: High Error Rate": error rate > 5 % …
ALERT_MINUTES = 5  # … for 5 minutes
MIN_REQUESTS = 20  # a 5-minute window with fewer requests is too small to judge a rate
CONN_WARN_PCT = 80.0  # runbook "High Database Connection Usage: > 80% of connection pool used"
CONN_EXHAUSTED_PCT = 95.0  # beyond this new connections fail soon ("too many clients already")
NOTIFY = {
    "P0": "Page the on-call engineer now; post in the #incidents Slack channel; update the status page "
    "(major outage); post-mortem afterwards.",
    "P1": "Post in the #incidents Slack channel; update the status page (partial outage); post-mortem afterwards.",
    "P2": "Notify #engineering during business hours.",
    "P3": "Track it as a ticket.",
}

# Signature normalization: RE2-compatible (pyarrow) and Python-compatible patterns, applied in order.
SIGNATURE_RULES: list[tuple[str, str]] = [
    (r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", "<uuid>"),
    (r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+\.[A-Za-z0-9.-]+", "<email>"),
    (r"\b([A-Za-z]{1,12}_)[A-Za-z0-9]{8,}\b", r"\1<id>"),  # cart_3k2j4h5g6f, dpl_…, ord_…
    (r"\b([A-Za-z]{1,12}_)[A-Za-z]*[0-9][A-Za-z0-9]*\b", r"\1<id>"),  # tenant_3, usr_000001
    (r"\b(0x)?[0-9a-fA-F]{8,}\b", "<hex>"),
    (r"[0-9]+", "<n>"),
]
SIGNATURE_CHARS = 200
_PY_RULES = [(re.compile(p), r) for p, r in SIGNATURE_RULES]
STACK_FRAME = re.compile(r"^\s+at (?:async )?(?P<fn>[^\s(]+)?\s*\(?(?P<file>[^():]+)", re.M)
EXCEPTION = re.compile(
    r"\b(?P<type>[A-Z][A-Za-z]*(?:Error|Exception)|Runtime\.[A-Za-z]+)\b:?\s*(?P<text>[^\n]*)"
)


# --- signatures ------------------------------------------------------------------------------------------
def signature(message: str | None) -> str:
    """A message's first line with ids, uuids, hex and numbers folded (the grouping key for errors)."""
    first = (message or "").split("\n", 1)[0].strip()
    for pattern, repl in _PY_RULES:
        first = pattern.sub(repl, first)
    return first[:SIGNATURE_CHARS] or "(no message)"


def signatures(messages: Any) -> Any:
    """``signature`` over a Series of messages, vectorized with pyarrow compute (same rules)."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = pa.array(messages.astype("str") if len(messages) else [], type=pa.string(), from_pandas=True)
    arr = pc.fill_null(arr, "")
    first = pc.list_element(pc.split_pattern(arr, "\n", max_splits=1), 0)
    first = pc.utf8_trim_whitespace(first)
    for pattern, repl in SIGNATURE_RULES:
        first = pc.replace_substring_regex(first, pattern=pattern, replacement=repl)
    first = pc.utf8_slice_codeunits(first, 0, SIGNATURE_CHARS)
    first = pc.if_else(pc.equal(first, ""), "(no message)", first)
    return pd.Series(
        first.to_numpy(zero_copy_only=False), index=messages.index, name="signature", dtype="str"
    )


def is_error(frame: Any) -> Any:
    """Boolean Series: 5xx responses and crashed functions (statusCode -1)."""
    status = frame["statusCode"]
    return ((status >= 500) | (status == -1)).fillna(False).astype(bool)


def errors_only(frame: Any) -> Any:
    """The error rows (5xx or crashed) of a log frame."""
    return frame[is_error(frame)]


def top_signatures(frame: Any, n: int = 10) -> Any:
    """Error rows grouped by signature, path and status: count, first/last seen, deployments, an example.

    Sorted by count (most frequent first), at most ``n`` rows (n <= 0: all).
    """
    import pandas as pd

    errs = errors_only(frame)
    columns = [
        "signature",
        "path",
        "statusCode",
        "count",
        "first_seen",
        "last_seen",
        "deployments",
        "example",
    ]
    if not len(errs):
        return pd.DataFrame(columns=columns)
    errs = errs.assign(signature=signatures(errs["message"]), path=errs["path"].fillna("(none)"))
    grouped = errs.groupby(["signature", "path", "statusCode"], sort=False, dropna=False)
    out = grouped.agg(
        count=("timestamp", "size"),
        first_seen=("timestamp", "min"),
        last_seen=("timestamp", "max"),
        deployments=("deploymentId", lambda s: ", ".join(sorted(s.dropna().unique().astype(str))[:3])),
        example=("message", "first"),
    ).reset_index()
    out["example"] = out["example"].fillna("").astype(str).str.slice(0, 300)
    out = out.sort_values(["count", "last_seen"], ascending=[False, False]).reset_index(drop=True)
    return out[columns].head(n) if n > 0 else out[columns]


def summarize_5xx(frame: Any) -> Any:
    """The grouped 5xx summary (all groups, no example/deployments): what bench/log_triage.py times."""
    import pandas as pd

    errs = errors_only(frame)
    if not len(errs):
        return pd.DataFrame(columns=["signature", "path", "statusCode", "count", "first_seen", "last_seen"])
    keyed = pd.DataFrame(
        {
            "signature": signatures(errs["message"]),
            "path": errs["path"],
            "statusCode": errs["statusCode"],
            "timestamp": errs["timestamp"],
        }
    )
    out = (
        keyed.groupby(["signature", "path", "statusCode"], sort=False, dropna=False)["timestamp"]
        .agg(count="size", first_seen="min", last_seen="max")
        .reset_index()
    )
    return out.sort_values("count", ascending=False, kind="stable").reset_index(drop=True)


# --- error rate and the alert rule -----------------------------------------------------------------------
def requests_of(frame: Any) -> Any:
    """One row per request: lines with a status, collapsed by requestId (an error line wins)."""
    reqs = frame[frame["statusCode"].notna()]
    if not len(reqs):
        return reqs
    reqs = reqs.assign(_err=is_error(reqs))
    has_id = reqs["requestId"].notna()
    with_id = reqs[has_id].sort_values("_err", ascending=False, kind="stable").drop_duplicates("requestId")
    import pandas as pd

    out = pd.concat([with_id, reqs[~has_id]]).sort_values("timestamp", kind="stable")
    return out.drop(columns="_err")


def error_rate(frame: Any, start: Any = None, end: Any = None, freq: str = "1min") -> Any:
    """Requests, errors and error rate per minute (empty minutes included between ``start`` and ``end``)."""
    import pandas as pd

    reqs = requests_of(frame)
    err = is_error(reqs).to_numpy(dtype="int64") if len(reqs) else []
    counts = pd.DataFrame({"requests": 1, "errors": err}, index=pd.DatetimeIndex(reqs["timestamp"]))
    per = counts.resample(freq).sum() if len(counts) else pd.DataFrame(columns=["requests", "errors"])
    if start is not None or end is not None:
        lo = pd.Timestamp(start).floor(freq) if start is not None else (per.index.min() if len(per) else None)
        hi = pd.Timestamp(end).floor(freq) if end is not None else (per.index.max() if len(per) else None)
        if lo is not None and hi is not None and lo <= hi:
            full = pd.date_range(lo, hi, freq=freq, tz="UTC", name="minute")
            per = per.reindex(full, fill_value=0)
    per.index.name = "minute"
    per = per.astype({"requests": "int64", "errors": "int64"})
    per["rate"] = (per["errors"] / per["requests"].where(per["requests"] > 0)).fillna(0.0)
    return per


@dataclass
class AlertRule:
    """The runbook's "High Error Rate" rule evaluated over a window of minutes."""

    fired: bool
    threshold: float
    minutes: int
    windows_judged: int  # 5-minute windows with at least min_requests requests
    first_breach: Any = None  # start of the first breaching window (UTC)
    last_breach: Any = None  # end of the last breaching window
    worst: dict[str, Any] = field(default_factory=dict)  # start, end, requests, errors, rate
    requests: int = 0
    errors: int = 0

    @property
    def rate(self) -> float:
        """Overall error rate over the evaluated window."""
        return self.errors / self.requests if self.requests else 0.0


def alert_rule(
    per_minute: Any,
    threshold: float = ALERT_RATE,
    minutes: int = ALERT_MINUTES,
    min_requests: int = MIN_REQUESTS,
) -> AlertRule:
    """Error rate > ``threshold`` over any ``minutes`` consecutive minutes (windows with fewer than
    ``min_requests`` requests are not judged). ``per_minute`` comes from :func:`error_rate`."""
    total_req = int(per_minute["requests"].sum()) if len(per_minute) else 0
    total_err = int(per_minute["errors"].sum()) if len(per_minute) else 0
    result = AlertRule(False, threshold, minutes, 0, requests=total_req, errors=total_err)
    if not len(per_minute):
        return result
    req = per_minute["requests"].rolling(minutes, min_periods=1).sum()
    err = per_minute["errors"].rolling(minutes, min_periods=1).sum()
    if len(per_minute) >= minutes:  # full windows only, once there are enough minutes
        req, err = req.iloc[minutes - 1 :], err.iloc[minutes - 1 :]
    judged = req >= min_requests
    rate = (err / req.where(req > 0)).fillna(0.0)
    breach = judged & (rate > threshold)
    result.windows_judged = int(judged.sum())
    if judged.any():
        worst_end = rate[judged].idxmax()
        step = per_minute.index[1] - per_minute.index[0] if len(per_minute) > 1 else _dt.timedelta(minutes=1)
        result.worst = {
            "start": worst_end - step * (minutes - 1),
            "end": worst_end + step,
            "requests": int(req[worst_end]),
            "errors": int(err[worst_end]),
            "rate": float(rate[worst_end]),
        }
    if breach.any():
        step = per_minute.index[1] - per_minute.index[0] if len(per_minute) > 1 else _dt.timedelta(minutes=1)
        ends = breach[breach].index
        result.fired = True
        result.first_breach = ends[0] - step * (minutes - 1)
        result.last_breach = ends[-1] + step
    return result


def onset(frame: Any, rule: AlertRule) -> Any:
    """When the errors started: the first error line at or after the first breaching window's start
    (or the first error at all when the rule did not fire); None without errors."""
    errs = errors_only(frame)
    if not len(errs):
        return None
    if rule.fired and rule.first_breach is not None:
        after = errs[errs["timestamp"] >= rule.first_breach]
        if len(after):
            return after["timestamp"].iloc[0]
    return errs["timestamp"].iloc[0]


def crashed_functions(frame: Any) -> Any:
    """Crashed invocations (statusCode -1) by path and deployment: count, first/last seen, message."""
    import pandas as pd

    crashed = frame[(frame["statusCode"] == -1).fillna(False).astype(bool)]
    columns = ["path", "deploymentId", "count", "first_seen", "last_seen", "signature"]
    if not len(crashed):
        return pd.DataFrame(columns=columns)
    crashed = crashed.assign(signature=signatures(crashed["message"]))
    out = (
        crashed.groupby(["path", "deploymentId"], dropna=False)
        .agg(
            count=("timestamp", "size"),
            first_seen=("timestamp", "min"),
            last_seen=("timestamp", "max"),
            signature=("signature", "first"),
        )
        .reset_index()
        .sort_values("count", ascending=False)
    )
    return out[columns].reset_index(drop=True)


def exception_of(message: str | None) -> tuple[str, str] | None:
    """(exception line, top stack frame) when the message carries a stack trace, else None."""
    if not message or "\n" not in message:
        return None
    frame = STACK_FRAME.search(message)
    if frame is None and "Traceback (most recent call last)" not in message:
        return None
    found = EXCEPTION.search(message)
    exc = f"{found.group('type')}: {found.group('text')}".strip().rstrip(":") if found else signature(message)
    top = ""
    if frame is not None:
        file = frame.group("file").strip()
        file = re.sub(r"^.*?/(?:\.next/server/)?(app|pages|src|lib)/", r"\1/", file)
        top = f"{frame.group('fn') or '<anonymous>'} ({file})"
    return signature(exc), top


def unhandled_exceptions(frame: Any) -> Any:
    """Error lines that carry a stack trace, grouped by exception and top frame (runbook "Cause 2")."""
    import pandas as pd

    errs = frame[frame["message"].fillna("").str.contains("\n", regex=False)]
    rows = []
    for ts, msg, path, dep in zip(
        errs["timestamp"], errs["message"], errs["path"], errs["deploymentId"], strict=True
    ):
        found = exception_of(msg)
        if found:
            rows.append(
                {"exception": found[0], "top_frame": found[1], "path": path, "deploymentId": dep, "ts": ts}
            )
    columns = ["exception", "top_frame", "paths", "count", "first_seen", "last_seen", "deployments"]
    if not rows:
        return pd.DataFrame(columns=columns)
    df = pd.DataFrame(rows)
    out = (
        df.groupby(["exception", "top_frame"])
        .agg(
            paths=("path", lambda s: ", ".join(sorted(s.dropna().unique()))),
            count=("ts", "size"),
            first_seen=("ts", "min"),
            last_seen=("ts", "max"),
            deployments=("deploymentId", lambda s: ", ".join(sorted(s.dropna().unique()))),
        )
        .reset_index()
        .sort_values("count", ascending=False)
    )
    return out[columns].reset_index(drop=True)


# --- checks (record findings, return a table) -------------------------------------------------------------
def check_health(
    app_url: str,
    extra_urls: list[str] | tuple[str, ...] = (),
    rounds: int = 3,
    pause_s: float = 0.5,
    health_path: str = "/api/health",
    timeout_s: float = 10.0,
) -> Any:
    """Probe /api/health (and ``extra_urls``, absolute or relative to ``app_url``) ``rounds`` times.

    Non-200 health in any round → P0 (site down); another URL non-200 → P1 (partial outage).
    Returns one row per probe: round, url, status, latency_ms, ok, error, body.
    """
    import pandas as pd

    from opsnb.checks.http import Prober

    base = app_url.rstrip("/")
    urls = [base + health_path] + [u if "://" in u else base + "/" + u.lstrip("/") for u in extra_urls]
    rows = []
    with Prober(timeout_s=timeout_s) as prober:
        for k in range(max(1, rounds)):
            if k:
                time.sleep(pause_s)
            for url in urls:
                p = prober.probe(url)
                rows.append(
                    {
                        "round": k + 1,
                        "url": url,
                        "status": p.status,
                        "latency_ms": p.latency_ms,
                        "ok": p.ok,
                        "error": p.error,
                        "body": p.body[:160],
                    }
                )
    table = pd.DataFrame(rows)
    for url in urls:
        probes = table[table["url"] == url]
        bad = probes[~probes["ok"]]
        statuses = ", ".join(str(s) if s == s and s is not None else "no answer" for s in probes["status"])
        lat = f"median {probes['latency_ms'].median():.0f} ms"
        if url == urls[0]:
            if len(bad):
                why = bad.iloc[0]["error"] or (bad.iloc[0]["body"] or "")[:120]
                findings.add(
                    "P0",
                    "Site down: /api/health is not 200",
                    f"{url}: {len(bad)} of {len(probes)} probes failed (status {statuses}); {why}",
                    evidence=bad.to_dict(orient="records"),
                    check="health",
                )
            else:
                findings.ok(
                    "Health endpoint answers 200", f"{url}: {len(probes)} probes, {lat}", check="health"
                )
        elif len(bad):
            findings.add(
                "P1",
                f"Partial outage: {url.removeprefix(base) or url} fails",
                f"{len(bad)} of {len(probes)} probes not 200 (status {statuses})",
                evidence=bad.to_dict(orient="records"),
                check="health",
            )
        else:
            findings.ok(
                f"{url.removeprefix(base)} answers 200", f"{len(probes)} probes, {lat}", check="health"
            )
    return table


@dataclass
class Changes:
    """Recent deployments and which one serves production (and since when)."""

    frame: Any  # deployments_frame columns, newest first
    live: dict[str, Any]
    error: str = ""


def what_changed(api_base: str, token_env: str, project: str, limit: int = 10) -> Changes:
    """Recent production deployments (``GET /v6/deployments``) and the live one (``GET /v9/projects``).

    An API failure is a P2 finding (triage continues without deployment markers).
    """
    import pandas as pd

    from opsnb.checks.clients.vercel import Vercel, VercelError, deployments_frame, live_deployment
    from opsnb.checks.secrets import secret

    try:
        with Vercel(secret(token_env), api_base) as api:
            deps = api.deployments(project, limit=limit)
            try:
                proj = api.project(project)
            except VercelError:
                proj = {}
    except VercelError as exc:
        findings.add("P2", "Cannot read deployments from Vercel", str(exc), check="deployments")
        return Changes(
            deployments_frame([]), {"uid": None, "url": "", "since": pd.NaT, "how": "unknown"}, str(exc)
        )
    live = live_deployment(proj, deps)
    if len(deps):
        newest = deps.iloc[0]
        findings.ok(
            "Recent deployments read",
            f"{len(deps)} deployments; newest {newest['uid']} ({newest['message']}) at {newest['created']:%Y-%m-%d %H:%M} UTC; "
            f"live: {live['uid']} since {live['since']:%H:%M} UTC ({live['how']})",
            check="deployments",
        )
    return Changes(deps, live)


@dataclass
class Triage:
    """The log-based picture: judged window, per-minute rate, the alert rule and where errors came from."""

    logs: Any  # opsnb.checks.logs.LogRead over the lookback
    window_start: Any
    window_end: Any
    window_why: str
    per_minute: Any  # error_rate over the lookback
    rule: AlertRule  # over the judged window
    onset: Any = None
    started_by: dict[str, Any] | None = None  # deployment live when errors started
    top: Any = None  # top_signatures over the judged window
    earlier: dict[str, Any] = field(default_factory=dict)  # errors before the judged window

    def window(self) -> Any:
        """Log rows inside the judged window."""
        f = self.logs.frame
        return f[(f["timestamp"] >= self.window_start) & (f["timestamp"] < self.window_end)]

    def rate_table(self) -> Any:
        """A one-row table of the judged window's numbers."""
        import pandas as pd

        r = self.rule
        return pd.DataFrame(
            [
                {
                    "window": f"{self.window_start:%H:%M}–{self.window_end:%H:%M} UTC",
                    "why": self.window_why,
                    "requests": r.requests,
                    "errors": r.errors,
                    "error_rate_%": round(100 * r.rate, 2),
                    "alert_rule_fired": r.fired,
                    "worst_5min_%": round(100 * r.worst.get("rate", 0.0), 2),
                    "onset": self.onset,
                    "started_by": (self.started_by or {}).get("uid"),
                }
            ]
        )


def read_window(source: str, lookback_minutes: int = 60, since: str = "") -> Any:
    """``read_logs`` over the last ``lookback_minutes`` (and after ``since`` when given); garbage → info finding."""
    from opsnb.checks.logs import read_logs

    start = _dt.timedelta(minutes=lookback_minutes)
    read = read_logs(source, since=start)
    if since:
        import pandas as pd

        lo = pd.Timestamp(since)
        lo = lo.tz_localize("UTC") if lo.tzinfo is None else lo.tz_convert("UTC")
        read.frame = read.frame[read.frame["timestamp"] >= lo].reset_index(drop=True)
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(read.garbage_kinds.items())) or "none"
    detail = (
        f"{len(read.files)} files, {read.lines} lines, {len(read.frame)} rows in the last {lookback_minutes} min; "
        f"{read.garbage} garbage lines ({kinds})"
    )
    if read.garbage:
        findings.add(
            "info",
            "Garbage log lines skipped",
            detail + "; samples: " + " | ".join(read.garbage_samples),
            check="logs",
        )
    else:
        findings.ok("Logs read", detail, check="logs")
    return read


def triage_errors(
    logs: Any,
    changes: Changes,
    *,
    window_minutes: int = 30,
    since: str = "",
    threshold: float = ALERT_RATE,
    alert_minutes: int = ALERT_MINUTES,
    min_requests: int = MIN_REQUESTS,
    now: Any = None,
) -> Triage:
    """Judge the recent logs by the runbook's alert rule and attribute the errors to a deployment.

    The judged window is the last ``window_minutes``, but never before the live deployment went live (or
    ``since``): errors of a deployment that no longer serves are history, reported as info. P1 when the rule
    fires, naming the onset, the deployment live then, and the top signature.
    """
    import pandas as pd

    from opsnb.checks.clients.vercel import deployment_at

    now = pd.Timestamp(now) if now is not None else pd.Timestamp.now(tz="UTC")
    frame = logs.frame
    starts = [(now - pd.Timedelta(minutes=window_minutes), f"last {window_minutes} min")]
    live_since = changes.live.get("since")
    if live_since is not None and pd.notna(live_since):
        starts.append(
            (
                pd.Timestamp(live_since),
                f"since {changes.live.get('uid')} went live ({changes.live.get('how')})",
            )
        )
    if since:
        lo = pd.Timestamp(since)
        starts.append(
            (lo.tz_localize("UTC") if lo.tzinfo is None else lo.tz_convert("UTC"), f"since {since}")
        )
    start, why = max(starts, key=lambda s: s[0])
    lookback_start = frame["timestamp"].min() if len(frame) else start
    per_minute = error_rate(frame, start=min(lookback_start, start), end=now)
    in_window = frame[(frame["timestamp"] >= start) & (frame["timestamp"] < now)]
    judged = error_rate(in_window, start=start, end=now)
    rule = alert_rule(judged, threshold, alert_minutes, min_requests)
    result = Triage(logs, start, now, why, per_minute, rule)
    result.top = top_signatures(in_window, n=10)
    before = errors_only(frame[frame["timestamp"] < start])
    if len(before):
        deps = ", ".join(before["deploymentId"].dropna().value_counts().index[:3])
        result.earlier = {
            "errors": len(before),
            "first": before["timestamp"].min(),
            "last": before["timestamp"].max(),
            "deployments": deps,
        }
        findings.add(
            "info",
            "Earlier errors outside the judged window",
            f"{len(before)} errors between {result.earlier['first']:%H:%M} and {result.earlier['last']:%H:%M} UTC "
            f"on {deps or 'unknown deployment'}; the judged window starts {start:%H:%M} UTC ({why})",
            check="error-rate",
        )
    result.onset = onset(in_window, rule)
    if result.onset is not None:
        result.started_by = deployment_at(changes.frame, result.onset)
        errs = errors_only(in_window)
        if result.started_by is None and len(errs):
            top_dep = errs["deploymentId"].dropna().value_counts()
            result.started_by = (
                {"uid": top_dep.index[0], "message": "", "created": pd.NaT} if len(top_dep) else None
            )
    window_txt = f"{start:%H:%M}–{now:%H:%M} UTC ({why})"
    if rule.fired:
        top = result.top.iloc[0] if len(result.top) else None
        dep = result.started_by or {}
        w = rule.worst
        created = dep.get("created")
        findings.add(
            "P1",
            f"High error rate: {100 * w['rate']:.1f} % > {100 * threshold:.0f} % for {alert_minutes} minutes",
            f"errors started {result.onset:%H:%M:%S} UTC, right after deployment {dep.get('uid')}"
            + (
                f" ({dep.get('message')}, created {created:%H:%M} UTC)"
                if created is not None and pd.notna(created)
                else ""
            )
            + f"; worst window {w['start']:%H:%M}–{w['end']:%H:%M}: {w['errors']}/{w['requests']} requests; "
            + (
                f"top signature: {top['signature']} on {top['path']} ({top['count']}×, HTTP {top['statusCode']})"
                if top is not None
                else ""
            )
            + f"; window {window_txt}",
            evidence={"worst": w, "started_by": dep.get("uid"), "top": result.top.head(3)},
            check="error-rate",
        )
    elif rule.windows_judged == 0:
        findings.ok(
            "Error rate: too little traffic to apply the alert rule",
            f"{rule.errors} errors in {rule.requests} requests in {window_txt}; "
            f"no {alert_minutes}-minute window with ≥ {min_requests} requests",
            check="error-rate",
        )
    else:
        findings.ok(
            f"Error rate under the alert rule ({100 * threshold:.0f} % for {alert_minutes} min)",
            f"{rule.errors} errors in {rule.requests} requests ({100 * rule.rate:.2f} %) in {window_txt}; "
            f"worst {alert_minutes}-minute window {100 * rule.worst.get('rate', 0.0):.2f} %",
            check="error-rate",
        )
    return result


def plot_error_rate(triage: Triage, changes: Changes, threshold: float = ALERT_RATE) -> Any:
    """Error rate per minute (bars) with requests (line), the alert threshold, deployment markers and the
    judged window shaded. Returns the matplotlib Figure."""
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    per = triage.per_minute
    fig, ax = plt.subplots(figsize=(10, 3.6))
    if len(per):
        x = per.index.tz_convert("UTC").tz_localize(None)
        ax.bar(
            x, 100 * per["rate"], width=1 / 1440 * 0.9, align="edge", color="#c0392b", label="error rate %"
        )
        ax2 = ax.twinx()
        ax2.plot(x, per["requests"], color="#7f8c8d", lw=1, label="requests/min")
        ax2.set_ylabel("requests / min")
        ax.axhline(100 * threshold, color="#e67e22", ls="--", lw=1, label=f"alert {100 * threshold:.0f} %")
        lo, hi = x.min(), x.max()
        ax.axvspan(
            triage.window_start.tz_convert("UTC").tz_localize(None),
            triage.window_end.tz_convert("UTC").tz_localize(None),
            color="#3498db",
            alpha=0.08,
            label="judged window",
        )
        for _, dep in changes.frame.iterrows():
            t = dep["created"].tz_convert("UTC").tz_localize(None)
            if lo <= t <= hi:
                live = dep["uid"] == changes.live.get("uid")
                ax.axvline(t, color="#2c3e50", lw=1.2 if live else 0.8, ls="-" if live else ":")
                ax.text(
                    t,
                    ax.get_ylim()[1] * 0.95,
                    f" {dep['uid'][:12]}{' (live)' if live else ''}\n {dep['message'][:28]}",
                    fontsize=7,
                    va="top",
                )
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
        ax.legend(loc="upper left", fontsize=7)
    ax.set_ylabel("error rate % (5xx + crashed)")
    ax.set_xlabel("UTC")
    ax.set_title("Error rate per minute, deployments marked")
    fig.tight_layout()
    return fig


def check_signatures(triage: Triage) -> Any:
    """Top error signatures in the judged window (finding when there are any); returns the table."""
    top = triage.top
    if len(top):
        first = top.iloc[0]
        findings.add(
            "P2" if not triage.rule.fired else "info",
            "Top error signature",
            f"{first['signature']} — {first['path']} HTTP {first['statusCode']}, {first['count']}×, "
            f"{first['first_seen']:%H:%M:%S}–{first['last_seen']:%H:%M:%S} UTC",
            check="signatures",
        )
    else:
        findings.ok("No 5xx errors in the judged window", check="signatures")
    return top


def check_crashes(triage: Triage) -> Any:
    """Crashed functions (statusCode -1) in the judged window; P2 when any (info when the P1 already fired)."""
    table = crashed_functions(triage.window())
    if len(table):
        total = int(table["count"].sum())
        findings.add(
            "info" if triage.rule.fired else "P2",
            f"Crashed functions: {total}",
            "; ".join(
                f"{r.path} on {r.deploymentId}: {r.count}× ({r.signature})"
                for r in table.head(3).itertuples()
            ),
            check="crashes",
        )
    else:
        findings.ok("No crashed functions (statusCode -1) in the judged window", check="crashes")
    return table


def check_unhandled_exceptions(triage: Triage) -> Any:
    """Runbook Cause 2: stack traces in the judged window, grouped by exception and top frame."""
    table = unhandled_exceptions(triage.window())
    if len(table):
        first = table.iloc[0]
        findings.add(
            "info" if triage.rule.fired else "P2",
            "Cause 2: unhandled exception in an API route",
            f"{first['exception']} at {first['top_frame']} on {first['paths']} — {first['count']}× "
            f"(deployment {first['deployments']}); fix: try/catch in the route, then redeploy",
            check="cause-exceptions",
        )
    else:
        findings.ok("Cause 2: no stack traces in the judged window", check="cause-exceptions")
    return table


def check_sentry(triage: Triage, api_base: str, token_env: str, org: str) -> Any:
    """P0 checklist 4, "Check Sentry for errors": the org's unresolved issues (``GET …/issues/``).

    Issues at level error/fatal last seen inside the judged window are "recent": P2 while the log-based
    alert rule did not fire (Sentry sees errors the logs do not), info when it did (the P1 already says
    it). Older issues are listed, not judged. ``token_env`` or ``org`` "" skips the step (info). A failing
    API call is P2, like the Vercel deployments. Returns the issues table (newest lastSeen first).
    """
    from opsnb.checks.clients.sentry import Sentry, SentryError, issues_frame
    from opsnb.checks.secrets import secret

    if not token_env or not org:
        findings.ok(
            "Sentry not configured: step skipped", "set sentry_token_env and sentry_org", check="sentry"
        )
        return issues_frame([])
    try:
        with Sentry(secret(token_env), api_base) as api:
            table = issues_frame(api.issues(org))
    except SentryError as exc:
        findings.add("P2", "Cannot read Sentry issues", str(exc), check="sentry")
        return issues_frame([])
    recent = table[table["level"].isin(["error", "fatal"]) & (table["lastSeen"] >= triage.window_start)]
    window = f"since {triage.window_start:%H:%M} UTC ({triage.window_why})"
    if len(recent):
        top = recent.sort_values("count", ascending=False).iloc[0]
        findings.add(
            "info" if triage.rule.fired else "P2",
            f"Sentry: {len(recent)} unresolved error issue(s) seen in the judged window",
            f"{top['shortId']} {top['title']} at {top['culprit']}: {top['count']} events, {top['userCount']} users, "
            f"{top['firstSeen']:%H:%M}–{top['lastSeen']:%H:%M} UTC; {window}; {top['permalink']}",
            evidence=recent,
            check="sentry",
        )
    else:
        findings.ok(
            "Sentry: no unresolved error issue seen in the judged window",
            f"{len(table)} unresolved issues in {org}, none at error level {window}",
            check="sentry",
        )
    return table


CONNECTIONS_SQL = """
SELECT count(*) FILTER (WHERE backend_type = 'client backend') AS connections,
       count(*) FILTER (WHERE backend_type = 'client backend' AND state = 'active') AS active,
       count(*) FILTER (WHERE state LIKE 'idle in transaction%%') AS idle_in_transaction,
       current_setting('max_connections')::int AS max_connections,
       current_setting('superuser_reserved_connections')::int AS reserved
FROM pg_stat_activity
"""


def check_database(
    database_url_env: str, warn_pct: float = CONN_WARN_PCT, exhausted_pct: float = CONN_EXHAUSTED_PCT
) -> Any:
    """Runbook step 4 + Cause 1: database reachable (SELECT via one query) and connections vs max_connections.

    Unreachable → P0; use ≥ ``exhausted_pct`` % of the usable slots → P1; ≥ ``warn_pct`` % → P2.
    """
    import pandas as pd

    from opsnb.checks.postgres import DatabaseError, connect

    started = time.perf_counter()
    try:
        with connect(database_url_env, connect_timeout_s=5, statement_timeout_ms=10_000) as db:
            row = db.rows(CONNECTIONS_SQL)[0]
    except DatabaseError as exc:
        findings.add("P0", "Database unreachable", str(exc), check="cause-database")
        return pd.DataFrame([{"reachable": False, "error": str(exc)}])
    usable = max(int(row["max_connections"]) - int(row["reserved"]), 1)
    pct = 100.0 * int(row["connections"]) / usable
    table = pd.DataFrame(
        [
            {
                "reachable": True,
                "latency_ms": round((time.perf_counter() - started) * 1000, 1),
                **row,
                "usable": usable,
                "use_%": round(pct, 1),
            }
        ]
    )
    detail = (
        f"{row['connections']} of {usable} usable connections ({pct:.0f} %), {row['active']} active, "
        f"{row['idle_in_transaction']} idle in transaction; max_connections {row['max_connections']}"
    )
    if pct >= exhausted_pct:
        findings.add(
            "P1",
            "Cause 1: connection pool exhausted",
            detail + "; restart the app or raise the pool size / use the pooler",
            check="cause-database",
        )
    elif pct >= warn_pct:
        findings.add(
            "P2", f"High database connection usage (> {warn_pct:.0f} %)", detail, check="cause-database"
        )
    else:
        findings.ok(
            "Cause 1: database reachable, connection pool not exhausted", detail, check="cause-database"
        )
    return table


def check_env_vars(
    required: list[str],
    api_base: str = "",
    token_env: str = "",
    project: str = "",
    target: str = "production",
) -> Any:
    """Runbook Cause 3: required variable NAMES vs Vercel's env API for ``target`` (or the local environment
    when no project is given). Values are never read. Missing → P1. Returns name, present, where."""
    import os

    import pandas as pd

    where = "local environment"
    if project and api_base:
        from opsnb.checks.clients.vercel import Vercel, VercelError
        from opsnb.checks.secrets import secret

        try:
            with Vercel(secret(token_env), api_base) as api:
                envs = api.env_names(project)
        except VercelError as exc:
            findings.add("P2", "Cannot list Vercel environment variables", str(exc), check="cause-env")
            return pd.DataFrame(columns=["name", "present", "where"])
        mask = envs["target"].str.split(",").apply(lambda t: target in t or not any(t))
        names = set(envs.loc[mask, "key"])
        where = f"Vercel project {project} ({target})"
    else:
        names = set(os.environ)
    table = pd.DataFrame([{"name": n, "present": n in names, "where": where} for n in required])
    missing = [n for n in required if n not in names]
    if missing:
        findings.add(
            "P1",
            f"Cause 3: missing environment variables: {', '.join(missing)}",
            f"not set in {where}; add with `vercel env add NAME {target}` and redeploy",
            check="cause-env",
        )
    else:
        findings.ok(
            "Cause 3: required environment variables present",
            f"{len(required)} names checked in {where}",
            check="cause-env",
        )
    return table


def rollback(
    triage: Triage, changes: Changes, api_base: str, token_env: str, project: str
) -> dict[str, Any] | None:
    """Mitigation: roll production back to the READY deployment before the one that started the errors
    (the runbook's `vercel alias set <previous-deployment>`), as a gated action. None when not needed."""
    from opsnb.checks.actions import action
    from opsnb.checks.clients.vercel import Vercel, previous_ready

    live = changes.live.get("uid")
    culprit = (triage.started_by or {}).get("uid")
    if not triage.rule.fired or not culprit:
        print("No rollback proposed: the alert rule did not fire for the live deployment.")
        return None
    if culprit != live:
        print(
            f"No rollback proposed: the errors started on {culprit}, which no longer serves (live: {live})."
        )
        return None
    target = previous_ready(changes.frame, culprit)
    if target is None:
        findings.add("P2", "No earlier READY deployment to roll back to", f"live {live}", check="rollback")
        return None
    plan = [
        f"roll back project {project}: POST {api_base.rstrip('/')}/v1/projects/{project}/rollback/{target['uid']}",
        f"  = `vercel alias set {target['url']} <production domain>` (runbook step 6)",
        f"from {culprit} (the deployment live when errors started) to {target['uid']} "
        f"({target['message']}, created {target['created']:%Y-%m-%d %H:%M} UTC)",
        "then re-run this runbook: health 200 and the error rate back under the alert rule",
    ]

    def apply() -> str:
        from opsnb.checks.secrets import secret

        with Vercel(secret(token_env), api_base) as api:
            return api.rollback(project, target["uid"])

    return action(f"Roll back production to {target['uid']}", plan, apply)


def verdict_and_notify() -> str:
    """The verdict line with the runbook's severity, response/resolution times and who to notify; printed."""
    from opsnb.checks.severity import describe, highest

    worst = highest([f.severity for f in findings.all_findings()])
    verdict = findings.verdict()
    lines = [f"Verdict: {verdict} — {describe(worst)}"]
    if worst in ("P0", "P1"):
        label = "P0 site down" if worst == "P0" else "P1 partial outage"
        lines.append(f"Severity: {label}.")
    if worst in NOTIFY:
        lines.append(f"Notify: {NOTIFY[worst]}")
    else:
        lines.append("Notify: nobody — no incident.")
    text = "\n".join(lines)
    print(text)
    return text
