"""Session errors after a secret change: NextAuth's encrypted session tokens, read as NextAuth reads them.

v4 encrypts the session JWT as a JWE ``dir`` + A256GCM under HKDF-SHA256(secret, salt "", 32 bytes); v5 as
``dir`` + A256CBC-HS512 under HKDF-SHA256(secret, salt = cookie name, 64 bytes). Check ``auth.session-token``:
the token held by ``session_token_env`` decrypts with the secret and the app accepts it. A token that no
longer decrypts is the classic *secret changed* failure (JWEDecryptionFailed / JWT_SESSION_ERROR).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from opsnb.checks.auth.facts import (
    COOKIE_BASES,
    REACH_HINT,
    V4_ENC,
    V4_INFO,
    V5_ENC,
    V5_INFO_TEMPLATE,
    mask_email,
)
from opsnb.checks.auth.verdicts import Judgement
from opsnb.checks.findings import CouldNotLook, check, conclude
from opsnb.checks.secrets import secret

if TYPE_CHECKING:
    import pandas as pd

    from opsnb.checks.auth.probes import AuthAnswers

CLOCK_TOLERANCE_S = 15  # NextAuth accepts a token this long past its exp
TOKEN_HINT = "set session_token_env to a variable holding the value of a signed-in user's session cookie"


class TokenError(ValueError):
    """A session token that could not be read; ``kind`` is 'malformed', 'not-jwe', 'secret-mismatch' or 'expired'."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def derive_key(secret_value: str, version: str = "v4", cookie_name: str = "authjs.session-token") -> bytes:
    """The content-encryption key NextAuth derives: v4 HKDF-SHA256(secret, salt '', 32 bytes);
    v5 HKDF-SHA256(secret, salt = cookie name, info naming the cookie, 64 bytes)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    if version == "v4":
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"", info=V4_INFO).derive(
            secret_value.encode()
        )
    info = V5_INFO_TEMPLATE.format(salt=cookie_name).encode()
    return HKDF(algorithm=hashes.SHA256(), length=64, salt=cookie_name.encode(), info=info).derive(
        secret_value.encode()
    )


def token_header(token: str) -> dict[str, Any]:
    """The protected header of a compact JWE; TokenError('malformed'/'not-jwe') otherwise."""
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
    """Candidate session cookie names (the salts of v5 keys): https first, then http."""
    base = COOKIE_BASES.get(version, COOKIE_BASES["v5"]) + "session-token"
    return [f"__Secure-{base}", base]


def cookie_name_for(token: str, https: bool, app_version: str = "v4") -> str:
    """The session cookie name the app reads ``token`` from: by the token's version (a JWE says it), else by
    the app's (``app_version``; an opaque database-session id does not say), and by the site's scheme
    (``__Secure-`` on https)."""
    try:
        version = token_version(token_header(token))
    except TokenError:
        version = "unknown"
    if version == "unknown":
        version = app_version if app_version in COOKIE_BASES else "v4"
    base = COOKIE_BASES[version] + "session-token"
    return f"__Secure-{base}" if https else base


def decode_session_token(
    token: str,
    secret_value: str,
    cookie_name: str | None = None,
    now: float | None = None,
    leeway_s: int = CLOCK_TOLERANCE_S,
) -> dict[str, Any]:
    """Decrypt a NextAuth session token with ``secret_value``; its claims plus '_version' and '_cookie'.

    The version follows the JWE header (A256GCM → v4, A256CBC-HS512 → v5). For v5 the key depends on the cookie
    name: ``cookie_name`` or both the https and http names are tried. Raises TokenError: 'secret-mismatch'
    when no key derived from the secret opens it, 'expired' past ``exp`` (+ NextAuth's clock tolerance).
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
            f"unexpected JWE algorithms alg={header.get('alg')} enc={header.get('enc')} "
            "(NextAuth uses dir with A256GCM or A256CBC-HS512)",
        )
    if version == "v5":
        names = [cookie_name] if cookie_name else session_cookie_names("v5")
    else:
        names = [""]  # v4 keys do not depend on the cookie name
    last_error = "decryption failed"
    for name in names:
        key = OctKey.import_key(derive_key(secret_value, version, name))
        try:
            plaintext = jwe.decrypt_compact(token, key, algorithms=["dir", header["enc"]]).plaintext
        except (JoseError, ValueError) as exc:
            last_error = f"{type(exc).__name__}: {exc}"
            continue
        claims = _claims(plaintext)
        _not_expired(claims, time.time() if now is None else now, leeway_s)
        return {**claims, "_version": version, "_cookie": name or "next-auth.session-token"}
    raise TokenError("secret-mismatch", f"no key derived from this secret decrypts it ({last_error})")


def _claims(plaintext: bytes) -> dict[str, Any]:
    """The decrypted payload as a JSON object; TokenError('malformed') otherwise."""
    try:
        claims = json.loads(plaintext)
    except ValueError:
        raise TokenError("malformed", "decrypted, but the payload is not JSON") from None
    if not isinstance(claims, dict):
        raise TokenError("malformed", "decrypted, but the payload is not a JSON object")
    return claims


def _not_expired(claims: Mapping[str, Any], now: float, leeway_s: int) -> None:
    """TokenError('expired') when ``exp`` (plus the leeway) lies before ``now``."""
    exp = claims.get("exp")
    if isinstance(exp, (int, float)) and exp + leeway_s < now:
        raise TokenError("expired", f"decrypted, but it expired {_ago(now - exp)} ago")


def _ago(seconds: float) -> str:
    """A duration as '2.0 d', '3.5 h', '12.0 min' or '40 s'."""
    seconds = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def token_summary(claims: Mapping[str, Any], now: float | None = None) -> list[dict[str, Any]]:
    """Rows (field, value) describing a decoded token: version, issued/expiry in UTC, subject, masked email."""
    import datetime as dt

    current = time.time() if now is None else now

    def when(ts: Any) -> str | None:
        if not isinstance(ts, (int, float)):
            return None
        return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")

    exp = claims.get("exp")
    rows = [
        ("version", claims.get("_version")),
        ("cookie", claims.get("_cookie")),
        ("issued (iat)", when(claims.get("iat"))),
        ("expires (exp)", when(exp)),
        ("expires in", _ago(exp - current) if isinstance(exp, (int, float)) else None),
        ("subject (sub)", claims.get("sub")),
        ("email", mask_email(claims.get("email"))),
        ("name", (str(claims["name"])[:1] + "***") if claims.get("name") else None),
        ("claims", ", ".join(sorted(k for k in claims if not k.startswith("_")))),
    ]
    return [{"field": k, "value": v} for k, v in rows]


def _token_format(token: str) -> str:
    """'JWE alg=dir enc=A256GCM (v4)', or why the token is not a JWE."""
    try:
        header = token_header(token)
    except TokenError as exc:
        return str(exc)
    return f"JWE alg={header.get('alg')} enc={header.get('enc')} ({token_version(header)})"


def _app_view(answers: AuthAnswers) -> tuple[bool | None, str]:
    """(does the app accept the token: True/False, None when it gave no answer; the sentence saying so)."""
    answer, cookie = answers.with_token, answers.token_cookie
    if answer is None or not answer.answered:
        why = answer.why_not() if answer is not None else "the app was not asked"
        return None, why
    try:
        body = answer.json()
    except ValueError:
        body = None
    accepts = isinstance(body, dict) and bool(body.get("user"))
    return (
        accepts,
        f"the app {'accepts' if accepts else 'does not accept'} it as {cookie} (HTTP {answer.probe.status})",
    )


@check(
    "auth.session-token", essential=False, hint=TOKEN_HINT
)  # optional input; its blind spots are others' too
def check_session_token(answers: AuthAnswers, secret_env: str) -> pd.DataFrame:
    """The session token held by ``answers.token_env`` decrypts with the secret held by ``secret_env``, and
    the app (asked with it by :func:`opsnb.checks.auth.probes.ask`) accepts it."""
    import pandas as pd

    if answers.token_error or not answers.token_env:
        raise CouldNotLook(
            answers.token_error or "no session token was given (session_token_env is empty)", TOKEN_HINT
        )
    token = secret(answers.token_env).reveal().strip()
    key = secret(secret_env).reveal()
    accepts, app_says = _app_view(answers)
    rows = [{"field": "format", "value": _token_format(token)}]
    try:
        claims = decode_session_token(token, key, answers.token_cookie or None)
    except TokenError as exc:
        rows += [
            {"field": f"decrypts with ${secret_env}", "value": f"no ({exc.kind})"},
            {"field": "app", "value": app_says},
        ]
        found = _unreadable(exc, secret_env, accepts, app_says)
        evidence = pd.DataFrame(rows, columns=["field", "value"])
        return found.conclude(evidence)
    rows += [
        {"field": f"decrypts with ${secret_env}", "value": "yes"},
        *token_summary(claims),
        {"field": "app", "value": app_says},
    ]
    evidence = pd.DataFrame(rows, columns=["field", "value"])
    if accepts is None:
        raise CouldNotLook(f"the token decrypts with ${secret_env}, but {app_says}", REACH_HINT)
    if accepts:
        return conclude(
            "pass",
            f"The session token decrypts with ${secret_env} and the app accepts it",
            detail=f"{claims['_version']} token; {app_says}",
            evidence=evidence,
        )
    return conclude(
        "warn",
        f"The session token decrypts with ${secret_env} but the app rejects it",
        severity="P2",
        detail=f"{app_says}: the app's secret or cookie name differs from the one checked here.",
        evidence=evidence,
    )


def _unreadable(exc: TokenError, secret_env: str, accepts: bool | None, app_says: str) -> Judgement:
    """The conclusion for a token the secret could not read: changed secret, expired, or not NextAuth's."""
    if exc.kind == "secret-mismatch":
        if accepts:
            app = (
                f" {app_says}: the app still uses another secret than ${secret_env}; compare the secret of "
                "every deployment."
            )
        else:
            app = f" {app_says}."
        return Judgement(
            "fail",
            f"The session token does not decrypt with ${secret_env}: the secret changed",
            "P1",
            f"{exc}. The classic 'secret changed' failure (JWEDecryptionFailed / JWT_SESSION_ERROR): tokens "
            f"issued under the old secret are unreadable, users see session errors.{app} Fix: restore the previous "
            "secret (v5: keep it as AUTH_SECRET_1 during rotation), or accept that users sign in again; the same "
            "secret in every environment.",
        )
    if exc.kind == "expired":
        return Judgement(
            "warn",
            f"The session token decrypts with ${secret_env} but has expired",
            "P3",
            f"{exc}: its user signs in again (expected behaviour); give a fresh cookie to see whether the "
            "app accepts a current one.",
        )
    return Judgement(
        "warn",
        "The session token is not a NextAuth session JWE",
        "P2",
        f"{exc}; {app_says}. A database-session id is not a JWE: use a JWT-strategy cookie, or read the "
        "Session table (auth.database-sessions).",
    )
