"""The restore test's working space: scratch database names and their guard, the work folder, and cleaning up
what this run and killed runs leave behind.

Runbook "Backup Verification → 2. Create test database" and "5. Cleanup". Restores go only into a scratch
database this run creates, ``opsnb_restore_<run id>``: :func:`guard_scratch` refuses every other name before
any connection is made. Each scratch database and work folder records its owner (host, kernel pid, run id,
start time), so that a later run can remove what a killed run left (``restore.interrupted-runs``) without
touching a running run's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
from psycopg import sql

from opsnb.checks import context, findings
from opsnb.checks.postgres import Database, DatabaseError, connect
from opsnb.liveness import pid_alive

SCRATCH_PREFIX = "opsnb_restore_"
WORK_DIR_PREFIX = "opsnb-restore-"
OWNER_FILE = ".owner.json"
STALE_AFTER_S = 24 * 3600  # a scratch database or folder of another host's run is left alone this long
_PROCESS_TOKEN = uuid.uuid4().hex[:8]  # tells interactive sessions apart (their run id is 'interactive')
_MAINT_HINT = "check $maint_database_url_env (a role with CREATEDB on the restore-test server)"


class RefusedDatabase(Exception):
    """A database name that is not a scratch database of this run."""


def sanitize(text: str) -> str:
    """Lower-case letters, digits and underscores only (a safe identifier fragment)."""
    return re.sub(r"[^a-z0-9_]+", "_", text.lower()).strip("_") or "run"


def scratch_prefix(run_id: str | None = None) -> str:
    """``opsnb_restore_<run id>``: the prefix every scratch database of this run carries."""
    rid = run_id if run_id is not None else context.run_id()
    prefix = SCRATCH_PREFIX + sanitize(rid)
    if rid == "interactive":  # JupyterLab: one run per kernel process
        prefix += "_" + _PROCESS_TOKEN
    return prefix[:55]


def scratch_name(scratch_database: str = "") -> str:
    """The database this run restores into: ``scratch_database``, or this run's own name when it is ""."""
    return scratch_database or scratch_prefix()


def guard_scratch(name: str, run_id: str | None = None) -> str:
    """Return ``name`` when it is a scratch database of this run; RefusedDatabase otherwise.

    Every CREATE, restore and DROP goes through this: a name without this run's prefix (the live database,
    another run's scratch database, anything else) is refused before any connection is made.
    """
    prefix = scratch_prefix(run_id)
    if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9_]{1,63}", name or ""):
        raise RefusedDatabase(f"refusing database {name!r}: not a plain lower-case identifier")
    if not name.startswith(prefix):
        raise RefusedDatabase(
            f"refusing database {name!r}: not a scratch database of this run (prefix {prefix})"
        )
    return name


def owner_stamp() -> dict[str, Any]:
    """Who made a scratch database or work folder: host, kernel pid, run id, start time (UTC epoch)."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "run": context.run_id(), "started": time.time()}


def owner_is_gone(owner: dict[str, Any] | None, *, max_age_s: float = STALE_AFTER_S) -> bool:
    """True when the owner cannot still be using it: its process on this host is dead, or it is older
    than ``max_age_s`` (another host's run, which we cannot see, is given that long)."""
    if not isinstance(owner, dict):
        return False
    if owner.get("host") == socket.gethostname() and isinstance(owner.get("pid"), int):
        return not pid_alive(owner["pid"])
    started = owner.get("started")
    return isinstance(started, (int, float)) and time.time() - started > max_age_s


def work_dir(base: str = "") -> Path:
    """A private folder for this run's files (under ``base`` or the system temp dir), with its owner."""
    root = Path(base) if base else Path(tempfile.gettempdir())
    path = root / f"{WORK_DIR_PREFIX}{sanitize(context.run_id())}-{_PROCESS_TOKEN}"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    (path / OWNER_FILE).write_text(json.dumps(owner_stamp()))
    return path


def remove_work_dir(path: str | Path | None) -> None:
    """Remove this run's work folder and the dump or download in it (the evidence keeps the tables)."""
    if path:
        shutil.rmtree(Path(path), ignore_errors=True)


def maint_session(maint_database_url_env: str, statement_timeout_ms: int = 600_000) -> Database:
    """A session of the CREATEDB role that creates and drops scratch databases (not the shop's roles)."""
    return connect(maint_database_url_env, read_only=False, statement_timeout_ms=statement_timeout_ms)


def create_scratch(admin: Database, name: str) -> None:
    """CREATE DATABASE ``name`` (guarded) with its owner stamp, so that a later run can drop it if this
    kernel is killed before its DROP."""
    ident = sql.Identifier(guard_scratch(name))
    admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(ident))
    admin.execute(
        sql.SQL("COMMENT ON DATABASE {} IS {}").format(ident, sql.Literal(json.dumps(owner_stamp())))
    )


DROP_ATTEMPTS = 3


def drop_scratch(admin: Database, name: str) -> bool:
    """DROP DATABASE ``name`` (guarded; sessions still in it are ended); True when it is gone.

    WITH (FORCE) ends the sessions in it but waits only ~5 s for them to exit (pg_restore's jobs, an
    autovacuum worker on the fresh copy); on a loaded machine that can run out, so "in use" is tried again.
    """
    statement = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(guard_scratch(name)))
    for attempt in range(1, DROP_ATTEMPTS + 1):
        try:
            admin.execute(statement)
            break
        except DatabaseError as exc:
            if "ObjectInUse" not in str(exc) or attempt == DROP_ATTEMPTS:
                raise
            time.sleep(attempt)
    return not admin.scalar("SELECT 1 FROM pg_database WHERE datname = %s", (name,))


# Scratch databases on the server, whoever made them, with the owner stamp each carries.
SCRATCH_DATABASES_SQL = (
    "SELECT d.datname, shobj_description(d.oid, 'pg_database') AS owner, "
    "d.datdba = (SELECT oid FROM pg_roles WHERE rolname = current_user) AS mine "
    "FROM pg_database d WHERE d.datname LIKE %s ORDER BY 1"
)


def scratch_databases(db: Database) -> list[dict[str, Any]]:
    """Every database carrying the scratch prefix: datname, owner (its stamp, None if unreadable), mine
    (owned by this session's role)."""
    rows = db.rows(SCRATCH_DATABASES_SQL, (SCRATCH_PREFIX + "%",))
    for row in rows:
        try:
            row["owner"] = json.loads(row["owner"] or "")
        except ValueError:
            row["owner"] = None
    return rows


@findings.check("restore.scratch-name")
def check_scratch_name(scratch_database: str = "") -> pd.DataFrame:
    """The name the restore will create and drop (``guard_scratch``): anything but a scratch database of this
    run — the live database above all — is refused, a P1 (a wrong parameter that could have destroyed it)."""
    name = scratch_name(scratch_database)
    evidence = pd.DataFrame([{"database": name, "required prefix": scratch_prefix()}])
    try:
        guard_scratch(name)
    except RefusedDatabase as exc:
        return findings.conclude(
            "fail",
            f"Refused {name!r} as the restore target: it is not a scratch database of this run",
            severity="P1",
            detail=f"{exc}. Leave scratch_database empty: the run names its own.",
            evidence=evidence,
        )
    return findings.conclude(
        "pass", f"The restore goes into {name}, a scratch database of this run", evidence=evidence
    )


@findings.check("restore.interrupted-runs", essential=False, hint=_MAINT_HINT)
def remove_leftovers(
    maint_database_url_env: str = "", work_base: str = "", max_age_s: float = STALE_AFTER_S
) -> pd.DataFrame:
    """Remove the scratch databases and work folders of earlier runs that were killed before their own
    cleanup (whose kernel is gone, or older than ``max_age_s``); conclude what was removed."""
    rows = _remove_stale_folders(Path(work_base) if work_base else Path(tempfile.gettempdir()), max_age_s)
    if maint_database_url_env:
        rows += _drop_stale_scratch(maint_database_url_env, max_age_s)
    table = pd.DataFrame(rows, columns=["kind", "name", "owner run"])
    if not rows:
        return findings.conclude("pass", "No leftovers of interrupted runs", evidence=table)
    return findings.conclude(
        "pass",
        f"Removed {len(rows)} leftover(s) of interrupted runs",
        detail="; ".join(f"{r['kind']} {r['name']}" for r in rows),
        evidence=table,
    )


def _remove_stale_folders(root: Path, max_age_s: float) -> list[dict[str, Any]]:
    """Remove work folders whose owner is gone (or, without an owner file, untouched for ``max_age_s``)."""
    removed = []
    for folder in sorted(root.glob(WORK_DIR_PREFIX + "*")):
        if folder.is_symlink() or not folder.is_dir():
            continue
        try:
            owner = json.loads((folder / OWNER_FILE).read_text())
        except (OSError, ValueError):
            owner = None
        if owner is None and time.time() - folder.stat().st_mtime > max_age_s:
            owner = {"started": folder.stat().st_mtime}
        if owner_is_gone(owner, max_age_s=max_age_s):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append({"kind": "work folder", "name": str(folder), "owner run": owner.get("run", "?")})
    return removed


def _drop_stale_scratch(maint_database_url_env: str, max_age_s: float) -> list[dict[str, Any]]:
    """Drop scratch databases this role owns whose creating kernel is gone; what was dropped."""
    dropped = []
    with maint_session(maint_database_url_env) as db:
        for row in scratch_databases(db):
            if not row["mine"] or not owner_is_gone(row["owner"], max_age_s=max_age_s):
                continue
            # The name comes from pg_database and must carry the scratch prefix: never the live database.
            name = row["datname"]
            if not re.fullmatch(SCRATCH_PREFIX + r"[a-z0-9_]{1,49}", name):
                continue
            db.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            dropped.append(
                {"kind": "scratch database", "name": name, "owner run": row["owner"].get("run", "?")}
            )
    return dropped


@findings.check("restore.cleanup", hint=_MAINT_HINT)
def check_cleanup(maint_database_url_env: str) -> pd.DataFrame:
    """Scratch databases still on the server after the drop (``scratch_databases``): this run's is a P2 (a
    restored copy of production data left on a test server), earlier runs' a P3 (disk); those a running
    run still uses are listed, not counted."""
    with connect(maint_database_url_env) as db:
        rows = scratch_databases(db)
    mine = scratch_prefix()
    table = pd.DataFrame(
        [{"database": r["datname"], "state": _scratch_state(r, mine)} for r in rows],
        columns=["database", "state"],
    )
    ours = table.loc[table["state"] == "this run", "database"]
    left = table.loc[table["state"] == "left behind", "database"]
    if len(ours):
        return findings.conclude(
            "warn",
            f"This run's scratch database {ours.iloc[0]} is still on the server",
            severity="P2",
            detail="the drop failed (see restore.restore): drop it by hand",
            evidence=table,
        )
    if len(left):
        return findings.conclude(
            "warn",
            f"{len(left)} scratch database(s) of earlier runs left behind",
            severity="P3",
            detail=", ".join(left) + ": owned by another role or without an owner stamp; drop them by hand",
            evidence=table,
        )
    return findings.conclude("pass", "No scratch database is left on the server", evidence=table)


def _scratch_state(row: dict[str, Any], mine: str) -> str:
    """'this run', 'in use' (by a running run) or 'left behind'."""
    if row["datname"].startswith(mine):
        return "this run"
    owner = row["owner"]
    return "in use" if isinstance(owner, dict) and not owner_is_gone(owner) else "left behind"
