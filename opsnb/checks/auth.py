"""NextAuth v4 / Auth.js v5 checks for "Issue: Authentication Not Working".

Configuration verdicts (values never shown), probes of ``/api/auth/*``, cookie rules read from real
``Set-Cookie`` headers, session-token decryption, NextAuth error codes in the logs and the Prisma
adapter tables. Pure rule functions (``url_rules``, ``secret_rules``, ``cookie_rules``, ``decode_session_token``)
are what the unit tests exercise; the ``check_*`` functions apply them, record findings and return a table.
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from opsnb.checks import findings

if TYPE_CHECKING:
    import pandas as pd

    from opsnb.checks.postgres import Database

# -- NextAuth facts (FIELD-NOTES "NextAuth v4 / Auth.js v5") ---------------------------------------------------

V4_INFO = b"NextAuth.js Generated Encryption Key"
V5_INFO_TEMPLATE = "Auth.js Generated Encryption Key ({salt})"
V4_ENC = "A256GCM"
V5_ENC = "A256CBC-HS512"
COOKIE_PREFIXES = ("__Secure-", "__Host-")
COOKIE_BASES = {"v4": "next-auth.", "v5": "authjs."}
V4_VARS = ("NEXTAUTH_URL", "NEXTAUTH_SECRET")
V5_VARS = ("AUTH_URL", "AUTH_SECRET", "AUTH_TRUST_HOST", "AUTH_SECRET_1", "AUTH_GOOGLE_ID")
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}
MIN_SECRET_CHARS = 32  # `openssl rand -base64 32` (what NextAuth's docs suggest) gives 44 characters
COOKIE_MAX_BYTES = 4096  # browsers' per-cookie limit; NextAuth splits larger session cookies into .0, .1, …
SLOW_AUTH_MS = 1000.0  # an auth endpoint slower than this makes sign-in feel broken (P3)
OK = "ok"


@dataclass
class Rule:
    """One rule applied to one subject: passed, or failed with a severity, why and how to fix it."""

    subject: str
    rule: str
    passed: bool
    severity: str = OK  # severity when the rule failed ("ok" when it passed)
    detail: str = ""

    @property
    def verdict(self) -> str:
        """'PASS' or the severity it failed with."""
        return "PASS" if self.passed else self.severity


def _passed(subject: str, rule: str, detail: str = "") -> Rule:
    return Rule(subject, rule, True, OK, detail)


def _failed(subject: str, rule: str, severity: str, detail: str) -> Rule:
    return Rule(subject, rule, False, severity, detail)


def record_rules(rules: list[Rule], check: str) -> pd.DataFrame:
    """Record each failed rule as a finding (and one info finding for what passed); the rules as a table."""
    import pandas as pd

    passed = [r for r in rules if r.passed]
    for r in rules:
        if not r.passed:
            findings.add(r.severity, f"{r.subject}: {r.rule}", r.detail, check=check)
    if passed:
        findings.ok(
            f"{check}: {len(passed)} rule(s) passed",
            "; ".join(f"{r.subject}: {r.rule}" for r in passed),
            check=check,
        )
    rows = [{"subject": r.subject, "rule": r.rule, "verdict": r.verdict, "detail": r.detail} for r in rules]
    return pd.DataFrame(rows, columns=["subject", "rule", "verdict", "detail"])


# -- environment -----------------------------------------------------------------------------------------------


def env_value(name: str) -> str | None:
    """A non-secret variable from the kernel environment, else from $OPSNB_ENV_FILE (JupyterLab sessions)."""
    if not name:
        return None
    value = os.environ.get(name)
    if value is not None:
        return value
    return _env_file().get(name)


def env_names() -> set[str]:
    """Names of the variables set in the kernel environment or in $OPSNB_ENV_FILE."""
    return {k for k, v in os.environ.items() if v} | {k for k, v in _env_file().items() if v}


def _env_file() -> dict[str, str]:
    path = os.environ.get("OPSNB_ENV_FILE")
    if not path:
        return {}
    from pathlib import Path

    from opsnb.envfile import read_env_file
    from opsnb.errors import ConfigError

    try:
        return read_env_file(Path(path))
    except ConfigError:
        return {}


def detect_version(variables: Iterable[str], cookie_names: Iterable[str] = ()) -> tuple[str, str]:
    """('v4' | 'v5' | 'unknown', why): cookies the running app set win over variables that merely exist."""
    cookies = [_strip_prefix(c) for c in cookie_names]
    if any(c.startswith(COOKIE_BASES["v5"]) for c in cookies):
        return "v5", "the app sets authjs.* cookies (Auth.js v5)"
    if any(c.startswith(COOKIE_BASES["v4"]) for c in cookies):
        return "v4", "the app sets next-auth.* cookies (NextAuth v4)"
    names = set(variables)
    v5 = sorted(names & set(V5_VARS))
    v4 = sorted(names & set(V4_VARS))
    if v5 and not v4:
        return "v5", f"only Auth.js v5 variables are set ({', '.join(v5)})"
    if v4:
        return "v4", f"NextAuth v4 variables are set ({', '.join(v4)})" + (
            f"; v5 ones too ({', '.join(v5)})" if v5 else ""
        )
    return "unknown", "neither NEXTAUTH_* nor AUTH_* variables nor auth cookies were found"


# -- configuration rules ---------------------------------------------------------------------------------------


def _origin(parts) -> tuple[str, str, int | None]:
    default = {"http": 80, "https": 443}.get(parts.scheme)
    try:
        port = parts.port or default
    except ValueError:
        port = None
    return parts.scheme, (parts.hostname or "").lower(), port


def is_local_host(host: str) -> bool:
    """True for localhost, loopback and wildcard addresses."""
    host = host.lower().strip("[]")
    return host in LOCAL_HOSTS or host.endswith(".localhost") or host.startswith("127.")


def url_rules(value: str | None, app_url: str, production: bool, name: str = "NEXTAUTH_URL") -> list[Rule]:
    """The runbook's rules for NEXTAUTH_URL / AUTH_URL: set, equal to the public URL, https in production,
    no path, no trailing slash, not localhost. Details describe differences, never the value itself."""
    if not value:
        return [
            _failed(
                name,
                "is set",
                "P1",
                f"{name} is not set: NextAuth cannot build callback URLs (CLIENT_FETCH_ERROR, wrong redirects). "
                f"Fix: set {name}={app_url.rstrip('/')} for the deployment and redeploy.",
            )
        ]
    rules = [_passed(name, "is set")]
    parts = urlsplit(value.strip())
    app = urlsplit(app_url.strip())
    app_origin = f"{app.scheme}://{app.netloc}"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        rules.append(
            _failed(
                name,
                "is an absolute http(s) URL",
                "P1",
                f"{name} is not an absolute http(s) URL. Fix: set it to {app_origin}.",
            )
        )
        return rules
    rules.append(_passed(name, "is an absolute http(s) URL"))

    scheme, host, port = _origin(parts)
    want_scheme, want_host, want_port = _origin(app)
    differences = []
    if scheme != want_scheme:
        differences.append(f"scheme is {scheme}, the public URL uses {want_scheme}")
    if host != want_host:
        differences.append("host differs" + (" (it is a localhost address)" if is_local_host(host) else ""))
    if port != want_port:
        differences.append("port differs")
    if differences:
        rules.append(
            _failed(
                name,
                "equals the public URL",
                "P1",
                f"{name} does not match the public URL {app_origin}: {'; '.join(differences)}. Sign-in redirects and "
                f"callbackUrl point elsewhere (redirect_uri_mismatch, CLIENT_FETCH_ERROR). Fix: set {name}={app_origin} "
                "and redeploy.",
            )
        )
    else:
        rules.append(_passed(name, "equals the public URL", f"same scheme, host and port as {app_origin}"))

    if production and scheme != "https":
        rules.append(
            _failed(
                name,
                "uses https in production",
                "P1",
                f"{name} uses http in production: cookies lose Secure and OAuth providers refuse the callback. Fix: use https://.",
            )
        )
    else:
        rules.append(
            _passed(name, "uses https in production", "" if production else "not production: http allowed")
        )

    if production and is_local_host(host):
        rules.append(
            _failed(
                name,
                "is not localhost",
                "P1",
                f"{name} points at a localhost address in production (the runbook: a localhost URL is wrong for production).",
            )
        )
    else:
        rules.append(
            _passed(name, "is not localhost", "" if production else "not production: localhost allowed")
        )

    path = parts.path.rstrip("/")
    if path or parts.query or parts.fragment:
        rules.append(
            _failed(
                name,
                "has no path",
                "P2",
                f"{name} carries a path/query; NextAuth expects the bare origin unless a custom basePath is configured. Fix: {app_origin}.",
            )
        )
    else:
        rules.append(_passed(name, "has no path"))

    if value.strip().endswith("/"):
        rules.append(
            _failed(
                name,
                "has no trailing slash",
                "P3",
                f"{name} ends with '/'; the runbook wants the domain exactly. Fix: drop the trailing slash.",
            )
        )
    else:
        rules.append(_passed(name, "has no trailing slash"))
    return rules


def secret_rules(value: Any, name: str = "NEXTAUTH_SECRET", min_chars: int = MIN_SECRET_CHARS) -> list[Rule]:
    """The secret is set and at least ``min_chars`` long (never shown; only its length class is reported)."""
    text = value.reveal() if hasattr(value, "reveal") else value
    if not text:
        return [
            _failed(
                name,
                "is set",
                "P1",
                f"{name} is empty: NextAuth refuses to sign JWTs in production ([NO_SECRET]). Fix: `openssl rand -base64 32`, set it, redeploy.",
            )
        ]
    rules = [_passed(name, "is set")]
    if len(text) < min_chars:
        rules.append(
            _failed(
                name,
                f"is at least {min_chars} characters",
                "P2",
                f"{name} is shorter than {min_chars} characters: session tokens can be brute-forced offline. "
                "Fix: a new `openssl rand -base64 32` (every user is signed out once).",
            )
        )
    else:
        rules.append(_passed(name, f"is at least {min_chars} characters"))
    if text != text.strip():
        rules.append(
            _failed(
                name,
                "has no surrounding whitespace",
                "P2",
                f"{name} has leading/trailing whitespace: other deployments may hold the trimmed value, so tokens fail to decrypt.",
            )
        )
    return rules


def check_config(
    app_url: str,
    production: bool,
    url_var: str = "NEXTAUTH_URL",
    secret_env: str = "NEXTAUTH_SECRET",
    min_secret_chars: int = MIN_SECRET_CHARS,
) -> pd.DataFrame:
    """Verdicts on NEXTAUTH_URL/AUTH_URL and the secret (values never shown); records findings, returns the table."""
    from opsnb.checks.secrets import MissingSecret, secret

    names = env_names()
    version, why = detect_version(names | ({secret_env} if secret_env else set()))
    rules: list[Rule] = [_passed("NextAuth version", f"detected {version}", why)]
    url = env_value(url_var)
    if not url and version == "v5" and (env_value("AUTH_TRUST_HOST") or env_value("VERCEL")):
        rules.append(
            _passed(
                url_var, "is set", "unset, but Auth.js v5 trusts the request host (AUTH_TRUST_HOST / Vercel)"
            )
        )
    else:
        rules.extend(url_rules(url, app_url, production, url_var))
    try:
        value = secret(secret_env) if secret_env else None
    except MissingSecret:
        value = None
    rules.extend(secret_rules(value, secret_env or "secret", min_secret_chars))
    return record_rules(rules, "config")


# -- probes of /api/auth/* -------------------------------------------------------------------------------------


@dataclass
class AuthProbes:
    """What the /api/auth endpoints answered: probes, parsed bodies and every Set-Cookie header seen."""

    app_url: str
    probes: list[Any] = field(default_factory=list)
    bodies: dict[str, Any] = field(default_factory=dict)
    set_cookies: list[str] = field(default_factory=list)

    def table(self) -> pd.DataFrame:
        """The probes (endpoint, status, latency, ok, error) as a DataFrame."""
        import pandas as pd

        rows = [
            {
                "endpoint": urlsplit(p.url).path,
                "status": p.status,
                "latency_ms": p.latency_ms,
                "ok": p.ok,
                "error": p.error,
            }
            for p in self.probes
        ]
        return pd.DataFrame(rows, columns=["endpoint", "status", "latency_ms", "ok", "error"])


def probe_endpoints(
    app_url: str, timeout_s: float = 10.0, slow_ms: float = SLOW_AUTH_MS
) -> tuple[AuthProbes, pd.DataFrame]:
    """GET /api/auth/providers, /csrf and /session (signed out): status and latency, kept for the later checks.

    Returns (AuthProbes, table); records a P1 finding per endpoint that is down and a P3 per slow one.
    """
    from opsnb.checks.http import Prober

    base = app_url.rstrip("/")
    result = AuthProbes(app_url=base)
    with Prober(timeout_s=timeout_s) as prober:
        for endpoint in ("providers", "csrf", "session"):
            probe = prober.probe(f"{base}/api/auth/{endpoint}")
            response = prober.responses[-1]
            result.probes.append(probe)
            result.bodies[endpoint] = probe.json() if probe.status else None
            if response is not None:
                result.set_cookies.extend(response.headers.get_list("set-cookie"))
            if not probe.ok:
                what = probe.error or f"HTTP {probe.status}"
                findings.add(
                    "P1",
                    f"/api/auth/{endpoint} fails",
                    f"{what}: NextAuth's route is not answering, nobody can sign in.",
                    evidence=asdict(probe),
                    check="probes",
                )
            elif probe.latency_ms > slow_ms:
                findings.add(
                    "P3",
                    f"/api/auth/{endpoint} is slow",
                    f"{probe.latency_ms:.0f} ms (> {slow_ms:.0f} ms).",
                    check="probes",
                )
    if all(p.ok for p in result.probes):
        findings.ok(
            "/api/auth endpoints answer",
            ", ".join(f"{urlsplit(p.url).path} {p.status} in {p.latency_ms:.0f} ms" for p in result.probes),
            check="probes",
        )
    return result, result.table()


def expected_redirect_uris(app_url: str, provider: str = "google") -> list[str]:
    """The runbook's authorized redirect URIs: the domain and its www form (only the domain for IPs/localhost)."""
    parts = urlsplit(app_url.rstrip("/"))
    host = parts.hostname or ""
    netloc_tail = (
        parts.netloc[len(parts.netloc.split(":")[0]) :]
        if ":" in parts.netloc and not parts.netloc.startswith("[")
        else ""
    )
    bare = host[4:] if host.startswith("www.") else host
    hosts = [bare]
    if not is_local_host(bare) and not re.fullmatch(r"[\d.]+", bare) and "." in bare:
        hosts.append(f"www.{bare}")
    return [f"{parts.scheme}://{h}{netloc_tail}/api/auth/callback/{provider}" for h in hosts]


def provider_rules(providers: Any, app_url: str, required: Iterable[str] = ("google",)) -> list[Rule]:
    """Google (or each ``required`` provider) is present and each callbackUrl is one of the expected redirect URIs."""
    if not isinstance(providers, dict):
        return [
            _failed(
                "/api/auth/providers",
                "returns the provider list",
                "P1",
                "the body is not a JSON object of providers: the auth route is broken or misrouted.",
            )
        ]
    rules = []
    for wanted in required:
        if wanted in providers:
            rules.append(_passed("/api/auth/providers", f"{wanted} provider present"))
        else:
            rules.append(
                _failed(
                    "/api/auth/providers",
                    f"{wanted} provider present",
                    "P1",
                    f"no '{wanted}' provider configured: check AUTH_{wanted.upper()}_ID/SECRET (v5) or the providers list.",
                )
            )
    for pid, info in sorted(providers.items()):
        callback = (info or {}).get("callbackUrl") if isinstance(info, dict) else None
        expected = expected_redirect_uris(app_url, pid)
        subject = f"provider {pid}"
        if not callback:
            rules.append(
                _failed(
                    subject,
                    "callbackUrl is an expected redirect URI",
                    "P2",
                    "the provider entry has no callbackUrl.",
                )
            )
        elif callback in expected:
            rules.append(_passed(subject, "callbackUrl is an expected redirect URI", callback))
        else:
            rules.append(
                _failed(
                    subject,
                    "callbackUrl is an expected redirect URI",
                    "P1",
                    f"callbackUrl {callback} is not one of {', '.join(expected)}: the OAuth provider answers "
                    "redirect_uri_mismatch. Fix NEXTAUTH_URL/AUTH_URL, and list exactly these URIs in Google Console > "
                    "Credentials > OAuth 2.0 Client > Authorized redirect URIs.",
                )
            )
    return rules


def check_providers(probes: AuthProbes, required: Iterable[str] = ("google",)) -> pd.DataFrame:
    """Providers from /api/auth/providers with their callbackUrl verdicts; records findings, returns the table."""
    import pandas as pd

    body = probes.bodies.get("providers")
    rules = provider_rules(body, probes.app_url, required)
    record_rules(rules, "providers")
    verdicts = {
        r.subject.removeprefix("provider "): r.verdict for r in rules if r.subject.startswith("provider ")
    }
    rows = []
    for pid, info in sorted((body or {}).items()) if isinstance(body, dict) else []:
        info = info if isinstance(info, dict) else {}
        rows.append(
            {
                "provider": pid,
                "type": info.get("type"),
                "callbackUrl": info.get("callbackUrl"),
                "expected (authorize these)": ", ".join(expected_redirect_uris(probes.app_url, pid)),
                "verdict": verdicts.get(pid),
            }
        )
    return pd.DataFrame(
        rows, columns=["provider", "type", "callbackUrl", "expected (authorize these)", "verdict"]
    )


def session_shape_rules(session_body: Any, csrf_body: Any, version: str) -> list[Rule]:
    """Signed-out /api/auth/session is `{}` (v4) or `null` (v5); /api/auth/csrf returns {csrfToken}."""
    rules = []
    signed_out = {"v4": {}, "v5": None}
    if version in signed_out:
        want = signed_out[version]
        if session_body == want:
            rules.append(_passed("/api/auth/session", f"signed-out shape is {json.dumps(want)} ({version})"))
        else:
            rules.append(
                _failed(
                    "/api/auth/session",
                    f"signed-out shape is {json.dumps(want)} ({version})",
                    "P2",
                    f"a request without cookies got {type(session_body).__name__} instead of {json.dumps(want)}: "
                    "the route is not NextAuth's handler, or the version is not what the variables say.",
                )
            )
    elif session_body in ({}, None):
        rules.append(_passed("/api/auth/session", "signed-out shape", "{} (v4) or null (v5)"))
    else:
        rules.append(
            _failed(
                "/api/auth/session",
                "signed-out shape",
                "P2",
                "neither {} (v4) nor null (v5) for a request without cookies.",
            )
        )
    if isinstance(csrf_body, dict) and csrf_body.get("csrfToken"):
        rules.append(_passed("/api/auth/csrf", "returns {csrfToken}"))
    else:
        rules.append(
            _failed(
                "/api/auth/csrf",
                "returns {csrfToken}",
                "P1",
                "no csrfToken: sign-in forms are rejected (MissingCSRF).",
            )
        )
    return rules


def check_endpoint_shapes(probes: AuthProbes, version: str | None = None) -> pd.DataFrame:
    """Shape of the signed-out session and of csrf, for the detected version; records findings, returns the table."""
    if version is None:
        version = detect_version(env_names(), [c.name for c in parse_set_cookies(probes.set_cookies)])[0]
    return record_rules(
        session_shape_rules(probes.bodies.get("session"), probes.bodies.get("csrf"), version), "endpoints"
    )


# -- cookies ---------------------------------------------------------------------------------------------------


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
        key = key.strip().lower()
        val = val.strip()
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


def _strip_prefix(name: str) -> str:
    for prefix in COOKIE_PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def cookie_role(name: str) -> str | None:
    """'session-token', 'csrf-token', 'callback-url', 'state', 'pkce.code_verifier', 'nonce' … or None for a non-auth cookie."""
    bare = _strip_prefix(name)
    for base in COOKIE_BASES.values():
        if bare.startswith(base):
            role = bare[len(base) :]
            return re.sub(r"\.\d+$", "", role)  # chunks: session-token.0, .1 …
    return None


def expected_cookie_name(role: str, version: str, https: bool) -> str:
    """The name NextAuth uses for ``role``: `__Host-` for the csrf token on https, `__Secure-` for the others."""
    base = COOKIE_BASES.get(version, COOKIE_BASES["v4"]) + role
    if not https:
        return base
    return ("__Host-" if role == "csrf-token" else "__Secure-") + base


def cookie_rules(cookie: SetCookie, https: bool) -> list[Rule]:
    """The runbook's cookie config applied to one Set-Cookie: Secure, HttpOnly, SameSite=Lax, Path=/, prefixes."""
    role = cookie_role(cookie.name)
    if role is None:
        return []
    subject = f"cookie {cookie.name}"
    session = role == "session-token"
    rules: list[Rule] = []

    if https and not cookie.secure:
        rules.append(
            _failed(
                subject,
                "Secure on https",
                "P2",
                "no Secure attribute on an https site: the cookie may travel over plain http. Fix: cookies.*.options.secure = true.",
            )
        )
    elif not https and cookie.secure:
        rules.append(
            _failed(
                subject,
                "no Secure on http",
                "P1",
                "Secure cookie set by an http site: browsers drop it, so sign-in never sticks. NEXTAUTH_URL/AUTH_URL probably says https while the site is served over http.",
            )
        )
    else:
        rules.append(_passed(subject, "Secure on https" if https else "no Secure on http"))

    if cookie.http_only:
        rules.append(_passed(subject, "HttpOnly"))
    else:
        rules.append(
            _failed(
                subject,
                "HttpOnly",
                "P2" if role in ("session-token", "csrf-token") else "P3",
                "readable from JavaScript (no HttpOnly): an XSS can steal it. Fix: options.httpOnly = true.",
            )
        )

    same_site = cookie.same_site
    if same_site == "lax":
        rules.append(_passed(subject, "SameSite=Lax"))
    elif same_site is None:
        rules.append(
            _failed(
                subject,
                "SameSite=Lax",
                "P3",
                "no SameSite attribute (browsers assume Lax, older ones None). Fix: options.sameSite = 'lax'.",
            )
        )
    elif same_site == "none" and not cookie.secure:
        rules.append(
            _failed(
                subject, "SameSite=Lax", "P1", "SameSite=None without Secure: browsers reject the cookie."
            )
        )
    elif same_site == "strict":
        rules.append(
            _failed(
                subject,
                "SameSite=Lax",
                "P2",
                "SameSite=Strict: the cookie is not sent when the OAuth provider redirects back, so the callback misses it "
                "(checks.state / signed out after login). Fix: options.sameSite = 'lax'.",
            )
        )
    else:
        rules.append(
            _failed(
                subject,
                "SameSite=Lax",
                "P3",
                f"SameSite={same_site}: sent on cross-site requests. Fix: options.sameSite = 'lax'.",
            )
        )

    if cookie.path == "/":
        rules.append(_passed(subject, "Path=/"))
    else:
        rules.append(
            _failed(
                subject,
                "Path=/",
                "P1" if session else "P2",
                f"Path is {cookie.path or 'missing (defaults to the request folder, /api/auth)'}: pages outside it never see the cookie. Fix: options.path = '/'.",
            )
        )

    prefix = next((p for p in COOKIE_PREFIXES if cookie.name.startswith(p)), "")
    want = "__Host-" if role == "csrf-token" else "__Secure-"
    if https:
        if prefix:
            rules.append(_passed(subject, f"{want} prefix on https"))
        else:
            rules.append(
                _failed(
                    subject,
                    f"{want} prefix on https",
                    "P2",
                    f"https site without the {want} prefix (the runbook's config names it '{want}{_strip_prefix(cookie.name)}'). "
                    "Fix: use NextAuth's default cookie names or add the prefix.",
                )
            )
    elif prefix:
        rules.append(
            _failed(
                subject,
                "no prefix on http",
                "P1",
                f"{prefix} cookies need Secure, which http cannot have: browsers reject it.",
            )
        )
    if prefix == "__Secure-" and not cookie.secure:
        rules.append(
            _failed(
                subject,
                "__Secure- cookie has Secure",
                "P1",
                "a __Secure- cookie without Secure is rejected by browsers.",
            )
        )
    if prefix == "__Host-":
        problems = [
            p
            for p, bad in (
                ("no Secure", not cookie.secure),
                ("Path is not /", cookie.path != "/"),
                ("has a Domain", bool(cookie.domain)),
            )
            if bad
        ]
        if problems:
            rules.append(
                _failed(
                    subject,
                    "__Host- cookie constraints",
                    "P1",
                    f"{', '.join(problems)}: browsers reject this __Host- cookie.",
                )
            )
        else:
            rules.append(_passed(subject, "__Host- cookie constraints"))

    if cookie.value_bytes > COOKIE_MAX_BYTES:
        rules.append(
            _failed(
                subject,
                f"at most {COOKIE_MAX_BYTES} bytes",
                "P2",
                f"{cookie.value_bytes} bytes: browsers drop it unless NextAuth chunks it (.0, .1 …).",
            )
        )
    return rules


def check_cookies(
    probes: AuthProbes, version: str | None = None, extra_headers: Iterable[str] = ()
) -> pd.DataFrame:
    """Cookie rules on every auth Set-Cookie seen, plus which runbook-required cookies were observed; returns the table."""
    import pandas as pd

    https = urlsplit(probes.app_url).scheme == "https"
    cookies = parse_set_cookies([*probes.set_cookies, *extra_headers])
    if version is None:
        version = detect_version(env_names(), [c.name for c in cookies])[0]
    rules: list[Rule] = []
    for cookie in cookies:
        rules.extend(cookie_rules(cookie, https))
    seen = {cookie_role(c.name): c.name for c in cookies}
    for role in ("csrf-token", "callback-url"):
        if role not in seen:
            rules.append(
                _failed(
                    f"cookie {expected_cookie_name(role, version, https)}",
                    "set by /api/auth/csrf",
                    "P2",
                    "expected from a signed-out visit but not set.",
                )
            )
    if "session-token" not in seen:
        findings.add(
            "info",
            "session cookie not observed",
            f"{expected_cookie_name('session-token', version, https)} is set at sign-in, so a signed-out probe cannot see "
            "its attributes; its value is checked in the session-token section when session_token_env is given.",
            check="cookies",
        )
    record_rules(rules, "cookies")
    rows = [
        {
            "cookie": c.name,
            "Secure": c.secure,
            "HttpOnly": c.http_only,
            "SameSite": c.same_site,
            "Path": c.path,
            "bytes": c.value_bytes,
        }
        for c in cookies
    ]
    table = pd.DataFrame(rows, columns=["cookie", "Secure", "HttpOnly", "SameSite", "Path", "bytes"])
    worst = {}
    for r in rules:
        name = r.subject.removeprefix("cookie ")
        if not r.passed:
            worst.setdefault(name, []).append(f"{r.severity}: {r.rule}")
    table["verdict"] = [", ".join(worst.get(n, [])) or "PASS" for n in table["cookie"]]
    return table


# -- session tokens --------------------------------------------------------------------------------------------


class TokenError(ValueError):
    """A session token that could not be read; ``kind`` is 'malformed', 'not-jwe', 'secret-mismatch' or 'expired'."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def derive_key(secret: str, version: str = "v4", cookie_name: str = "authjs.session-token") -> bytes:
    """The content-encryption key NextAuth derives: v4 HKDF-SHA256(secret, salt '', 32 bytes);
    v5 HKDF-SHA256(secret, salt = cookie name, info naming the cookie, 64 bytes)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    if version == "v4":
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"", info=V4_INFO).derive(secret.encode())
    info = V5_INFO_TEMPLATE.format(salt=cookie_name).encode()
    return HKDF(algorithm=hashes.SHA256(), length=64, salt=cookie_name.encode(), info=info).derive(
        secret.encode()
    )


def token_header(token: str) -> dict[str, Any]:
    """The protected header of a compact JWE/JWS; TokenError('malformed'/'not-jwe') otherwise."""
    segments = token.split(".")
    if len(segments) == 3:
        raise TokenError("not-jwe", "a signed JWT (3 segments), not NextAuth's encrypted session token")
    if len(segments) != 5:
        raise TokenError(
            "not-jwe", "not a JWE (no 5 dot-separated segments): a database-session id or a corrupted cookie"
        )
    try:
        padded = segments[0] + "=" * (-len(segments[0]) % 4)
        header = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, TypeError) as exc:
        raise TokenError(
            "malformed", f"the JWE header is not base64url JSON ({type(exc).__name__})"
        ) from None
    if not isinstance(header, dict):
        raise TokenError("malformed", "the JWE header is not a JSON object")
    return header


def token_version(header: Mapping[str, Any]) -> str:
    """'v4' for A256GCM, 'v5' for A256CBC-HS512, else 'unknown'."""
    return {V4_ENC: "v4", V5_ENC: "v5"}.get(str(header.get("enc")), "unknown")


def session_cookie_names(version: str) -> list[str]:
    """Candidate session cookie names (salts for v5): https first, then http."""
    base = COOKIE_BASES.get(version, COOKIE_BASES["v5"]) + "session-token"
    return [f"__Secure-{base}", base]


def decode_session_token(
    token: str, secret: str, cookie_name: str | None = None, now: float | None = None, leeway_s: int = 15
) -> dict[str, Any]:
    """Decrypt a NextAuth session token with ``secret``; returns its claims plus '_version' and '_cookie'.

    The version follows the JWE header (A256GCM → v4, A256CBC-HS512 → v5). For v5 the key depends on the cookie
    name: ``cookie_name`` or both the https and http names are tried. Raises TokenError: 'secret-mismatch'
    when no key derived from ``secret`` opens it, 'expired' past ``exp`` (+ NextAuth's 15 s clock tolerance).
    """
    from joserfc import jwe
    from joserfc.errors import JoseError
    from joserfc.jwk import OctKey

    token = token.strip()
    header = token_header(token)
    version = token_version(header)
    if header.get("alg") != "dir" or version == "unknown":
        raise TokenError(
            "malformed",
            f"unexpected JWE algorithms alg={header.get('alg')} enc={header.get('enc')} (NextAuth uses dir with A256GCM or A256CBC-HS512)",
        )
    names = (
        [cookie_name]
        if (cookie_name and version == "v5")
        else (session_cookie_names("v5") if version == "v5" else [""])
    )
    algorithms = ["dir", header["enc"]]
    last_error = ""
    for name in names:
        key = OctKey.import_key(derive_key(secret, version, name))
        try:
            plaintext = jwe.decrypt_compact(token, key, algorithms=algorithms).plaintext
        except (JoseError, ValueError) as exc:
            last_error = f"{type(exc).__name__}: {exc}"
            continue
        try:
            claims = json.loads(plaintext)
        except ValueError:
            raise TokenError("malformed", "decrypted, but the payload is not JSON") from None
        if not isinstance(claims, dict):
            raise TokenError("malformed", "decrypted, but the payload is not a JSON object")
        exp = claims.get("exp")
        current = time.time() if now is None else now
        if isinstance(exp, (int, float)) and exp + leeway_s < current:
            raise TokenError("expired", f"decrypted, but it expired {_ago(current - exp)} ago")
        return {**claims, "_version": version, "_cookie": name or "next-auth.session-token"}
    raise TokenError(
        "secret-mismatch",
        f"no key derived from this secret decrypts it ({last_error or 'decryption failed'})",
    )


def _ago(seconds: float) -> str:
    seconds = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def mask_email(email: Any) -> str | None:
    """'jane.doe@example.com' → 'j***@example.com' (enough to recognise a user, not to read the address)."""
    if not isinstance(email, str) or not email:
        return None
    local, at, domain = email.partition("@")
    if not at:
        return email[:1] + "***"
    return f"{local[:1]}***@{domain}"


def token_summary(claims: Mapping[str, Any], now: float | None = None) -> list[dict[str, Any]]:
    """Rows (field, value) describing a decoded token: version, issued/expiry in UTC, subject, masked email."""
    import datetime as dt

    current = time.time() if now is None else now

    def when(ts: Any) -> str | None:
        if not isinstance(ts, (int, float)):
            return None
        return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")

    rows = [
        ("version", claims.get("_version")),
        ("cookie", claims.get("_cookie")),
        ("issued (iat)", when(claims.get("iat"))),
        ("expires (exp)", when(claims.get("exp"))),
        (
            "expires in",
            _ago(claims["exp"] - current) if isinstance(claims.get("exp"), (int, float)) else None,
        ),
        ("subject (sub)", claims.get("sub")),
        ("email", mask_email(claims.get("email"))),
        ("name", (str(claims["name"])[:1] + "***") if claims.get("name") else None),
        ("claims", ", ".join(sorted(k for k in claims if not k.startswith("_")))),
    ]
    return [{"field": k, "value": v} for k, v in rows]


def probe_session_with_token(
    app_url: str, token: str, cookie_name: str, timeout_s: float = 10.0
) -> tuple[Any, Any, list[str]]:
    """GET /api/auth/session carrying the token as ``cookie_name``: (Probe, parsed body, Set-Cookie headers)."""
    from opsnb.checks.http import Prober

    with Prober(timeout_s=timeout_s) as prober:
        probe = prober.probe(
            f"{app_url.rstrip('/')}/api/auth/session", headers={"Cookie": f"{cookie_name}={token}"}
        )
        response = prober.responses[-1]
        headers = response.headers.get_list("set-cookie") if response is not None else []
    return probe, (probe.json() if probe.status else None), headers


def check_session_token(app_url: str, token_env: str, secret_env: str) -> tuple[pd.DataFrame, list[str]]:
    """Decrypt the session token named by ``token_env`` with the secret named by ``secret_env``; ask the app
    whether it accepts the same token; records findings (secret changed, expired …); returns (table, Set-Cookie headers)."""
    import pandas as pd

    from opsnb.checks.secrets import secret

    if not token_env:
        findings.add(
            "info",
            "session token check skipped",
            "session_token_env is empty: give the name of a variable holding a session cookie value.",
            check="token",
        )
        return pd.DataFrame(columns=["field", "value"]), []
    token = secret(token_env).reveal()
    key = secret(secret_env).reveal()
    https = urlsplit(app_url).scheme == "https"
    try:
        header = token_header(token)
        version = token_version(header)
        token_format = f"JWE alg={header.get('alg')} enc={header.get('enc')} ({version})"
    except TokenError as exc:
        version, token_format = "v4", str(exc)
    cookie_name = expected_cookie_name("session-token", version if version != "unknown" else "v4", https)
    probe, body, set_cookies = probe_session_with_token(app_url, token, cookie_name)
    app_accepts = isinstance(body, dict) and bool(body.get("user"))
    app_verdict = (
        f"the app {'accepts' if app_accepts else 'does not accept'} it as {cookie_name} (HTTP {probe.status})"
    )
    try:
        claims = decode_session_token(token, key, cookie_name if version == "v5" else None)
    except TokenError as exc:
        rows = [
            {"field": "format", "value": token_format},
            {"field": "decrypts with $" + secret_env, "value": f"no ({exc.kind})"},
            {"field": "app", "value": app_verdict},
        ]
        if exc.kind == "secret-mismatch":
            findings.add(
                "P1",
                f"session token does not decrypt with ${secret_env}: the secret changed",
                f"{exc}. The classic 'secret changed' failure (JWEDecryptionFailed / JWT_SESSION_ERROR): tokens issued under the old "
                f"secret are unreadable, users see session errors. {app_verdict}"
                + (
                    " — so the app still uses another secret than the one checked here: compare the secret of every deployment."
                    if app_accepts
                    else "."
                )
                + " Fix: restore the previous secret (v5: keep it as AUTH_SECRET_1 during rotation), or accept that users sign in again; the same secret in every environment.",
                check="token",
            )
        elif exc.kind == "expired":
            findings.add(
                "P3",
                "session token expired",
                f"{exc}: the user must sign in again (expected behaviour, not a fault).",
                check="token",
            )
        else:
            findings.add("P2", "session token unreadable", f"{exc}. {app_verdict}.", check="token")
        return pd.DataFrame(rows, columns=["field", "value"]), set_cookies
    rows = [
        {"field": "format", "value": token_format},
        {"field": "decrypts with $" + secret_env, "value": "yes"},
        *token_summary(claims),
        {"field": "app", "value": app_verdict},
    ]
    if app_accepts:
        findings.ok(
            "session token decrypts and the app accepts it",
            f"{claims['_version']} token, {app_verdict}",
            check="token",
        )
    else:
        findings.add(
            "P2",
            "session token decrypts but the app rejects it",
            f"{app_verdict}: the app's secret or cookie name differs from the one checked here.",
            check="token",
        )
    return pd.DataFrame(rows, columns=["field", "value"]), set_cookies


# -- error codes in the logs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ErrorCode:
    """What a NextAuth error code means and what fixes it."""

    explanation: str
    fix: str
    severity: str = "P2"  # when seen in the recent window


# NextAuth v4 codes ([next-auth][error][CODE]) and Auth.js v5 error types ([auth][error] Type); OAuth error pages (?error=…).
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
        "let them use the original provider, or link accounts deliberately (allowDangerousEmailAccountLinking only for trusted providers)",
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
        hit = text.str.contains(r"\[next-auth\]\[error\]|\[auth\]\[error\]|error=", regex=True, na=False)
        for value, ts in zip(text[hit], frame.loc[hit, "timestamp"], strict=True):
            rows.extend({"timestamp": ts, "code": code} for code in dict.fromkeys(error_codes_in(str(value))))
    return pd.DataFrame(rows, columns=["timestamp", "code"])


def summarize_error_codes(events: pd.DataFrame) -> pd.DataFrame:
    """Per code: count, first/last seen, explanation and fix (most frequent first)."""
    import pandas as pd

    columns = ["code", "count", "first", "last", "explanation", "fix"]
    if events.empty:
        return pd.DataFrame(columns=columns)
    ts = pd.to_datetime(events["timestamp"], utc=True, errors="coerce")
    rows = []
    for code, group in events.assign(ts=ts).groupby("code"):
        info = ERROR_CODES.get(code, UNKNOWN_CODE)
        rows.append(
            {
                "code": code,
                "count": len(group),
                "first": group["ts"].min(),
                "last": group["ts"].max(),
                "explanation": info.explanation,
                "fix": info.fix,
            }
        )
    return pd.DataFrame(rows, columns=columns).sort_values(
        ["count", "code"], ascending=[False, True], ignore_index=True
    )


def check_error_codes(
    log_source: str, window_minutes: float = 60.0, since: str = "", bucket: str = "5min"
) -> pd.DataFrame:
    """Count NextAuth error codes (``[next-auth][error][CODE]``, ``[auth][error] Type``, ``?error=Code``) in the
    last ``window_minutes`` of ``log_source`` — or since ``since`` (ISO time, e.g. when a fix was deployed) —
    with opsnb.checks.logs.read_logs; plot them over time; one finding per code with the catalogue's severity."""
    import datetime as dt

    from opsnb.checks.logs import read_logs

    if not log_source:
        findings.add("info", "log check skipped", "log_source is empty.", check="logs")
        return summarize_error_codes(error_events(_empty_logs()))
    window = since or dt.timedelta(minutes=window_minutes)
    scope = f"since {since}" if since else f"in the last {window_minutes:.0f} min"
    logs = read_logs(log_source, since=window)
    events = error_events(logs.frame)
    summary = summarize_error_codes(events)
    if summary.empty:
        findings.ok(
            "no NextAuth error codes in the logs", f"{len(logs.frame)} log lines {scope}", check="logs"
        )
        return summary
    for row in summary.to_dict(orient="records"):
        info = ERROR_CODES.get(row["code"], UNKNOWN_CODE)
        findings.add(
            info.severity,
            f"NextAuth error {row['code']} in the logs",
            f"{row['count']} times {scope}: {info.explanation}. Fix: {info.fix}.",
            evidence={"count": row["count"], "first": row["first"], "last": row["last"]},
            check="logs",
        )
    _plot_error_codes(events, bucket)
    return summary


def _empty_logs() -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(columns=["timestamp", "message", "path"])


def _plot_error_codes(events: pd.DataFrame, bucket: str) -> None:
    import matplotlib.pyplot as plt
    import pandas as pd

    ts = pd.to_datetime(events["timestamp"], utc=True, errors="coerce")
    counts = (
        events.assign(ts=ts)
        .dropna(subset=["ts"])
        .groupby([pd.Grouper(key="ts", freq=bucket), "code"])
        .size()
        .unstack(fill_value=0)
    )
    if counts.empty:
        return
    counts.index = [t.strftime("%m-%d %H:%M") for t in counts.index]
    ax = counts.plot(kind="bar", stacked=True, figsize=(9, 3), width=0.9, rot=45, fontsize=7)
    ax.set_xlabel(f"UTC, {bucket} buckets")
    ax.set_ylabel("errors")
    ax.set_title("NextAuth error codes over time")
    plt.tight_layout()
    plt.show()


# -- database (Prisma adapter tables) --------------------------------------------------------------------------

ADAPTER_TABLES = ("User", "Account", "Session")


def adapter_tables(db: Database) -> list[str]:
    """Which of the Prisma adapter tables ("User", "Account", "Session") exist in the search path."""
    rows = db.rows(
        "SELECT t FROM unnest(%s::text[]) t WHERE to_regclass(quote_ident(t)) IS NOT NULL",
        (list(ADAPTER_TABLES),),
    )
    return [r["t"] for r in rows]


def recent_sessions(db: Database, limit: int = 20, max_age_days: float = 30.0) -> pd.DataFrame:
    """The newest database sessions (by expiry), user masked. NextAuth pushes "expires" to now + maxAge
    (default 30 days) when a session is used (at most once per updateAge, default 24 h), so expires - maxAge
    estimates the user's last sign-in or activity."""
    frame = db.query(
        """
        SELECT s."userId" AS user_id, u."email" AS email, s."expires" AS expires,
               s."expires" - make_interval(secs => %s) AS last_active_est, s."expires" > now() AS active
        FROM "Session" s LEFT JOIN "User" u ON u."id" = s."userId"
        ORDER BY s."expires" DESC LIMIT %s
        """,
        (max_age_days * 86400, limit),
    )
    frame["email"] = frame["email"].map(mask_email)
    return frame


def session_counts(db: Database) -> dict[str, int]:
    """Active and expired database sessions, and users created in the last 24 h (recent sign-ups)."""
    row = db.rows(
        """
        SELECT (SELECT count(*) FROM "Session" WHERE "expires" > now()) AS active,
               (SELECT count(*) FROM "Session" WHERE "expires" <= now()) AS expired,
               (SELECT count(*) FROM "User" WHERE "createdAt" > now() - interval '24 hours') AS new_users_24h
        """
    )[0]
    return {k: int(v) for k, v in row.items()}


def same_email_providers(db: Database, limit: int = 50) -> pd.DataFrame:
    """Emails (case-insensitive) whose users are linked to more than one provider: OAuthAccountNotLinked candidates."""
    frame = db.query(
        """
        SELECT lower(u."email") AS email, count(DISTINCT u."id") AS users,
               string_agg(DISTINCT a."provider", ', ' ORDER BY a."provider") AS providers
        FROM "User" u JOIN "Account" a ON a."userId" = u."id"
        WHERE u."email" IS NOT NULL
        GROUP BY lower(u."email")
        HAVING count(DISTINCT a."provider") > 1
        ORDER BY users DESC, email
        LIMIT %s
        """,
        (limit,),
    )
    frame["email"] = frame["email"].map(mask_email)
    return frame


def check_database(database_url_env: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Recent sessions and OAuthAccountNotLinked candidates when the Prisma adapter tables exist; returns
    (sessions table, same-email table)."""
    import pandas as pd

    from opsnb.checks.postgres import DatabaseError, connect

    empty = pd.DataFrame()
    if not database_url_env:
        findings.add(
            "info",
            "database check skipped",
            "database_url_env is empty (JWT sessions without an adapter).",
            check="database",
        )
        return empty, empty
    try:
        with connect(database_url_env) as db:
            tables = adapter_tables(db)
            if set(tables) != set(ADAPTER_TABLES):
                findings.add(
                    "info",
                    "no Prisma adapter tables",
                    f"found {', '.join(tables) or 'none'} of User, Account, Session: sessions live only in JWT cookies.",
                    check="database",
                )
                return empty, empty
            counts = session_counts(db)
            sessions = recent_sessions(db)
            linked = same_email_providers(db)
    except DatabaseError as exc:
        findings.add("P2", "auth database unreachable", str(exc), check="database")
        return empty, empty
    findings.ok(
        "database sessions",
        f"{counts['active']} active, {counts['expired']} expired sessions; {counts['new_users_24h']} users created in 24 h",
        check="database",
    )
    if len(linked):
        findings.add(
            "info",
            f"{len(linked)} email(s) linked to several providers",
            "these users already own accounts with more than one provider; a sign-in with a provider not linked to the existing "
            "user raises OAuthAccountNotLinked. Listed as candidates, not faults.",
            evidence=linked.head(10),
            check="database",
        )
    return sessions, linked
