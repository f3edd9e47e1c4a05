"""The sandbox's running parts: PostgreSQL (pg_ctl), moto's S3 server, and the stand-ins process (shop,
Stripe and Vercel apps on three ports); how each is started and how `status` judges its health.

Two small tables drive this: `CHILDREN` (the Python processes, in start order) and `ENDPOINTS` (one per
HTTP port: which process serves it and which request proves it healthy).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import faults, s3, seed
from .postgres import (
    PostgresError,
    cluster_parent,
    free_port,
    port_open,
    resolve_bindir,
    server_major,
    stat_statements_available,
)
from .processes import Child, http_get
from .state import ADMIN_ROLE, VERCEL_PROJECT, Paths, SandboxError, dsn, postgres, save, url
from .store import write_json

STANDINS_MARKER = "opsnb.sandbox.standins"
MOTO_MARKER = "moto.server"

Log = Callable[[str], None]


# --- starting -----------------------------------------------------------------------------------------


def ensure_postgres(paths: Paths, st: dict, log: Log) -> bool:
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
        save(paths, st)
    pg = postgres(st)
    if pg.is_running():
        return False
    if pg.pid() is None and port_open(pg.port):  # someone else took our port meanwhile
        st["ports"]["postgres"] = free_port()
        pg = postgres(st)
        if pg.initialized:
            pg.set_port(pg.port)
    try:
        if not pg.initialized:
            pg.init(st["secrets"]["admin_password"], superuser=ADMIN_ROLE)
        st["pids"]["postgres"] = pg.start()
    except PostgresError as exc:
        raise SandboxError(f"postgres failed to start: {exc}", "postgres", pg.log_path) from None
    save(paths, st)
    return True


def _prepare_standins(paths: Paths, st: dict) -> None:
    """Settle PostgreSQL's port, then write the app config the stand-ins (and the worker) read."""
    # The config holds the database URL: move postgres off a port another process took before writing it.
    running = st["pg"] is not None and postgres(st).pid() is not None
    if not running and port_open(st["ports"]["postgres"]):
        st["ports"]["postgres"] = free_port()
        if st["pg"] is not None and postgres(st).initialized:
            postgres(st).set_port(st["ports"]["postgres"])
    s = st["secrets"]
    write_json(
        paths.app_config,
        {
            "app_url": url(st),
            "app_port": st["ports"]["shop"],
            "stripe_port": st["ports"]["stripe"],
            "vercel_port": st["ports"]["vercel"],
            "database_url": dsn(st, seed.APP_ROLE),
            "nextauth_secret": s["nextauth_secret"],
            "webhook_secret": s["webhook_secret"],
            "webhook_secret_old": s["webhook_secret_old"],
            "stripe_secret_key": s["stripe_secret_key"],
            "vercel_token": s["vercel_token"],
            "vercel_project": VERCEL_PROJECT,
            "log_dir": str(paths.drain),
        },
    )


MOTO = Child(
    "s3",
    MOTO_MARKER,
    command=lambda paths, st: s3.moto_command(sys.executable, st["ports"]["s3"]),
    ports=("s3",),
)
STANDINS = Child(
    "shop",
    STANDINS_MARKER,
    command=lambda paths, st: [sys.executable, "-m", STANDINS_MARKER, "--state", str(paths.root)],
    ports=("shop", "stripe", "vercel"),
    prepare=_prepare_standins,
)
# moto and the stand-ins import for a second or two: `up` starts them first, PostgreSQL meanwhile.
CHILDREN = (MOTO, STANDINS)


# --- health -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """One HTTP port of the sandbox; `name` is also its key in state["ports"]."""

    name: str
    child: Child  # the process that serves it
    health_path: str  # a GET that answers 200 when it works
    bearer: str | None = None  # the secret (key in state["secrets"]) the GET sends as a Bearer token
    detail: Callable[[dict], str] | None = None  # what status shows when healthy (default: its URL)


ENDPOINTS = (
    Endpoint("shop", STANDINS, "/api/health"),
    Endpoint("stripe", STANDINS, "/v1/webhook_endpoints", bearer="stripe_secret_key"),
    Endpoint("vercel", STANDINS, "/v6/deployments?limit=1", bearer="vercel_token"),
    Endpoint(
        "s3",
        MOTO,
        "/moto-api/",
        detail=lambda st: f"bucket {s3.BUCKET}, {len(st.get('backups') or [])} backup objects",
    ),
)


def _row(name: str, port: int | None, pid: int | None, health: str, detail: str, log: Path | None) -> dict:
    return {
        "name": name,
        "port": port,
        "pid": pid,
        "health": health,
        "detail": detail,
        "log": str(log) if log else None,
    }


def status_rows(paths: Paths, st: dict) -> list[dict]:
    """One row per component: postgres, each endpoint, and the shop-worker while it matters."""
    rows = [_postgres_row(st)] if st.get("pg") else []
    rows += [_endpoint_row(paths, st, endpoint) for endpoint in ENDPOINTS]
    worker = _worker_row(paths, st)
    return rows + ([worker] if worker else [])


def _postgres_row(st: dict) -> dict:
    """Healthy when pg_ctl sees it running and its port answers; stale when a pid or the port says otherwise."""
    pg = postgres(st)
    pid, saved_pid = pg.pid(), st["pids"].get("postgres")
    if pid is not None:
        if port_open(pg.port):
            detail = f"PostgreSQL {st['pg'].get('major', '?')}, database {seed.SHOP_DB}"
            return _row("postgres", pg.port, pid, "healthy", detail, pg.log_path)
        return _row("postgres", pg.port, pid, "unhealthy", "not accepting connections", pg.log_path)
    if port_open(pg.port):
        detail = f"not running; port {pg.port} is taken by another process"
        return _row("postgres", pg.port, saved_pid, "stale", detail, pg.log_path)
    if saved_pid:
        return _row("postgres", pg.port, saved_pid, "stale", f"pid {saved_pid} is not running", pg.log_path)
    return _row("postgres", pg.port, None, "stopped", "", pg.log_path)


def _endpoint_row(paths: Paths, st: dict, endpoint: Endpoint) -> dict:
    """Stopped or stale when its process is not running, else healthy when its health GET answers 200."""
    port = st["ports"][endpoint.name]
    pid = st["pids"].get(endpoint.child.name)
    log = endpoint.child.log(paths)
    if not endpoint.child.running(st):
        if not pid:
            return _row(endpoint.name, port, None, "stopped", "", log)
        taken = f"; port {port} is taken by another process" if port_open(port) else ""
        return _row(endpoint.name, port, pid, "stale", f"pid {pid} is not running{taken}", log)
    headers = {"Authorization": f"Bearer {st['secrets'][endpoint.bearer]}"} if endpoint.bearer else {}
    code, body = http_get(f"http://127.0.0.1:{port}{endpoint.health_path}", headers)
    if code != 200:
        return _row(
            endpoint.name, port, pid, "unhealthy", f"GET {endpoint.health_path} -> {code or body[:80]}", log
        )
    detail = endpoint.detail(st) if endpoint.detail else f"http://127.0.0.1:{port}"
    return _row(endpoint.name, port, pid, "healthy", detail, log)


def _worker_row(paths: Paths, st: dict) -> dict | None:
    """The idle-in-transaction worker: shown while its fault is on or a pid of it is remembered."""
    worker, pid = faults.WORKER, st["pids"].get(faults.WORKER.name)
    if not faults.states(paths)["idle-in-transaction"] and not pid:
        return None
    log = worker.log(paths)
    if worker.running(st):
        return _row(worker.name, None, pid, "running", "idle in transaction (fault)", log)
    if pid:
        return _row(worker.name, None, pid, "stale", f"pid {pid} is not running", log)
    return _row(worker.name, None, None, "stopped", "", log)
