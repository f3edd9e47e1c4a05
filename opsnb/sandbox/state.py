"""Where a sandbox keeps what it knows, and how to reach its parts.

Everything lives in the state folder (`$OPSNB_SANDBOX_DIR`, else `<project root>/.sandbox`):
`state.json` (ports, pids, secrets; 0600), `sandbox.env` (0600), `faults.json`, `stripe.json`,
`vercel.json`, `app-config.json`, `logs/` (component logs), `drain/` (Vercel log-drain NDJSON: synthetic
history plus the live app's lines) and the PostgreSQL cluster (`pg/`, or a folder under /tmp owned by
`postgres` when running as root). This module knows those files, the state's shape, and the URLs and
DSNs derived from it; it starts nothing.
"""

from __future__ import annotations

import os
import secrets
import string
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from opsnb.paths import project_root

from . import seed
from .postgres import LocalPostgres, free_port
from .store import read_json, write_json

DEFAULT_SCALE = 50_000
ADMIN_ROLE = "opsnb_admin"
VERCEL_PROJECT = "shop"
PORT_NAMES = ("postgres", "shop", "stripe", "vercel", "s3")


class SandboxError(RuntimeError):
    """A component failed (exit code 4): `component` names it, `log` is where to look."""

    def __init__(self, message: str, component: str | None = None, log: Path | str | None = None):
        super().__init__(message)
        self.component = component
        self.log = log

    def __str__(self) -> str:
        text = self.args[0]
        return f"{text} (log: {self.log})" if self.log and "log:" not in text else text


class UsageError(ValueError):
    """Bad arguments or a command that makes no sense in the current state (exit code 3)."""


def state_dir() -> Path:
    """`$OPSNB_SANDBOX_DIR` if set, else `<project root>/.sandbox`."""
    env = os.environ.get("OPSNB_SANDBOX_DIR")
    return Path(env).expanduser().resolve() if env else project_root() / ".sandbox"


class Paths:
    """Files of one sandbox state folder."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root else state_dir()
        self.state = self.root / "state.json"
        self.env_file = self.root / "sandbox.env"
        self.faults = self.root / "faults.json"
        self.stripe = self.root / "stripe.json"
        self.vercel = self.root / "vercel.json"
        self.app_config = self.root / "app-config.json"
        self.logs = self.root / "logs"
        self.drain = self.root / "drain"
        self.backups = self.root / "backups"

    def owned(self) -> list[Path]:
        """Everything the sandbox writes into its folder (what `down` removes)."""
        names = [
            self.state,
            self.env_file,
            self.faults,
            self.stripe,
            self.vercel,
            self.app_config,
            self.logs,
            self.drain,
            self.backups,
            self.root / "pg",
        ]
        leftovers = list(self.root.glob("*.lock")) + list(self.root.glob(".*.json.*"))
        return names + leftovers


def token(prefix: str = "", n: int = 24) -> str:
    """A random URL-safe secret."""
    return prefix + secrets.token_urlsafe(n)


def new_state(scale: int, faults: dict[str, bool]) -> dict[str, Any]:
    """A fresh state: distinct free ports, new secrets, nothing started or seeded yet."""
    alnum = string.ascii_uppercase + string.digits
    ports: dict[str, int] = {}
    while len(set(ports.values())) < len(PORT_NAMES):
        ports = {name: free_port() for name in PORT_NAMES}
    return {
        "version": 1,
        "created": time.time(),
        "scale": scale,
        "seeded": False,
        "initial_faults": faults,
        "ports": ports,
        "pids": {},
        "pg": None,
        "secrets": {
            "admin_password": token(),
            "app_password": token(),
            "maint_password": token(),
            "reader_password": token(),
            "stripe_secret_key": token("sk_test_51Sandbox", 30),
            "webhook_secret": token("whsec_", 24),
            "webhook_secret_old": token("whsec_", 24),
            "vercel_token": token("", 18),
            "aws_access_key_id": "AKIA" + "".join(secrets.choice(alnum) for _ in range(16)),
            "aws_secret_access_key": token("", 30),
            "nextauth_secret": token("", 32),
        },
        "session_token": None,
        "backups": [],
        "facts": {},
    }


def save(paths: Paths, st: dict) -> None:
    """Write state.json (atomically, 0600)."""
    write_json(paths.state, st)


def load(paths: Paths) -> dict | None:
    """The saved state, or None when there is no sandbox in this folder."""
    return read_json(paths.state)


def postgres(st: dict) -> LocalPostgres:
    """A handle on the sandbox's cluster (state must already hold its `pg` entry)."""
    info = st["pg"]
    return LocalPostgres(
        info["folder"],
        port=st["ports"]["postgres"],
        bindir=Path(info["bindir"]),
        stat_statements=has_stat_statements(st),
    )


def has_stat_statements(st: dict) -> bool:
    """Whether the sandbox's PostgreSQL has pg_stat_statements (state from before the probe: yes)."""
    return bool((st.get("pg") or {}).get("stat_statements", True))


def dsn(st: dict, role: str, db: str = seed.SHOP_DB) -> str:
    """URL of the sandbox's database `db` as `role`."""
    password = {
        ADMIN_ROLE: st["secrets"]["admin_password"],
        seed.APP_ROLE: st["secrets"]["app_password"],
        seed.MAINT_ROLE: st["secrets"]["maint_password"],
        # states written before the reader role existed get a password on first use
        seed.READER_ROLE: st["secrets"].setdefault("reader_password", token()),
    }[role]
    return f"postgresql://{role}:{quote(password, safe='')}@127.0.0.1:{st['ports']['postgres']}/{db}"


def internal_dsn(st: dict, db: str = seed.SHOP_DB) -> str:
    """Superuser URL for the sandbox's own housekeeping, kept out of pg_stat_statements."""
    return dsn(st, ADMIN_ROLE, db) + "?options=-c%20pg_stat_statements.track%3Dnone"


def url(st: dict, port_name: str = "shop") -> str:
    """http://127.0.0.1:<port> of one of the sandbox's HTTP components."""
    return f"http://127.0.0.1:{st['ports'][port_name]}"


def require_up(paths: Paths) -> dict:
    """The state of a seeded sandbox whose PostgreSQL runs; UsageError otherwise."""
    st = load(paths)
    if not st or not st.get("seeded"):
        raise UsageError(f"the sandbox is not up (state: {paths.root}); run `opsnb sandbox up` first")
    if not postgres(st).is_running():
        raise UsageError("the sandbox's postgres is not running; run `opsnb sandbox up` to restart it")
    return st
