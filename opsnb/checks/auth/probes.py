"""Runbook Investigation 4, "Test auth endpoint" (`curl https://your-domain.com/api/auth/session`): the
requests a browser makes to NextAuth's route, asked once and judged by several checks.

:func:`ask` GETs ``/api/auth/providers``, ``/csrf`` and ``/session`` signed out (and ``/session`` again
carrying the session cookie named by ``session_token_env`` when one is given) and keeps what came back:
status, latency, full body and the ``Set-Cookie`` headers. Checks here: ``auth.endpoints`` (each answers
200, fast), ``auth.signed-out-session`` (v4 answers ``{}``, v5 ``null``) and ``auth.csrf-token``. The
providers, cookies and session-token modules judge the same answers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from opsnb.checks.auth.environment import detect_version, env_names
from opsnb.checks.auth.facts import AUTH_PATH, ENDPOINTS, REACH_HINT, SLOW_AUTH_MS, listing
from opsnb.checks.findings import CouldNotLook, check, conclude
from opsnb.checks.http import Probe, Prober

if TYPE_CHECKING:
    import pandas as pd

MAX_BODY_CHARS = 65536  # a provider list is a few hundred bytes; anything far larger is not NextAuth's answer
SIGNED_OUT_SESSION = {"v4": {}, "v5": None}  # what /api/auth/session answers a request without cookies


@dataclass
class Answer:
    """One GET of an /api/auth endpoint: the probe (status, latency, error), the body and its Set-Cookie headers."""

    probe: Probe
    text: str = ""
    set_cookies: list[str] = field(default_factory=list)

    @property
    def answered(self) -> bool:
        """True when an HTTP status came back (whatever it was)."""
        return self.probe.status is not None

    @property
    def path(self) -> str:
        """The endpoint's path, e.g. /api/auth/csrf."""
        return urlsplit(self.probe.url).path

    def json(self) -> Any:
        """The body parsed as JSON; ValueError when it is not JSON (JSON ``null`` is None)."""
        return json.loads(self.text)

    def why_not(self) -> str:
        """Why the endpoint gave no answer: 'could not reach URL: error'."""
        return f"could not reach {self.probe.url}: {self.probe.error}"


@dataclass
class AuthAnswers:
    """What the app's /api/auth endpoints answered, signed out and (optionally) with a session token."""

    app_url: str
    signed_out: dict[str, Answer] = field(default_factory=dict)  # endpoint name → answer
    token_env: str = ""  # the variable holding the session token that was sent, '' when none
    token_cookie: str = ""  # the cookie name the token was sent as
    with_token: Answer | None = None  # /api/auth/session carrying the token
    token_error: str = ""  # why the token could not be sent

    @property
    def https(self) -> bool:
        """True when the public URL is https (cookie rules differ)."""
        return urlsplit(self.app_url).scheme == "https"

    def set_cookies(self) -> list[str]:
        """Every Set-Cookie header seen: signed out first, then the answer to the token."""
        headers = [h for answer in self.signed_out.values() for h in answer.set_cookies]
        return headers + (self.with_token.set_cookies if self.with_token else [])

    def version(self) -> tuple[str, str]:
        """('v4' | 'v5' | 'unknown', why), from the cookies the app set, else from the variables set here."""
        from opsnb.checks.auth.cookies import parse_set_cookies

        return detect_version(env_names(), [c.name for c in parse_set_cookies(self.set_cookies())])

    def unreachable(self) -> str:
        """Why none of the endpoints answered; '' when at least one did."""
        if any(a.answered for a in self.signed_out.values()):
            return ""
        first = next(iter(self.signed_out.values()), None)
        return first.why_not() if first else f"{self.app_url} was not asked"

    def table(self) -> pd.DataFrame:
        """The signed-out requests: endpoint, status, latency, ok, error."""
        import pandas as pd

        rows = [
            {
                "endpoint": a.path,
                "status": a.probe.status,
                "latency_ms": a.probe.latency_ms,
                "ok": a.probe.ok,
                "error": a.probe.error,
            }
            for a in self.signed_out.values()
        ]
        return pd.DataFrame(rows, columns=["endpoint", "status", "latency_ms", "ok", "error"])


def ask(app_url: str, session_token_env: str = "", timeout_s: float = 10.0) -> AuthAnswers:
    """GET /api/auth/providers, /csrf and /session as a signed-out browser would (one cookie jar), then
    /session carrying the token held by ``session_token_env`` (when given) on a fresh jar. Never raises for
    the network: an endpoint that did not answer is an Answer without a status."""
    base = app_url.rstrip("/")
    answers = AuthAnswers(app_url=base, token_env=session_token_env)
    with Prober(timeout_s=timeout_s) as prober:
        for endpoint in ENDPOINTS:
            answers.signed_out[endpoint] = _get(prober, f"{base}{AUTH_PATH}/{endpoint}")
    if session_token_env:
        _ask_with_token(answers, session_token_env, timeout_s)
    return answers


def _get(prober: Prober, url: str, headers: dict[str, str] | None = None) -> Answer:
    """One GET through ``prober``, kept with its full body and Set-Cookie headers."""
    probe = prober.probe(url, headers=headers)
    response = prober.responses[-1]
    if response is None:
        return Answer(probe)
    return Answer(probe, response.text[:MAX_BODY_CHARS], response.headers.get_list("set-cookie"))


def _ask_with_token(answers: AuthAnswers, token_env: str, timeout_s: float) -> None:
    """GET /api/auth/session with the token as the session cookie the app expects for its version and scheme."""
    from opsnb.checks.auth.tokens import cookie_name_for
    from opsnb.checks.secrets import MissingSecret, secret

    try:
        token = secret(token_env).reveal().strip()
    except MissingSecret as exc:
        answers.token_error = str(exc)
        return
    answers.token_cookie = cookie_name_for(token, answers.https, answers.version()[0])
    with Prober(timeout_s=timeout_s) as prober:
        answers.with_token = _get(
            prober,
            f"{answers.app_url}{AUTH_PATH}/session",
            headers={"Cookie": f"{answers.token_cookie}={token}"},
        )


@check("auth.endpoints", hint=REACH_HINT)
def check_endpoints(answers: AuthAnswers, slow_ms: float = SLOW_AUTH_MS) -> pd.DataFrame:
    """Investigation 4: /api/auth/providers, /csrf and /session each answer 200, within ``slow_ms``."""
    evidence = answers.table()
    if why := answers.unreachable():
        raise CouldNotLook(why, REACH_HINT)
    broken = [
        f"{a.path} answers HTTP {a.probe.status}"
        if a.answered
        else f"{a.path} does not answer ({a.probe.error})"
        for a in answers.signed_out.values()
        if not a.probe.ok
    ]
    if broken:
        return conclude(
            "fail",
            "; ".join(broken),
            severity="P1",
            detail="NextAuth's route is not answering as it should: nobody can sign in. Look at the app's logs "
            "for the same requests (Investigation 1).",
            evidence=evidence,
        )
    timings = ", ".join(f"{a.path} {a.probe.latency_ms:.0f} ms" for a in answers.signed_out.values())
    slow = [a for a in answers.signed_out.values() if a.probe.latency_ms > slow_ms]
    if slow:
        return conclude(
            "warn",
            listing([f"{a.path} is slow ({a.probe.latency_ms:.0f} ms)" for a in slow]),
            severity="P3",
            detail=f"over {slow_ms:.0f} ms sign-in feels broken: {timings}",
            evidence=evidence,
        )
    return conclude("pass", "The /api/auth endpoints answer HTTP 200", detail=timings, evidence=evidence)


def answer_to(answers: AuthAnswers, endpoint: str) -> Answer:
    """The signed-out answer of ``endpoint`` to judge; CouldNotLook when it gave no HTTP 200."""
    answer = answers.signed_out.get(endpoint)
    if answer is None:
        raise CouldNotLook(f"{AUTH_PATH}/{endpoint} was not asked", REACH_HINT)
    if not answer.answered:
        raise CouldNotLook(answer.why_not(), REACH_HINT)
    if answer.probe.status != 200:
        raise CouldNotLook(
            f"{answer.path} answered HTTP {answer.probe.status} (see auth.endpoints)", REACH_HINT
        )
    return answer


def _shape(value: Any) -> str:
    """A JSON value described without its content: {}, null, 'an object with keys user, expires', …"""
    if value is None or value == {}:
        return json.dumps(value)
    if isinstance(value, dict):
        return f"an object with keys {', '.join(sorted(map(str, value)))}"
    return f"a JSON {type(value).__name__}"


@check("auth.signed-out-session", essential=False, hint=REACH_HINT)
def check_signed_out_session(answers: AuthAnswers) -> pd.DataFrame:
    """The runbook's `curl …/api/auth/session` without cookies: {} (v4) or null (v5), NextAuth's own handler."""
    import pandas as pd

    answer = answer_to(answers, "session")
    version, why = answers.version()
    try:
        body, parsed = answer.json(), True
    except ValueError:
        body, parsed = None, False
    shape = _shape(body) if parsed else "something that is not JSON"
    evidence = pd.DataFrame(
        [
            {
                "endpoint": answer.path,
                "status": answer.probe.status,
                "answer": shape,
                "version": version,
                "why": why,
            }
        ]
    )
    allowed = {version: SIGNED_OUT_SESSION[version]} if version in SIGNED_OUT_SESSION else SIGNED_OUT_SESSION
    matches = [name for name, want in allowed.items() if parsed and body == want]
    if matches:
        return conclude(
            "pass",
            f"Signed out, {answer.path} answers {shape} as NextAuth {matches[0]} does",
            detail=why,
            evidence=evidence,
        )
    expected = " or ".join(f"{json.dumps(want)} ({name})" for name, want in allowed.items())
    return conclude(
        "warn",
        f"Signed out, {answer.path} answers {shape}, not {expected}",
        severity="P2",
        detail=f"{why}. A request without cookies should get {expected}: the route is not NextAuth's handler, "
        "or the version is not the one the variables and cookies say.",
        evidence=evidence,
    )


@check("auth.csrf-token", hint=REACH_HINT)
def check_csrf_token(answers: AuthAnswers) -> pd.DataFrame:
    """/api/auth/csrf hands out {csrfToken}: without it every sign-in form is rejected (MissingCSRF)."""
    import pandas as pd

    answer = answer_to(answers, "csrf")
    try:
        body = answer.json()
    except ValueError:
        body = None
    has_token = isinstance(body, dict) and bool(body.get("csrfToken"))
    evidence = pd.DataFrame(
        [{"endpoint": answer.path, "status": answer.probe.status, "csrfToken": has_token}]
    )
    if has_token:
        return conclude("pass", f"{answer.path} hands out a csrfToken", evidence=evidence)
    return conclude(
        "fail",
        f"{answer.path} hands out no csrfToken",
        severity="P1",
        detail="sign-in forms post the csrfToken back; without one they are rejected (MissingCSRF, "
        "?csrf=true redirects).",
        evidence=evidence,
    )
