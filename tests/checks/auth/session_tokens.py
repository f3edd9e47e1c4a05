"""Session tokens as NextAuth encrypts them, made with joserfc under keys derived here, independently of opsnb."""

from __future__ import annotations

import json
import time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from joserfc import jwe
from joserfc.jwk import OctKey

SECRET = "x" * 12 + "correct-horse-battery-staple-0123456789"
OTHER = "y" * 12 + "a-different-secret-of-good-length-999"


def nextauth_key(secret: str, version: str, cookie_name: str = "") -> bytes:
    """The key NextAuth derives (v4: 32 bytes, salt ''; v5: 64 bytes salted with the cookie name)."""
    if version == "v4":
        return HKDF(hashes.SHA256(), 32, b"", b"NextAuth.js Generated Encryption Key").derive(secret.encode())
    info = f"Auth.js Generated Encryption Key ({cookie_name})".encode()
    return HKDF(hashes.SHA256(), 64, cookie_name.encode(), info).derive(secret.encode())


def make_token(
    secret: str, version: str = "v4", cookie_name: str = "", exp_in: int = 3600, **claims: object
) -> str:
    """A session token as NextAuth encrypts it, for a user jane.doe@example.com."""
    now = int(time.time())
    payload = {"sub": "usr_000042", "email": "jane.doe@example.com", "name": "Jane Doe", **claims}
    payload |= {"iat": now, "exp": now + exp_in, "jti": "j-1"}
    enc = "A256GCM" if version == "v4" else "A256CBC-HS512"
    key = OctKey.import_key(nextauth_key(secret, version, cookie_name))
    return jwe.encrypt_compact({"alg": "dir", "enc": enc}, json.dumps(payload), key, algorithms=["dir", enc])
