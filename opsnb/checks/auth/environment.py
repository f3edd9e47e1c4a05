"""The kernel's environment as the auth checks read it: plain (non-secret) variables such as NEXTAUTH_URL,
the names that are set, and which NextAuth version they and the app's cookies point to.

Secrets are not read here: they go through :func:`opsnb.checks.secrets.secret` only.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from opsnb.checks.auth.facts import COOKIE_BASES, V4_VARS, V5_VARS, strip_cookie_prefix


def env_value(name: str) -> str | None:
    """A non-secret variable from the kernel environment, else from $OPSNB_ENV_FILE (JupyterLab sessions)."""
    if not name:
        return None
    value = os.environ.get(name)
    if value is not None:
        return value
    return _env_file().get(name)


def env_names() -> set[str]:
    """Names of the variables set (non-empty) in the kernel environment or in $OPSNB_ENV_FILE."""
    return {k for k, v in os.environ.items() if v} | {k for k, v in _env_file().items() if v}


def _env_file() -> dict[str, str]:
    """$OPSNB_ENV_FILE's variables; an unreadable or refused file counts as empty (the runner reports it)."""
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
    cookies = [strip_cookie_prefix(c) for c in cookie_names]
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
        also = f"; v5 ones too ({', '.join(v5)})" if v5 else ""
        return "v4", f"NextAuth v4 variables are set ({', '.join(v4)}){also}"
    return "unknown", "neither NEXTAUTH_* nor AUTH_* variables nor auth cookies were found"
