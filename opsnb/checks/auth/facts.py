"""What NextAuth v4 and Auth.js v5 are, as far as the checks need to know: variable names, cookie names,
token encryption, and the limits the runbook and the browsers set. No I/O here."""

from __future__ import annotations

from typing import Any

# Session tokens: v4 encrypts with A256GCM under HKDF(secret, salt "", this info); v5 with A256CBC-HS512 under
# HKDF(secret, salt = cookie name, info naming the cookie).
V4_INFO = b"NextAuth.js Generated Encryption Key"
V5_INFO_TEMPLATE = "Auth.js Generated Encryption Key ({salt})"
V4_ENC = "A256GCM"
V5_ENC = "A256CBC-HS512"

# Cookies: "next-auth." (v4) or "authjs." (v5), prefixed on https (__Host- for the csrf token, __Secure- else).
COOKIE_PREFIXES = ("__Secure-", "__Host-")
COOKIE_BASES = {"v4": "next-auth.", "v5": "authjs."}

# Variables whose presence tells the versions apart.
V4_VARS = ("NEXTAUTH_URL", "NEXTAUTH_SECRET")
V5_VARS = ("AUTH_URL", "AUTH_SECRET", "AUTH_TRUST_HOST", "AUTH_SECRET_1", "AUTH_GOOGLE_ID")

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}
MIN_SECRET_CHARS = 32  # `openssl rand -base64 32` (what NextAuth's docs suggest) gives 44 characters
COOKIE_MAX_BYTES = 4096  # browsers' per-cookie limit; NextAuth splits larger session cookies into .0, .1, …
SLOW_AUTH_MS = 1000.0  # an auth endpoint slower than this makes sign-in feel broken (P3)
AUTH_PATH = "/api/auth"  # NextAuth's catch-all route
ENDPOINTS = ("providers", "csrf", "session")  # what a signed-out visitor's browser asks for
REACH_HINT = "check that this machine reaches app_url; if the whole site is down, run the 500-triage runbook"


def is_local_host(host: str) -> bool:
    """True for localhost, loopback and wildcard addresses."""
    host = host.lower().strip("[]")
    return host in LOCAL_HOSTS or host.endswith(".localhost") or host.startswith("127.")


def strip_cookie_prefix(name: str) -> str:
    """A cookie name without its ``__Secure-`` / ``__Host-`` prefix."""
    for prefix in COOKIE_PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def mask_email(email: Any) -> str | None:
    """'jane.doe@example.com' → 'j***@example.com' (enough to recognise a user, not to read the address)."""
    if not isinstance(email, str) or not email:
        return None
    local, at, domain = email.partition("@")
    if not at:
        return email[:1] + "***"
    return f"{local[:1]}***@{domain}"


def listing(items: list[str]) -> str:
    """'a', 'a and b', 'a, b and c': statements joined as a sentence."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
