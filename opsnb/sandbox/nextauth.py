"""NextAuth v4 session tokens (JWE `dir` + A256GCM, key = HKDF-SHA256(secret, "", info, 32 bytes)) and the
cookies v4 carries them in (`__Secure-`/`__Host-` names and `Secure` when NEXTAUTH_URL is https)."""

from __future__ import annotations

import json
import time
import uuid
from email.utils import formatdate
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from joserfc import jwe
from joserfc.jwk import OctKey

V4_INFO = b"NextAuth.js Generated Encryption Key"
SESSION_COOKIE = "next-auth.session-token"
CSRF_COOKIE = "next-auth.csrf-token"
CALLBACK_COOKIE = "next-auth.callback-url"
MAX_AGE = 30 * 24 * 3600
_ALGS = ["dir", "A256GCM"]


def encryption_key(secret: str) -> bytes:
    """The 32-byte key NextAuth v4 derives from NEXTAUTH_SECRET."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"", info=V4_INFO).derive(secret.encode())


def encode_session(claims: dict[str, Any], secret: str, max_age: int = MAX_AGE) -> str:
    """A session token as NextAuth v4's `encode()` makes it (adds iat, exp, jti)."""
    now = int(time.time())
    payload = {**claims, "iat": now, "exp": now + max_age, "jti": str(uuid.uuid4())}
    key = OctKey.import_key(encryption_key(secret))
    return jwe.encrypt_compact({"alg": "dir", "enc": "A256GCM"}, json.dumps(payload), key, algorithms=_ALGS)


def decode_session(token: str, secret: str) -> dict[str, Any]:
    """Claims of a v4 session token; raises ValueError when it cannot be decrypted or has expired."""
    key = OctKey.import_key(encryption_key(secret))
    try:
        result = jwe.decrypt_compact(token, key, algorithms=_ALGS)
        claims = json.loads(result.plaintext)
    except Exception as exc:  # joserfc raises several error types
        raise ValueError("decryption operation failed") from exc
    if claims.get("exp") and claims["exp"] < time.time():
        raise ValueError('"exp" claim timestamp check failed')
    return claims


def cookie_name(base: str, secure: bool) -> str:
    """v4's cookie name for `base`: `__Host-` for the csrf token and `__Secure-` for the others on https."""
    if not secure:
        return base
    return ("__Host-" if base == CSRF_COOKIE else "__Secure-") + base


def set_cookie(
    name: str, value: str, *, secure: bool, expires: float | None = None, max_age: int | None = None
) -> str:
    """A Set-Cookie value with v4's options (Path=/, HttpOnly, SameSite=Lax; Secure on https), attributes in
    the order the `cookie` package serializes them."""
    parts = [f"{name}={value}"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    parts.append("Path=/")
    if expires is not None:
        parts.append(f"Expires={formatdate(expires, usegmt=True)}")
    parts.append("HttpOnly")
    if secure:
        parts.append("Secure")
    parts.append("SameSite=Lax")
    return "; ".join(parts)


def session_claims(claims: dict[str, Any]) -> dict[str, Any]:
    """The user claims of a decoded token, without the times `encode_session` adds."""
    return {k: v for k, v in claims.items() if k not in ("iat", "exp", "jti")}
