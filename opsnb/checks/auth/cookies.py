"""The runbook's common cause "Session cookie issues": the cookie config it asks for (``httpOnly: true``,
``sameSite: 'lax'``, ``path: '/'``, ``secure: true`` and the ``__Secure-`` name on https) checked on the real
``Set-Cookie`` headers the app sent — on plain http the opposite holds: a Secure or prefixed cookie is dropped.

Checks ``auth.cookies`` (the cookies a signed-out visit gets: csrf token, callback URL, …) and
``auth.session-cookie`` (the session cookie, only seen when the app is asked with a session token).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from opsnb.checks.auth.facts import (
    COOKIE_BASES,
    COOKIE_MAX_BYTES,
    COOKIE_PREFIXES,
    REACH_HINT,
    strip_cookie_prefix,
)
from opsnb.checks.auth.probes import AuthAnswers
from opsnb.checks.auth.verdicts import Verdict, failed, judge, passed
from opsnb.checks.findings import CouldNotLook, check

if TYPE_CHECKING:
    import pandas as pd

SESSION = "session-token"
SIGNED_OUT_ROLES = ("csrf-token", "callback-url")  # what /api/auth/csrf sets for a signed-out visitor
SESSION_HINT = (
    "give session_token_env (the value of a signed-in user's session cookie): the app re-sets the session "
    "cookie when asked with it, which shows its attributes"
)


@dataclass
class SetCookie:
    """One Set-Cookie header, parsed (attribute names lower-cased; flags as booleans)."""

    name: str
    value_bytes: int
    secure: bool = False
    http_only: bool = False
    same_site: str | None = None
    path: str | None = None
    domain: str | None = None
    max_age: str | None = None


def parse_set_cookie(header: str) -> SetCookie:
    """Parse one Set-Cookie header value (RFC 6265 §5.2, lenient: unknown attributes are ignored)."""
    pair, *attributes = header.split(";")
    name, _, value = pair.partition("=")
    cookie = SetCookie(name=name.strip(), value_bytes=len(value.strip().encode()))
    for attribute in attributes:
        key, _, val = attribute.strip().partition("=")
        key, val = key.strip().lower(), val.strip()
        if key == "secure":
            cookie.secure = True
        elif key == "httponly":
            cookie.http_only = True
        elif key == "samesite":
            cookie.same_site = val.lower() or None
        elif key == "path":
            cookie.path = val or None
        elif key == "domain":
            cookie.domain = val or None
        elif key == "max-age":
            cookie.max_age = val
    return cookie


def parse_set_cookies(headers: Iterable[str]) -> list[SetCookie]:
    """Every Set-Cookie header parsed; a later header for the same name replaces the earlier one."""
    by_name: dict[str, SetCookie] = {}
    for header in headers:
        cookie = parse_set_cookie(header)
        by_name[cookie.name] = cookie
    return list(by_name.values())


def cookie_role(name: str) -> str | None:
    """'session-token', 'csrf-token', 'callback-url', 'state', 'pkce.code_verifier', 'nonce' … or None for a
    cookie that is not NextAuth's."""
    bare = strip_cookie_prefix(name)
    for base in COOKIE_BASES.values():
        if bare.startswith(base):
            return re.sub(r"\.\d+$", "", bare[len(base) :])  # a chunked session cookie: session-token.0, .1 …
    return None


def expected_cookie_name(role: str, version: str, https: bool) -> str:
    """The name NextAuth gives ``role``: `__Host-` for the csrf token on https, `__Secure-` for the others."""
    base = COOKIE_BASES.get(version, COOKIE_BASES["v4"]) + role
    if not https:
        return base
    return ("__Host-" if role == "csrf-token" else "__Secure-") + base


def cookie_rules(cookie: SetCookie, https: bool) -> list[Verdict]:
    """The runbook's cookie config applied to one of NextAuth's cookies (none for other cookies): Secure as the
    scheme wants, HttpOnly, SameSite=Lax, Path=/, the name prefixes and their constraints, the size limit."""
    role = cookie_role(cookie.name)
    if role is None:
        return []
    return [
        _secure(cookie, https),
        _http_only(cookie, role),
        _same_site(cookie),
        _path(cookie, role),
        *_prefix(cookie, role, https),
        *_size(cookie),
    ]


def _secure(cookie: SetCookie, https: bool) -> Verdict:
    name = cookie.name
    if https and not cookie.secure:
        return failed(
            name,
            "Secure on https",
            "lacks Secure on an https site",
            "P2",
            f"{name}: no Secure attribute on an https site, so it may travel over plain http. "
            "Fix: cookies.*.options.secure = true.",
        )
    if not https and cookie.secure:
        return failed(
            name,
            "no Secure on http",
            "is Secure on an http site",
            "P1",
            f"{name}: a Secure cookie set by an http site is dropped by browsers, so sign-in never sticks. "
            "NEXTAUTH_URL/AUTH_URL probably says https while the site is served over http.",
        )
    return passed(
        name, "Secure on https" if https else "no Secure on http", "is Secure" if https else "is not Secure"
    )


def _http_only(cookie: SetCookie, role: str) -> Verdict:
    if cookie.http_only:
        return passed(cookie.name, "HttpOnly", "is HttpOnly")
    return failed(
        cookie.name,
        "HttpOnly",
        "is readable from JavaScript (no HttpOnly)",
        "P2" if role in (SESSION, "csrf-token") else "P3",
        f"{cookie.name}: an XSS can steal it. Fix: options.httpOnly = true.",
    )


def _same_site(cookie: SetCookie) -> Verdict:
    name, same_site, rule = cookie.name, cookie.same_site, "SameSite=Lax"
    if same_site == "lax":
        return passed(name, rule, "is SameSite=Lax")
    if same_site is None:
        return failed(
            name,
            rule,
            "has no SameSite",
            "P3",
            f"{name}: no SameSite attribute (browsers assume Lax, older ones None). Fix: options.sameSite = 'lax'.",
        )
    if same_site == "none" and not cookie.secure:
        return failed(
            name,
            rule,
            "is SameSite=None without Secure",
            "P1",
            f"{name}: browsers reject SameSite=None without Secure.",
        )
    if same_site == "strict":
        return failed(
            name,
            rule,
            "is SameSite=Strict",
            "P2",
            f"{name}: SameSite=Strict cookies are not sent when the OAuth provider redirects back, so the callback "
            "misses them (checks.state, signed out after login). Fix: options.sameSite = 'lax'.",
        )
    return failed(
        name,
        rule,
        f"is SameSite={same_site}",
        "P3",
        f"{name}: sent on cross-site requests. Fix: options.sameSite = 'lax'.",
    )


def _path(cookie: SetCookie, role: str) -> Verdict:
    if cookie.path == "/":
        return passed(cookie.name, "Path=/", "has Path=/")
    return failed(
        cookie.name,
        "Path=/",
        f"has Path={cookie.path}" if cookie.path else "has no Path",
        "P1" if role == SESSION else "P2",
        f"{cookie.name}: its path is {cookie.path or 'missing (the request folder, /api/auth)'}, so pages outside it "
        "never see the cookie. Fix: options.path = '/'.",
    )


def _prefix(cookie: SetCookie, role: str, https: bool) -> list[Verdict]:
    """The __Secure-/__Host- prefix fits the scheme, and a prefixed cookie meets what its prefix demands."""
    name = cookie.name
    prefix = next((p for p in COOKIE_PREFIXES if name.startswith(p)), "")
    want = "__Host-" if role == "csrf-token" else "__Secure-"
    verdicts = []
    if https and prefix:
        verdicts.append(passed(name, f"{want} prefix on https", f"has the {prefix} prefix"))
    elif https:
        verdicts.append(
            failed(
                name,
                f"{want} prefix on https",
                f"lacks the {want} prefix on an https site",
                "P2",
                f"{name}: the runbook's config names it '{want}{strip_cookie_prefix(name)}' on https. "
                "Fix: use NextAuth's default cookie names or add the prefix.",
            )
        )
    elif prefix:
        verdicts.append(
            failed(
                name,
                "no prefix on http",
                f"has the {prefix} prefix on an http site",
                "P1",
                f"{name}: {prefix} cookies need Secure, which http cannot have, so browsers reject it.",
            )
        )
    else:
        verdicts.append(passed(name, "no prefix on http", "has no prefix"))
    if prefix == "__Secure-" and not cookie.secure:
        verdicts.append(
            failed(
                name,
                "__Secure- cookie has Secure",
                "is __Secure- without Secure",
                "P1",
                f"{name}: browsers reject it.",
            )
        )
    if prefix == "__Host-":
        verdicts.append(_host_constraints(cookie))
    return verdicts


def _host_constraints(cookie: SetCookie) -> Verdict:
    """A __Host- cookie must be Secure, on Path=/ and without Domain, or browsers reject it."""
    broken = [
        what
        for what, bad in (
            ("no Secure", not cookie.secure),
            ("Path is not /", cookie.path != "/"),
            ("has a Domain", bool(cookie.domain)),
        )
        if bad
    ]
    rule = "__Host- cookie constraints"
    if not broken:
        return passed(cookie.name, rule, "meets the __Host- constraints")
    return failed(
        cookie.name,
        rule,
        f"breaks the __Host- constraints ({', '.join(broken)})",
        "P1",
        f"{cookie.name}: {', '.join(broken)}, so browsers reject this __Host- cookie.",
    )


def _size(cookie: SetCookie) -> list[Verdict]:
    if cookie.value_bytes <= COOKIE_MAX_BYTES:
        return []
    return [
        failed(
            cookie.name,
            f"at most {COOKIE_MAX_BYTES} bytes",
            f"is {cookie.value_bytes} bytes",
            "P2",
            f"{cookie.name}: over {COOKIE_MAX_BYTES} bytes browsers drop it unless NextAuth chunks it (.0, .1 …).",
        )
    ]


def config_summary(https: bool) -> str:
    """What a cookie that follows the runbook's config looks like on this scheme (a passing check's detail)."""
    if https:
        return "https site: each is Secure, HttpOnly, SameSite=Lax, Path=/ and __Secure-/__Host- prefixed"
    return (
        "http site: each is HttpOnly, SameSite=Lax and Path=/, neither Secure nor prefixed (browsers drop "
        "those on http)"
    )


def cookies_table(cookies: list[SetCookie], verdicts: list[Verdict]) -> pd.DataFrame:
    """One row per cookie: its attributes and the rules it breaks ('PASS' when none)."""
    import pandas as pd

    broken: dict[str, list[str]] = {}
    for v in verdicts:
        if not v.passed:
            broken.setdefault(v.subject, []).append(f"{v.severity}: {v.finding}")
    rows = [
        {
            "cookie": c.name,
            "Secure": c.secure,
            "HttpOnly": c.http_only,
            "SameSite": c.same_site,
            "Path": c.path,
            "bytes": c.value_bytes,
            "verdict": "; ".join(broken.get(c.name, [])) or "PASS",
        }
        for c in cookies
    ]
    missing = [
        {"cookie": v.subject, "verdict": f"{v.severity}: {v.finding}"}
        for v in verdicts
        if v.subject not in {c.name for c in cookies} and not v.passed
    ]
    columns = ["cookie", "Secure", "HttpOnly", "SameSite", "Path", "bytes", "verdict"]
    return pd.DataFrame(rows + missing, columns=columns)


@check("auth.cookies", hint=REACH_HINT)
def check_cookies(answers: AuthAnswers) -> pd.DataFrame:
    """The cookies a signed-out visit gets (csrf token, callback URL, OAuth state …) against the runbook's
    cookie config; the csrf-token and callback-url cookies must be among them."""
    if why := answers.unreachable():
        raise CouldNotLook(why, REACH_HINT)
    headers = [h for answer in answers.signed_out.values() for h in answer.set_cookies]
    cookies = [c for c in parse_set_cookies(headers) if cookie_role(c.name) not in (None, SESSION)]
    verdicts = [v for c in cookies for v in cookie_rules(c, answers.https)]
    version, _ = answers.version()
    seen = {cookie_role(c.name) for c in cookies}
    for role in SIGNED_OUT_ROLES:
        if role not in seen:
            name = expected_cookie_name(role, version, answers.https)
            verdicts.append(
                failed(
                    name,
                    "set by /api/auth/csrf",
                    "is not set by a signed-out visit",
                    "P2",
                    f"{name}: expected from /api/auth/csrf but not set.",
                )
            )
    names = ", ".join(c.name for c in cookies)
    found = judge(
        verdicts,
        f"The auth cookies follow the runbook's cookie config ({names})",
        config_summary(answers.https),
    )
    return found.conclude(cookies_table(cookies, verdicts))


@check("auth.session-cookie", essential=False, hint=SESSION_HINT)
def check_session_cookie(answers: AuthAnswers) -> pd.DataFrame:
    """The session cookie, as the runbook configures it (`__Secure-next-auth.session-token`, httpOnly, lax, /,
    secure), from the Set-Cookie the app sent back when asked with a session token."""
    if why := answers.unreachable():
        raise CouldNotLook(why, REACH_HINT)
    cookies = [c for c in parse_set_cookies(answers.set_cookies()) if cookie_role(c.name) == SESSION]
    if not cookies:
        asked = (
            f"; asked with the token in ${answers.token_env}, the app did not re-set it"
            if answers.with_token
            else ""
        )
        raise CouldNotLook(
            f"no session cookie was seen: a signed-out visit never gets one{asked}", SESSION_HINT
        )
    verdicts = [v for c in cookies for v in cookie_rules(c, answers.https)]
    names = ", ".join(c.name for c in cookies)
    found = judge(
        verdicts,
        f"The session cookie {names} follows the runbook's cookie config",
        config_summary(answers.https),
    )
    return found.conclude(cookies_table(cookies, verdicts))
