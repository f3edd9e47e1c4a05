"""The sandbox's lifecycle, and the API the command line and the tests use: `up`, `down`, `reset`,
`status`, `set_fault`, `faults`, `read_env`.

The parts live beside it, one concern each: `state` (the state folder, its files, URLs and DSNs),
`processes` (child processes), `components` (what runs and how healthy it is), `faults` (the registry of
planted faults), `provision` (seeding and backups) and `envfile` (sandbox.env).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from typing import Any

from . import components, provision, seed
from . import faults as fault_registry
from .components import Log
from .envfile import env_values, read_env, write_env
from .faults import FAULTS
from .faults import parse as parse_faults
from .processes import http_get, wait_for
from .provision import BackupJob
from .state import (
    DEFAULT_SCALE,
    Paths,
    SandboxError,
    UsageError,
    has_stat_statements,
    internal_dsn,
    load,
    new_state,
    postgres,
    require_up,
    save,
    state_dir,
    url,
)

__all__ = [
    "DEFAULT_SCALE",
    "FAULTS",
    "Paths",
    "SandboxError",
    "UsageError",
    "describe",
    "down",
    "dumps",
    "env_values",
    "faults",
    "notes",
    "parse_faults",
    "read_env",
    "reset",
    "set_fault",
    "state_dir",
    "status",
    "up",
]


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
    st = load(paths)
    if st is None:
        st = new_state(scale or DEFAULT_SCALE, faults or dict.fromkeys(FAULTS, True))
        save(paths, st)
    elif scale is not None and st.get("seeded") and scale != st["scale"]:
        log(f"note: the sandbox already holds scale {st['scale']}; `opsnb sandbox down` first to change it")

    started = [child.name for child in components.CHILDREN if child.ensure(paths, st)]
    if components.ensure_postgres(paths, st, log):
        started.append("postgres")

    backups: BackupJob | None = None
    if not st["seeded"]:
        backups = provision.seed_all(paths, st, faults or st["initial_faults"], log)
    else:
        if faults is not None:
            _switch_changed(paths, st, faults)
        if "s3" in started or not st.get("backups"):  # moto keeps its objects in memory only
            backups = BackupJob(paths, st)
    fault_registry.ensure_worker(paths, st)

    _wait_for_shop(paths, st)
    if backups is not None:
        st["backups"] = backups.wait()
    save(paths, st)
    write_env(paths, st)
    return {
        "state_dir": str(paths.root),
        "env_file": str(paths.env_file),
        "started": started,
        "components": status(paths),
        "faults": fault_registry.states(paths),
        "scale": st["scale"],
        "notes": notes(paths),
        "seconds": round(time.monotonic() - t0, 1),
    }


def _switch_changed(paths: Paths, st: dict, wanted: dict[str, bool]) -> None:
    """Switch the faults whose state differs from `wanted`."""
    current = fault_registry.states(paths)
    for name, on in wanted.items():
        if on != current[name]:
            fault_registry.switch(paths, st, name, on)


def _wait_for_shop(paths: Paths, st: dict) -> None:
    """Wait until the shop stand-in answers its health check; SandboxError naming it otherwise."""
    if wait_for(lambda: http_get(url(st) + "/api/health")[0] == 200, 20):
        return
    standins = components.STANDINS
    detail = "did not become healthy" if standins.running(st) else "exited"
    raise SandboxError(
        f"shop stand-in {detail} on port {st['ports']['shop']}", standins.name, standins.log(paths)
    )


def down(keep: bool = False, paths: Paths | None = None) -> list[str]:
    """Stop everything the sandbox started; remove its data unless keep. Returns what was stopped."""
    paths = paths or Paths()
    st = load(paths)
    if st is None:
        return []
    children = (fault_registry.WORKER, *reversed(components.CHILDREN))
    stopped = [child.name for child in children if child.halt(st)]
    if st.get("pg"):
        pg = postgres(st)
        if pg.pid() is not None:
            pg.stop()
            stopped.append("postgres")
        if not keep:
            shutil.rmtree(pg.folder, ignore_errors=True)
    if keep:
        st["backups"] = []  # moto keeps objects in memory only
        save(paths, st)
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
    st = require_up(paths)
    fault_registry.WORKER.halt(st)  # its open transaction would block dropping the database
    seed.drop_shop_db(internal_dsn(st, "postgres"))
    st["seeded"] = False
    backups = provision.seed_all(paths, st, st["initial_faults"], log)
    fault_registry.ensure_worker(paths, st)
    st["backups"] = backups.wait()
    save(paths, st)
    write_env(paths, st)
    return {"state_dir": str(paths.root), "faults": fault_registry.states(paths), "components": status(paths)}


def set_fault(name: str, on: bool, paths: Paths | None = None) -> dict[str, bool]:
    """Switch one fault on or off in the running sandbox; returns all fault states."""
    import psycopg

    fault_registry.get(name)  # an unknown name is refused before anything is looked at
    paths = paths or Paths()
    st = require_up(paths)
    try:
        fault_registry.switch(paths, st, name, on)
    except psycopg.Error as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SandboxError(
            f"fault {name} {'on' if on else 'off'} failed in postgres: {detail}",
            "postgres",
            postgres(st).log_path,
        ) from None
    save(paths, st)
    write_env(paths, st)
    return fault_registry.states(paths)


def status(paths: Paths | None = None) -> list[dict]:
    """One dict per component: name, port, pid, health (healthy|unhealthy|stale|stopped|running), detail, log."""
    paths = paths or Paths()
    st = load(paths)
    return components.status_rows(paths, st) if st else []


def faults(paths: Paths | None = None) -> dict[str, bool]:
    """Current fault switches."""
    return fault_registry.states(paths or Paths())


def notes(paths: Paths | None = None) -> list[str]:
    """Lines `up` and `status` print beside the table (e.g. a PostgreSQL without pg_stat_statements)."""
    st = load(paths or Paths())
    if not st or not st.get("pg") or has_stat_statements(st):
        return []
    source = st["pg"].get("source", "system")
    return [
        f"pg_stat_statements is not available in this PostgreSQL ({source}): slow-queries reports it "
        "as a P2 and skips the statement checks; everything else runs"
    ]


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
