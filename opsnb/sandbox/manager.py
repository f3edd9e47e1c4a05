"""Sandbox lifecycle: `up`, `down`, `status`, `reset`, `set_fault`.

Everything lives in the state folder (`$OPSNB_SANDBOX_DIR`, else `<project root>/.sandbox`):
`state.json` (ports, pids, secrets; 0600), `sandbox.env` (0600), `faults.json`, `stripe.json`,
`vercel.json`, `app-config.json`, `logs/` (component logs), `drain/` (Vercel log-drain NDJSON: synthetic
history rewritten when 500-burst or nextauth-url is switched, plus the live app's lines) and the
PostgreSQL cluster (`pg/`, or a folder under /tmp owned by `postgres` when running as root).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import string
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from . import drain, s3, seed
from .postgres import (
    LocalPostgres,
    PostgresError,
    cluster_parent,
    free_port,
    port_open,
    resolve_bindir,
    server_major,
    stat_statements_available,
)
from .store import JsonStore, read_json, write_json

FAULTS = ("missing-index", "stuck-orders", "500-burst", "idle-in-transaction", "nextauth-url")
LOGGED_FAULTS = ("500-burst", "nextauth-url")  # faults the drain's synthetic history shows
DEFAULT_SCALE = 50_000
ADMIN_ROLE = "opsnb_admin"
VERCEL_PROJECT = "shop"
BAD_NEXTAUTH_URL = "http://localhost:3000"
STANDINS_MARKER = "opsnb.sandbox.standins"
WORKER_MARKER = "opsnb.sandbox.worker"
MOTO_MARKER = "moto.server"

Log = Callable[[str], None]


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


# --- paths and state ------------------------------------------------------------------------------


def project_root() -> Path:
    """The repository root (opsnb.paths when present)."""
    try:
        from opsnb.paths import project_root as root  # type: ignore[import-not-found]

        return Path(root())
    except ImportError:
        return Path(__file__).resolve().parents[2]


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
        extra = [p for p in self.root.glob("*.lock")] + [p for p in self.root.glob(".*.json.*")]
        return names + extra


def parse_faults(spec: str | None) -> dict[str, bool] | None:
    """`all` | `none` | `a,b` → {fault: on}; None stays None; unknown names raise UsageError."""
    if spec is None:
        return None
    spec = spec.strip()
    if spec == "all":
        return dict.fromkeys(FAULTS, True)
    if spec in ("none", ""):
        return dict.fromkeys(FAULTS, False)
    chosen = [s.strip() for s in spec.split(",") if s.strip()]
    unknown = [c for c in chosen if c not in FAULTS]
    if unknown:
        raise UsageError(f"unknown fault {', '.join(unknown)} (choose from {', '.join(FAULTS)}, all, none)")
    return {f: f in chosen for f in FAULTS}


def _token(prefix: str = "", n: int = 24) -> str:
    return prefix + secrets.token_urlsafe(n)


def _new_state(paths: Paths, scale: int, faults: dict[str, bool]) -> dict[str, Any]:
    alnum = string.ascii_uppercase + string.digits
    ports: dict[str, int] = {}
    while len(set(ports.values())) < 5:
        ports = {name: free_port() for name in ("postgres", "shop", "stripe", "vercel", "s3")}
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
            "admin_password": _token(),
            "app_password": _token(),
            "maint_password": _token(),
            "reader_password": _token(),
            "stripe_secret_key": _token("sk_test_51Sandbox", 30),
            "webhook_secret": _token("whsec_", 24),
            "webhook_secret_old": _token("whsec_", 24),
            "vercel_token": _token("", 18),
            "aws_access_key_id": "AKIA" + "".join(secrets.choice(alnum) for _ in range(16)),
            "aws_secret_access_key": _token("", 30),
            "nextauth_secret": _token("", 32),
        },
        "session_token": None,
        "backups": [],
        "facts": {},
    }


def _save(paths: Paths, st: dict) -> None:
    write_json(paths.state, st)


def _load(paths: Paths) -> dict | None:
    return read_json(paths.state)


# --- processes ------------------------------------------------------------------------------------


def _alive(pid: int | None, marker: str | None = None) -> bool:
    """True when pid runs (not a zombie) and its command line contains marker."""
    if not pid:
        return False
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)  # reap our own dead children
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    proc = Path(f"/proc/{pid}")
    if proc.exists():
        try:
            if (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                return False
            if marker and marker not in (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(
                errors="replace"
            ):
                return False
        except (OSError, IndexError):
            return False
    return True


def _spawn(cmd: list[str], log_path: Path) -> int:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])  # where this opsnb package lives
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            cwd=root,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
    return proc.pid


def _stop(pid: int | None, marker: str, timeout: float = 5) -> None:
    if not _alive(pid, marker):
        return
    assert pid is not None
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _alive(pid, marker):
                return
            time.sleep(0.05)


def _http(url: str, headers: dict[str, str] | None = None, timeout: float = 3) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read(2000).decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(2000).decode(errors="replace")
    except (urllib.error.URLError, OSError) as exc:
        return 0, str(exc)


def _wait(predicate: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


# --- components -----------------------------------------------------------------------------------


def _pg(st: dict) -> LocalPostgres:
    info = st["pg"]
    return LocalPostgres(
        info["folder"],
        port=st["ports"]["postgres"],
        bindir=Path(info["bindir"]),
        stat_statements=_has_pgss(st),
    )


def _has_pgss(st: dict) -> bool:
    """Whether the sandbox's PostgreSQL has pg_stat_statements (state from before the probe: yes)."""
    return bool((st.get("pg") or {}).get("stat_statements", True))


def notes(paths: Paths | None = None) -> list[str]:
    """Lines `up` and `status` print beside the table (e.g. a PostgreSQL without pg_stat_statements)."""
    st = _load(paths or Paths())
    if not st or not st.get("pg") or _has_pgss(st):
        return []
    source = st["pg"].get("source", "system")
    return [
        f"pg_stat_statements is not available in this PostgreSQL ({source}): slow-queries reports it "
        "as a P2 and skips the statement checks; everything else runs"
    ]


def _dsn(st: dict, role: str, db: str = seed.SHOP_DB) -> str:
    password = {
        ADMIN_ROLE: st["secrets"]["admin_password"],
        seed.APP_ROLE: st["secrets"]["app_password"],
        seed.MAINT_ROLE: st["secrets"]["maint_password"],
        seed.READER_ROLE: st["secrets"].setdefault("reader_password", _token()),
    }[role]
    return f"postgresql://{role}:{quote(password, safe='')}@127.0.0.1:{st['ports']['postgres']}/{db}"


def _internal_dsn(st: dict, db: str = seed.SHOP_DB) -> str:
    """Superuser URL for the sandbox's own housekeeping, kept out of pg_stat_statements."""
    return _dsn(st, ADMIN_ROLE, db) + "?options=-c%20pg_stat_statements.track%3Dnone"


def _app_url(st: dict, name: str = "shop") -> str:
    return f"http://127.0.0.1:{st['ports'][name]}"


def _faults(paths: Paths) -> dict[str, bool]:
    return {f: bool((read_json(paths.faults, {}) or {}).get(f)) for f in FAULTS}


def _ensure_postgres(paths: Paths, st: dict, log: Log) -> bool:
    """Start (and initdb if needed) the cluster; returns True when it was started now."""
    if st["pg"] is None:
        bindir, source = resolve_bindir(log=log)
        folder, temporary = cluster_parent(paths.root / "pg")
        st["pg"] = {
            "folder": str(folder),
            "temporary": temporary,
            "bindir": str(bindir),
            "major": server_major(bindir),
            "source": source,
            "stat_statements": stat_statements_available(bindir),
        }
        _save(paths, st)
    pg = _pg(st)
    if pg.is_running():
        return False
    if pg.pid() is None and port_open(pg.port):  # someone else took our port meanwhile
        st["ports"]["postgres"] = free_port()
        pg = _pg(st)
        if pg.initialized:
            pg.set_port(pg.port)
    try:
        if not pg.initialized:
            pg.init(st["secrets"]["admin_password"], superuser=ADMIN_ROLE)
        st["pids"]["postgres"] = pg.start()
    except PostgresError as exc:
        raise SandboxError(f"postgres failed to start: {exc}", "postgres", pg.log_path) from None
    _save(paths, st)
    return True


def _settle_pg_port(st: dict) -> None:
    """Before the stand-ins learn the DSN: move postgres off a port another process has taken."""
    running = st["pg"] is not None and _pg(st).pid() is not None
    if not running and port_open(st["ports"]["postgres"]):
        st["ports"]["postgres"] = free_port()
        if st["pg"] is not None and _pg(st).initialized:
            _pg(st).set_port(st["ports"]["postgres"])


def _ensure_process(
    paths: Paths,
    st: dict,
    name: str,
    marker: str,
    cmd: Callable[[], list[str]],
    ports: tuple[str, ...],
    prepare: Callable[[], None] | None = None,
) -> bool:
    """Start a Python component unless it is alive; returns True when it was started now."""
    if _alive(st["pids"].get(name), marker):
        return False
    for port_name in ports:
        if port_open(st["ports"][port_name]):
            st["ports"][port_name] = free_port()
    if prepare:
        prepare()
    st["pids"][name] = _spawn(cmd(), paths.logs / f"{name}.log")
    _save(paths, st)
    return True


def _write_app_config(paths: Paths, st: dict) -> None:
    s = st["secrets"]
    write_json(
        paths.app_config,
        {
            "app_url": _app_url(st),
            "app_port": st["ports"]["shop"],
            "stripe_port": st["ports"]["stripe"],
            "vercel_port": st["ports"]["vercel"],
            "database_url": _dsn(st, seed.APP_ROLE),
            "nextauth_secret": s["nextauth_secret"],
            "webhook_secret": s["webhook_secret"],
            "webhook_secret_old": s["webhook_secret_old"],
            "stripe_secret_key": s["stripe_secret_key"],
            "vercel_token": s["vercel_token"],
            "vercel_project": VERCEL_PROJECT,
            "log_dir": str(paths.drain),
        },
    )


def env_values(paths: Paths, st: dict) -> dict[str, str]:
    """The KEY=VALUE pairs of sandbox.env."""
    s = st["secrets"]
    app_url = _app_url(st)
    faults = _faults(paths)
    return {
        # The runbooks read as the reader role; only --allow-writes runs receive the writer (the app's role).
        "SANDBOX_DATABASE_URL": _dsn(st, seed.READER_ROLE),
        "SANDBOX_WRITER_DATABASE_URL": _dsn(st, seed.APP_ROLE),
        "SANDBOX_APP_DATABASE_URL": _dsn(st, seed.APP_ROLE),
        "SANDBOX_MAINT_DATABASE_URL": _dsn(st, seed.MAINT_ROLE),
        "SANDBOX_ADMIN_DATABASE_URL": _dsn(st, ADMIN_ROLE),
        "SANDBOX_PG_BINDIR": st["pg"]["bindir"],
        "SANDBOX_APP_URL": app_url,
        "SANDBOX_STRIPE_API_BASE": _app_url(st, "stripe"),
        "STRIPE_SECRET_KEY": s["stripe_secret_key"],
        "STRIPE_WEBHOOK_SECRET": s["webhook_secret"],
        "SANDBOX_VERCEL_API_BASE": _app_url(st, "vercel"),
        "VERCEL_TOKEN": s["vercel_token"],
        "SANDBOX_VERCEL_PROJECT": VERCEL_PROJECT,
        "SANDBOX_S3_ENDPOINT": _app_url(st, "s3"),
        "SANDBOX_S3_BUCKET": s3.BUCKET,
        "AWS_ACCESS_KEY_ID": s["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": s["aws_secret_access_key"],
        "AWS_DEFAULT_REGION": s3.REGION,
        "NEXTAUTH_URL": BAD_NEXTAUTH_URL if faults["nextauth-url"] else app_url,
        "NEXTAUTH_SECRET": s["nextauth_secret"],
        "SANDBOX_SESSION_TOKEN": st.get("session_token") or "",
        "SANDBOX_LOG_DIR": str(paths.drain),
        "SANDBOX_STATE_DIR": str(paths.root),
    }


def _write_env(paths: Paths, st: dict) -> None:
    lines = [f"{k}={v}\n" for k, v in env_values(paths, st).items()]
    tmp = paths.env_file.with_name(".sandbox.env.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("# written by `opsnb sandbox up`; secrets: keep this file private (0600)\n")
        handle.writelines(lines)
    os.chmod(tmp, 0o600)
    os.replace(tmp, paths.env_file)


def read_env(paths: Paths | None = None) -> dict[str, str]:
    """Parse sandbox.env into a dict (empty when absent)."""
    paths = paths or Paths()
    out: dict[str, str] = {}
    if paths.env_file.exists():
        for line in paths.env_file.read_text().splitlines():
            if line and not line.startswith("#") and "=" in line:
                key, value = line.split("=", 1)
                out[key] = value
    return out


# --- seeding and faults -----------------------------------------------------------------------------


def _session_token(st: dict) -> str:
    import psycopg

    from . import nextauth

    with psycopg.connect(_internal_dsn(st)) as conn:
        row = conn.execute(
            'SELECT "id", "name", "email", "image" FROM "User" ORDER BY "id" LIMIT 1'
        ).fetchone()
    claims = {"name": row[1], "email": row[2], "picture": row[3], "sub": row[0]}
    return nextauth.encode_session(claims, st["secrets"]["nextauth_secret"])


def _backups(paths: Paths, st: dict) -> list[str]:
    dumps = s3.make_dumps(Path(st["pg"]["bindir"]), _dsn(st, ADMIN_ROLE), paths.backups)
    if not _wait(lambda: port_open(st["ports"]["s3"]), 30):
        raise SandboxError("s3 (moto) did not start listening", "s3", paths.logs / "s3.log")
    client = s3.client(
        _app_url(st, "s3"), st["secrets"]["aws_access_key_id"], st["secrets"]["aws_secret_access_key"]
    )
    s3.clear_bucket(client)
    keys = s3.upload_backups(client, dumps)
    shutil.rmtree(paths.backups, ignore_errors=True)
    return keys


def _seed_all(paths: Paths, st: dict, faults: dict[str, bool], log: Log) -> threading.Thread:
    """Database, stand-in state, log history and faults; returns the (running) backup thread."""
    from . import stripe_api, vercel_api

    s = st["secrets"]
    pgss = _has_pgss(st)
    seed.create_roles_and_db(
        _internal_dsn(st, "postgres"), s["app_password"], s["maint_password"], stat_statements=pgss
    )
    facts = seed.seed_shop(
        _internal_dsn(st), _dsn(st, seed.APP_ROLE), st["scale"], faults["stuck-orders"], stat_statements=pgss
    )
    seed.create_reader_role(_internal_dsn(st), s.setdefault("reader_password", _token()))
    stripe_state = stripe_api.build_state(
        facts,
        app_url=_app_url(st),
        webhook_secret=s["webhook_secret"],
        old_secret=s["webhook_secret_old"],
        stuck_on=faults["stuck-orders"],
    )
    failures = stripe_state.pop("_webhook_failures")
    write_json(paths.stripe, stripe_state)
    vercel_state = vercel_api.build_state(facts["now"], VERCEL_PROJECT, _app_url(st))
    write_json(paths.vercel, vercel_state)
    st["history"] = {"now": facts["now"], "webhook_failures": failures}
    _write_history(paths, st, faults)  # live lines of the app stay
    write_json(paths.faults, faults)
    st["facts"] = {k: v for k, v in facts.items() if k != "recent"}
    st["session_token"] = _session_token(st)
    result: dict[str, Any] = {}

    def backup() -> None:
        try:
            result["keys"] = _backups(paths, st)
        except Exception as exc:  # reported by the caller
            result["error"] = exc

    thread = threading.Thread(target=backup, name="sandbox-backups", daemon=True)
    thread.result = result  # type: ignore[attr-defined]
    thread.start()
    _apply_missing_index(st, faults["missing-index"])
    st["seeded"] = True
    _save(paths, st)
    return thread


def _write_history(paths: Paths, st: dict, faults: dict[str, bool]) -> None:
    """(Re)write the drain's synthetic history for `faults`: same seed, deployments and times as at seeding.

    Only the history files are replaced; lines the live app appended and the Vercel state (current
    deployment, rollbacks) are left alone.
    """
    history = st.get("history")
    vercel_state = read_json(paths.vercel)
    if not history or not vercel_state:  # seeded by an older version: `opsnb sandbox reset` to get one
        return
    drain.history(
        paths.drain,
        now=history["now"],
        project_id=vercel_state["project"]["id"],
        deployments=vercel_state["deployments"],
        bad_deployment=vercel_state["bad"],
        faults=faults,
        webhook_failures=history["webhook_failures"],
    )


def _apply_missing_index(st: dict, missing: bool) -> None:
    seed.set_missing_index(_dsn(st, seed.APP_ROLE), missing)
    seed.reset_stats(_internal_dsn(st), stat_statements=_has_pgss(st))
    seed.run_user_orders_workload(
        _dsn(st, seed.APP_ROLE), st["facts"].get("users", 40), calls=300 if missing else 100
    )


def _ensure_worker(paths: Paths, st: dict, on: bool) -> None:
    pid = st["pids"].get("shop-worker")
    if not on:
        _stop(pid, WORKER_MARKER)
        st["pids"].pop("shop-worker", None)
        return
    if _alive(pid, WORKER_MARKER):
        return
    st["pids"]["shop-worker"] = _spawn(
        [sys.executable, "-m", WORKER_MARKER, "--state", str(paths.root)], paths.logs / "shop-worker.log"
    )
    ok = _wait(lambda: _worker_idle(st), 10)
    if not ok:
        raise SandboxError(
            "shop-worker did not open its transaction", "shop-worker", paths.logs / "shop-worker.log"
        )


def _worker_idle(st: dict) -> bool:
    import psycopg

    try:
        with psycopg.connect(_internal_dsn(st), connect_timeout=3) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
                "AND state = 'idle in transaction'",
                (seed.WORKER_APP_NAME,),
            ).fetchone()
            return row[0] > 0
    except psycopg.Error:
        return False


def _require_up(paths: Paths) -> dict:
    st = _load(paths)
    if not st or not st.get("seeded"):
        raise UsageError(f"the sandbox is not up (state: {paths.root}); run `opsnb sandbox up` first")
    if not _pg(st).is_running():
        raise UsageError("the sandbox's postgres is not running; run `opsnb sandbox up` to restart it")
    return st


def set_fault(name: str, on: bool, paths: Paths | None = None) -> dict[str, bool]:
    """Switch one fault on or off in the running sandbox; returns all fault states."""
    if name not in FAULTS:
        raise UsageError(f"unknown fault {name!r} (choose from {', '.join(FAULTS)})")
    import psycopg

    paths = paths or Paths()
    st = _require_up(paths)
    try:
        _apply_fault(paths, st, name, on)
    except psycopg.Error as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SandboxError(
            f"fault {name} {'on' if on else 'off'} failed in postgres: {detail}", "postgres", _pg(st).log_path
        ) from None
    _save(paths, st)
    _write_env(paths, st)
    return _faults(paths)


def _apply_fault(paths: Paths, st: dict, name: str, on: bool) -> None:
    with JsonStore(paths.faults, default={}).update() as faults:
        faults[name] = on
    if name == "missing-index":
        _apply_missing_index(st, on)
    elif name == "stuck-orders" and on:
        from . import stripe_api

        planted = st["facts"]["planted"]
        seed.set_stuck_pending(_dsn(st, seed.APP_ROLE), planted, pending=True)
        with JsonStore(paths.stripe).update() as state:
            stripe_api.replant_stuck(state, planted)
    elif name == "500-burst" and on:
        with JsonStore(paths.vercel).update() as state:
            state["current"] = state["bad"]
    elif name == "idle-in-transaction":
        _ensure_worker(paths, st, on)
    if name in LOGGED_FAULTS:
        _write_history(paths, st, _faults(paths))


# --- public API ---------------------------------------------------------------------------------------


def up(scale: int | None = None, faults: dict[str, bool] | str | None = None, log: Log = print) -> dict:
    """Start (or heal) the sandbox; idempotent. Returns {"state_dir", "env_file", "components", ...}."""
    t0 = time.monotonic()
    if isinstance(faults, str):
        faults = parse_faults(faults)
    if scale is not None and scale < 100:
        raise UsageError("--scale must be at least 100 orders")
    paths = Paths()
    paths.root.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(PermissionError):
        os.chmod(paths.root, 0o700)
    st = _load(paths)
    if st is None:
        st = _new_state(paths, scale or DEFAULT_SCALE, faults or dict.fromkeys(FAULTS, True))
        _save(paths, st)
    elif scale is not None and st.get("seeded") and scale != st["scale"]:
        log(f"note: the sandbox already holds scale {st['scale']}; `opsnb sandbox down` first to change it")
    python = sys.executable
    started: list[str] = []

    # moto and the stand-ins import for a second or two: start them first, PostgreSQL meanwhile.
    if _ensure_process(
        paths, st, "s3", MOTO_MARKER, lambda: s3.moto_command(python, st["ports"]["s3"]), ("s3",)
    ):
        started.append("s3")
    _settle_pg_port(st)
    if _ensure_process(
        paths,
        st,
        "shop",
        STANDINS_MARKER,
        lambda: [python, "-m", STANDINS_MARKER, "--state", str(paths.root)],
        ("shop", "stripe", "vercel"),
        prepare=lambda: _write_app_config(paths, st),
    ):
        started.append("shop")
    if _ensure_postgres(paths, st, log):
        started.append("postgres")

    backup_thread = None
    if not st["seeded"]:
        chosen = faults or st["initial_faults"]
        backup_thread = _seed_all(paths, st, chosen, log)
    else:
        if faults is not None:
            current = _faults(paths)
            for name in FAULTS:
                if faults[name] != current[name]:
                    _apply_fault(paths, st, name, faults[name])
        if "s3" in started or not st.get("backups"):
            backup_thread = threading.Thread(
                target=lambda: st.__setitem__("backups", _backups(paths, st)), daemon=True
            )
            backup_thread.result = {}  # type: ignore[attr-defined]
            backup_thread.start()
    _ensure_worker(paths, st, _faults(paths)["idle-in-transaction"])

    if not _wait(lambda: _http(_app_url(st) + "/api/health")[0] == 200, 20):
        alive = _alive(st["pids"].get("shop"), STANDINS_MARKER)
        detail = "did not become healthy" if alive else "exited"
        raise SandboxError(
            f"shop stand-in {detail} on port {st['ports']['shop']}", "shop", paths.logs / "shop.log"
        )
    if backup_thread is not None:
        backup_thread.join(timeout=600)
        result = backup_thread.result  # type: ignore[attr-defined]
        if "error" in result:
            err = result["error"]
            if isinstance(err, SandboxError):
                raise err
            raise SandboxError(f"backups to s3 failed: {err}", "s3", paths.logs / "s3.log")
        if "keys" in result:
            st["backups"] = result["keys"]
    _save(paths, st)
    _write_env(paths, st)
    return {
        "state_dir": str(paths.root),
        "env_file": str(paths.env_file),
        "started": started,
        "components": status(paths),
        "faults": _faults(paths),
        "scale": st["scale"],
        "notes": notes(paths),
        "seconds": round(time.monotonic() - t0, 1),
    }


def down(keep: bool = False, paths: Paths | None = None) -> list[str]:
    """Stop everything the sandbox started; remove its data unless keep. Returns what was stopped."""
    paths = paths or Paths()
    st = _load(paths)
    stopped: list[str] = []
    if st is None:
        return stopped
    for name, marker in (("shop-worker", WORKER_MARKER), ("shop", STANDINS_MARKER), ("s3", MOTO_MARKER)):
        pid = st["pids"].get(name)
        if _alive(pid, marker):
            _stop(pid, marker)
            stopped.append(name)
        st["pids"].pop(name, None)
    if st.get("pg"):
        pg = _pg(st)
        if pg.pid() is not None:
            pg.stop()
            stopped.append("postgres")
        if not keep:
            shutil.rmtree(pg.folder, ignore_errors=True)
    if keep:
        st["backups"] = []  # moto keeps objects in memory only
        _save(paths, st)
        return stopped
    for path in paths.owned():
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        paths.root.rmdir()
    return stopped


def reset(paths: Paths | None = None, log: Log = print) -> dict:
    """Re-seed the running sandbox: fresh data, stand-in state, log history, backups and faults.

    The drain's synthetic history is rewritten for the initial faults; lines the live app logged stay."""
    paths = paths or Paths()
    st = _require_up(paths)
    _ensure_worker(paths, st, False)
    seed.drop_shop_db(_internal_dsn(st, "postgres"))
    st["seeded"] = False
    thread = _seed_all(paths, st, st["initial_faults"], log)
    _ensure_worker(paths, st, st["initial_faults"]["idle-in-transaction"])
    thread.join(timeout=600)
    if "error" in thread.result:  # type: ignore[attr-defined]
        raise SandboxError(f"backups to s3 failed: {thread.result['error']}", "s3", paths.logs / "s3.log")
    st["backups"] = thread.result.get("keys", [])  # type: ignore[attr-defined]
    _save(paths, st)
    _write_env(paths, st)
    return {"state_dir": str(paths.root), "faults": _faults(paths), "components": status(paths)}


def status(paths: Paths | None = None) -> list[dict]:
    """One dict per component: name, port, pid, health (healthy|unhealthy|stale|stopped|running), detail, log."""
    paths = paths or Paths()
    st = _load(paths)
    if st is None:
        return []
    out: list[dict] = []
    ports = st["ports"]
    pids = st["pids"]

    def row(
        name: str, port: int | None, pid: int | None, health: str, detail: str = "", log: Path | None = None
    ):
        out.append(
            {
                "name": name,
                "port": port,
                "pid": pid,
                "health": health,
                "detail": detail,
                "log": str(log) if log else None,
            }
        )

    # postgres
    if st.get("pg"):
        pg = _pg(st)
        pid = pg.pid()
        if pid is None:
            if port_open(pg.port):
                row(
                    "postgres",
                    pg.port,
                    pids.get("postgres"),
                    "stale",
                    f"not running; port {pg.port} is taken by another process",
                    pg.log_path,
                )
            elif pids.get("postgres"):
                row(
                    "postgres",
                    pg.port,
                    pids.get("postgres"),
                    "stale",
                    f"pid {pids['postgres']} is not running",
                    pg.log_path,
                )
            else:
                row("postgres", pg.port, None, "stopped", "", pg.log_path)
        else:
            ok = port_open(pg.port)
            row(
                "postgres",
                pg.port,
                pid,
                "healthy" if ok else "unhealthy",
                f"PostgreSQL {st['pg'].get('major', '?')}, database {seed.SHOP_DB}"
                if ok
                else "not accepting connections",
                pg.log_path,
            )
    # stand-ins (one process, three ports)
    shop_pid = pids.get("shop")
    shop_alive = _alive(shop_pid, STANDINS_MARKER)
    s = st["secrets"]
    checks = {
        "shop": ("/api/health", {}),
        "stripe": ("/v1/webhook_endpoints", {"Authorization": f"Bearer {s['stripe_secret_key']}"}),
        "vercel": ("/v6/deployments?limit=1", {"Authorization": f"Bearer {s['vercel_token']}"}),
    }
    for name, (path, headers) in checks.items():
        port = ports[name]
        log = paths.logs / "shop.log"
        if not shop_alive:
            if shop_pid and port_open(port):
                row(
                    name,
                    port,
                    shop_pid,
                    "stale",
                    f"pid {shop_pid} is not running; port {port} is taken by another process",
                    log,
                )
            elif shop_pid:
                row(name, port, shop_pid, "stale", f"pid {shop_pid} is not running", log)
            else:
                row(name, port, None, "stopped", "", log)
            continue
        code, body = _http(f"http://127.0.0.1:{port}{path}", headers)
        if code == 200:
            row(name, port, shop_pid, "healthy", f"http://127.0.0.1:{port}", log)
        else:
            row(name, port, shop_pid, "unhealthy", f"GET {path} -> {code or body[:80]}", log)
    # s3
    pid = pids.get("s3")
    log = paths.logs / "s3.log"
    if _alive(pid, MOTO_MARKER):
        code, _ = _http(f"http://127.0.0.1:{ports['s3']}/moto-api/")
        row(
            "s3",
            ports["s3"],
            pid,
            "healthy" if code else "unhealthy",
            f"bucket {s3.BUCKET}, {len(st.get('backups') or [])} backup objects" if code else "not answering",
            log,
        )
    elif pid:
        taken = port_open(ports["s3"])
        row(
            "s3",
            ports["s3"],
            pid,
            "stale",
            f"pid {pid} is not running"
            + (f"; port {ports['s3']} is taken by another process" if taken else ""),
            log,
        )
    else:
        row("s3", ports["s3"], None, "stopped", "", log)
    # the idle-in-transaction worker
    faults = _faults(paths)
    pid = pids.get("shop-worker")
    if faults["idle-in-transaction"] or pid:
        log = paths.logs / "shop-worker.log"
        if _alive(pid, WORKER_MARKER):
            row("shop-worker", None, pid, "running", "idle in transaction (fault)", log)
        else:
            row(
                "shop-worker",
                None,
                pid,
                "stale" if pid else "stopped",
                f"pid {pid} is not running" if pid else "",
                log,
            )
    return out


def faults(paths: Paths | None = None) -> dict[str, bool]:
    """Current fault switches."""
    return _faults(paths or Paths())


def describe(result: list[dict]) -> str:
    """A fixed-width table of status rows."""
    lines = [f"  {'component':<12} {'port':>6} {'pid':>8}  {'health':<9} detail"]
    for r in result:
        port = str(r["port"]) if r["port"] else "-"
        pid = str(r["pid"]) if r["pid"] else "-"
        lines.append(f"  {r['name']:<12} {port:>6} {pid:>8}  {r['health']:<9} {r['detail']}")
    return "\n".join(lines)


def dumps(obj: Any) -> str:
    """JSON for --json output."""
    return json.dumps(obj, indent=2, default=str)
