"""Runbook Investigation 2, "Check environment variables" (`echo $NEXTAUTH_URL`, `echo $NEXTAUTH_SECRET`),
and the common cause "Wrong NEXTAUTH_URL: must match production domain exactly" — judged, never printed.

Checks ``auth.nextauth-url`` and ``auth.nextauth-secret``. The values are read from this machine's
environment (or the run's env file); a variable that is not set here is inconclusive, because this machine
cannot tell whether the deployment has it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import SplitResult, urlsplit

from opsnb.checks.auth.environment import detect_version, env_names, env_value
from opsnb.checks.auth.facts import MIN_SECRET_CHARS, is_local_host
from opsnb.checks.auth.verdicts import Verdict, failed, judge, passed, table
from opsnb.checks.findings import CouldNotLook, check, conclude
from opsnb.checks.secrets import Secret, secret

if TYPE_CHECKING:
    import pandas as pd

URL_HINT = (
    "set the variable named by nextauth_url_var (NEXTAUTH_URL; AUTH_URL in v5) to the deployment's value, "
    "e.g. from `vercel env pull`"
)
SECRET_HINT = (
    "set the variable named by nextauth_secret_env (NEXTAUTH_SECRET; AUTH_SECRET in v5) to the deployment's "
    "secret, e.g. from `vercel env pull`"
)


def _origin(parts: SplitResult) -> tuple[str, str, int | None]:
    """(scheme, lower-case host, port with the scheme's default filled in; None when the port is bad)."""
    default = {"http": 80, "https": 443}.get(parts.scheme)
    try:
        port = parts.port or default
    except ValueError:
        port = None
    return parts.scheme, (parts.hostname or "").lower(), port


def url_rules(value: str, app_url: str, production: bool, name: str = "NEXTAUTH_URL") -> list[Verdict]:
    """The runbook's rules for a set NEXTAUTH_URL / AUTH_URL: an absolute http(s) URL, equal to the public
    URL, https and not localhost in production, no path, no trailing slash. Details describe differences,
    never the value itself."""
    parts = urlsplit(value.strip())
    app = urlsplit(app_url.strip())
    app_origin = f"{app.scheme}://{app.netloc}"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        fix = f"Fix: set it to {app_origin}."
        return [failed(name, "is an absolute http(s) URL", "is not an absolute http(s) URL", "P1", fix)]
    verdicts = [passed(name, "is an absolute http(s) URL"), _same_origin(name, parts, app, app_origin)]
    scheme, host, _ = _origin(parts)
    if production and scheme != "https":
        verdicts.append(
            failed(
                name,
                "uses https in production",
                "uses http in production",
                "P1",
                f"{name} uses http in production: cookies lose Secure and OAuth providers refuse the callback. "
                "Fix: use https://.",
            )
        )
    else:
        verdicts.append(
            passed(
                name,
                "uses https in production",
                "uses https" if scheme == "https" else "uses http (not production)",
            )
        )
    if production and is_local_host(host):
        verdicts.append(
            failed(
                name,
                "is not localhost in production",
                "points at localhost in production",
                "P1",
                f"{name} points at a localhost address in production (the runbook: a localhost URL is wrong "
                "for production).",
            )
        )
    else:
        local = "may be a localhost address (not production)"
        verdicts.append(
            passed(
                name, "is not localhost in production", "is not a localhost address" if production else local
            )
        )
    if parts.path.rstrip("/") or parts.query or parts.fragment:
        verdicts.append(
            failed(
                name,
                "has no path",
                "carries a path or query",
                "P2",
                f"{name} carries a path or query; NextAuth expects the bare origin unless a custom basePath is "
                f"configured. Fix: {app_origin}.",
            )
        )
    else:
        verdicts.append(passed(name, "has no path"))
    if value.strip().endswith("/"):
        verdicts.append(
            failed(
                name,
                "has no trailing slash",
                "ends with a slash",
                "P3",
                f"{name} ends with '/'; the runbook wants the domain exactly. Fix: drop the trailing slash.",
            )
        )
    else:
        verdicts.append(passed(name, "has no trailing slash"))
    return verdicts


def _same_origin(name: str, parts: SplitResult, app: SplitResult, app_origin: str) -> Verdict:
    """Same scheme, host and port as the public URL (default ports filled in, host case ignored)."""
    scheme, host, port = _origin(parts)
    want_scheme, want_host, want_port = _origin(app)
    differences = []
    if scheme != want_scheme:
        differences.append(f"scheme is {scheme}, the public URL uses {want_scheme}")
    if host != want_host:
        differences.append("host differs" + (" (it is a localhost address)" if is_local_host(host) else ""))
    if port != want_port:
        differences.append("port differs")
    if not differences:
        return passed(name, "equals the public URL", detail=f"same scheme, host and port as {app_origin}")
    return failed(
        name,
        "equals the public URL",
        "differs from the public URL",
        "P1",
        f"{name} does not match the public URL {app_origin}: {'; '.join(differences)}. Sign-in redirects and "
        f"callbackUrl point elsewhere (redirect_uri_mismatch, CLIENT_FETCH_ERROR). Fix: set {name}={app_origin} "
        "and redeploy.",
    )


def secret_rules(
    value: Secret | str, name: str = "NEXTAUTH_SECRET", min_chars: int = MIN_SECRET_CHARS
) -> list[Verdict]:
    """A set secret is at least ``min_chars`` long and has no surrounding whitespace (never shown)."""
    text = value.reveal() if isinstance(value, Secret) else value
    verdicts = []
    rule = f"is at least {min_chars} characters long"
    if len(text) < min_chars:
        verdicts.append(
            failed(
                name,
                rule,
                f"is shorter than {min_chars} characters",
                "P2",
                f"{name} is shorter than {min_chars} characters: session tokens can be brute-forced offline. "
                "Fix: a new `openssl rand -base64 32` (every user is signed out once).",
            )
        )
    else:
        verdicts.append(passed(name, rule))
    if text != text.strip():
        verdicts.append(
            failed(
                name,
                "has no surrounding whitespace",
                "has surrounding whitespace",
                "P2",
                f"{name} has leading or trailing whitespace: deployments holding the trimmed value cannot "
                "decrypt its tokens.",
            )
        )
    else:
        verdicts.append(passed(name, "has no surrounding whitespace"))
    return verdicts


@check("auth.nextauth-url", hint=URL_HINT)
def check_nextauth_url(app_url: str, production: bool, url_var: str = "NEXTAUTH_URL") -> pd.DataFrame:
    """Wrong NEXTAUTH_URL: the variable named ``url_var`` against the public URL users reach (``app_url``)."""
    import pandas as pd

    value = env_value(url_var)
    if not value:
        version, why = detect_version(env_names())
        if version == "v5" and (env_value("AUTH_TRUST_HOST") or env_value("VERCEL")):
            return conclude(
                "pass",
                f"{url_var} is unset and Auth.js v5 trusts the request host",
                detail=f"{why}; AUTH_TRUST_HOST (or Vercel) makes v5 build URLs from the request's host",
                evidence=pd.DataFrame([{"variable": url_var, "set": False, "version": version}]),
            )
        raise CouldNotLook(f"${url_var} is not set in this environment", URL_HINT)
    verdicts = url_rules(value, app_url, production, url_var)
    where = "production" if production else "non-production"
    found = judge(
        verdicts,
        f"{url_var} equals the public URL",
        f"{where} rules: " + "; ".join(v.finding for v in verdicts),
    )
    return found.conclude(table(verdicts))


@check("auth.nextauth-secret", hint=SECRET_HINT)
def check_nextauth_secret(
    secret_env: str = "NEXTAUTH_SECRET", min_chars: int = MIN_SECRET_CHARS
) -> pd.DataFrame:
    """The secret named ``secret_env`` is long enough and clean (its value is never shown)."""
    if not secret_env:
        raise CouldNotLook("nextauth_secret_env is empty: no secret to judge", SECRET_HINT)
    verdicts = secret_rules(secret(secret_env), secret_env, min_chars)
    found = judge(
        verdicts,
        f"{secret_env} is set and at least {min_chars} characters long",
        "; ".join(v.finding for v in verdicts),
    )
    return found.conclude(table(verdicts))
