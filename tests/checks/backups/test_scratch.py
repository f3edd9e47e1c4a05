"""opsnb.checks.backups.scratch: the guard refuses every name but this run's scratch databases, killed runs'
leftovers are removed (and nothing else), and the cleanup check sees what is left on a real cluster."""

from __future__ import annotations

import json
import os
import socket
import subprocess

import psycopg
import pytest
from psycopg import sql

from opsnb.checks import findings
from opsnb.checks.backups import scratch


def test_scratch_name_carries_the_run_id():
    assert scratch.scratch_name() == "opsnb_restore_a1b2c3d4e5"
    assert scratch.scratch_name("opsnb_restore_a1b2c3d4e5_2") == "opsnb_restore_a1b2c3d4e5_2"
    assert scratch.scratch_prefix("Run-42/X") == "opsnb_restore_run_42_x"
    assert scratch.guard_scratch(scratch.scratch_name()) == "opsnb_restore_a1b2c3d4e5"


@pytest.mark.parametrize(
    "name",
    [
        "shop",
        "postgres",
        "template1",
        "opsnb_restore_",  # the bare prefix of no run
        "opsnb_restore_otherrun01",  # another run's scratch database
        "x_opsnb_restore_a1b2c3d4e5",
        'opsnb_restore_a1b2c3d4e5"; DROP DATABASE shop; --',
        "OPSNB_RESTORE_A1B2C3D4E5",
        "opsnb_restore_a1b2c3d4e5" + "x" * 60,  # longer than an identifier
        "",
    ],
)
def test_guard_refuses_anything_else(name):
    with pytest.raises(scratch.RefusedDatabase):
        scratch.guard_scratch(name)


def test_interactive_sessions_get_their_own_prefix(monkeypatch):
    monkeypatch.setenv("OPSNB_RUN_ID", "interactive")
    prefix = scratch.scratch_prefix()
    assert prefix.startswith("opsnb_restore_interactive_") and len(prefix) > len("opsnb_restore_interactive_")
    with pytest.raises(scratch.RefusedDatabase):
        scratch.guard_scratch("opsnb_restore_interactive")


def test_check_scratch_name():
    scratch.check_scratch_name("shop")
    (refused,) = findings.all_conclusions()
    assert refused.check == "restore.scratch-name" and (refused.status, refused.severity) == ("fail", "P1")
    assert refused.title == "Refused 'shop' as the restore target: it is not a scratch database of this run"
    scratch.check_scratch_name("")  # re-run: replaces the conclusion
    (ok,) = findings.all_conclusions()
    assert ok.status == "pass" and "opsnb_restore_a1b2c3d4e5" in ok.title


def test_work_dir_records_its_owner(tmp_path):
    folder = scratch.work_dir(str(tmp_path))
    owner = json.loads((folder / scratch.OWNER_FILE).read_text())
    assert folder.name.startswith("opsnb-restore-a1b2c3d4e5-") and owner["pid"] == os.getpid()
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    scratch.remove_work_dir(folder)
    assert not folder.exists()


# --- leftovers of killed runs ----------------------------------------------------------------------------


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _create(pg_cluster, name: str, owner: dict | None) -> None:
    with psycopg.connect(pg_cluster.dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        if owner is not None:
            conn.execute(
                sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                    sql.Identifier(name), sql.Literal(json.dumps(owner))
                )
            )


def _drop(pg_cluster, *names: str) -> None:
    with psycopg.connect(pg_cluster.dsn, autocommit=True) as conn:
        for name in names:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def test_a_later_run_removes_what_a_killed_run_left(pg_cluster, monkeypatch, tmp_path, scratch_left) -> None:
    """A SIGKILLed kernel leaves its scratch database and work folder; the next run removes both,
    says so, and leaves a live run's alone."""
    monkeypatch.setenv("OPSNB_TEST_MAINT_URL", pg_cluster.dsn)
    host = socket.gethostname()
    dead = {"host": host, "pid": _dead_pid(), "run": "killedrun01", "started": 0}
    alive = {"host": host, "pid": os.getpid(), "run": "liverun0001", "started": 0}
    _create(pg_cluster, "opsnb_restore_killedrun01", dead)
    _create(pg_cluster, "opsnb_restore_liverun0001", alive)
    for name, owner in (("killedrun01-x", dead), ("liverun0001-y", alive)):
        folder = tmp_path / f"{scratch.WORK_DIR_PREFIX}{name}"
        folder.mkdir()
        (folder / "backup.dump").write_bytes(b"PGDMP" + b"\0" * 100)
        (folder / scratch.OWNER_FILE).write_text(json.dumps(owner))
    try:
        table = scratch.remove_leftovers("OPSNB_TEST_MAINT_URL", str(tmp_path))
        assert sorted(table["name"].str.rsplit("/", n=1).str[-1]) == [
            "opsnb-restore-killedrun01-x",
            "opsnb_restore_killedrun01",
        ]
        assert not (tmp_path / "opsnb-restore-killedrun01-x").exists()
        assert (tmp_path / "opsnb-restore-liverun0001-y").exists()
        assert scratch_left() == ["opsnb_restore_liverun0001"]
    finally:
        _drop(pg_cluster, "opsnb_restore_liverun0001", "opsnb_restore_killedrun01")
    [c] = findings.all_conclusions()
    assert (c.check, c.status) == ("restore.interrupted-runs", "pass") and c.title.startswith(
        "Removed 2 leftover"
    )


def test_leftover_cleanup_never_touches_other_databases(pg_cluster, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("OPSNB_TEST_MAINT_URL", pg_cluster.dsn)
    _create(pg_cluster, "shop_keep", {"host": "x", "pid": 1, "started": 0})
    try:
        scratch.remove_leftovers("OPSNB_TEST_MAINT_URL", str(tmp_path))
        with psycopg.connect(pg_cluster.dsn, autocommit=True) as conn:
            assert conn.execute("SELECT 1 FROM pg_database WHERE datname = 'shop_keep'").fetchone()
    finally:
        _drop(pg_cluster, "shop_keep")
    assert findings.all_conclusions()[0].title == "No leftovers of interrupted runs"


# --- what the cleanup check sees ---------------------------------------------------------------------------


def test_cleanup_passes_on_a_clean_server(pg_cluster, monkeypatch):
    monkeypatch.setenv("OPSNB_TEST_MAINT_URL", pg_cluster.dsn)
    scratch.check_cleanup("OPSNB_TEST_MAINT_URL")
    (c,) = findings.all_conclusions()
    assert (c.check, c.status, c.title) == (
        "restore.cleanup",
        "pass",
        "No scratch database is left on the server",
    )


def test_cleanup_warns_about_this_runs_and_earlier_runs_databases(pg_cluster, monkeypatch):
    monkeypatch.setenv("OPSNB_TEST_MAINT_URL", pg_cluster.dsn)
    alive = {"host": socket.gethostname(), "pid": os.getpid(), "run": "liverun0002", "started": 0}
    _create(pg_cluster, "opsnb_restore_oldrun00001", None)  # no owner stamp: left behind
    _create(pg_cluster, "opsnb_restore_liverun0002", alive)  # in use by a running run: not counted
    try:
        table = scratch.check_cleanup("OPSNB_TEST_MAINT_URL")
        (c,) = findings.all_conclusions()
        assert (c.status, c.severity) == ("warn", "P3") and c.title.startswith("1 scratch database(s)")
        assert dict(zip(table["database"], table["state"], strict=True)) == {
            "opsnb_restore_liverun0002": "in use",
            "opsnb_restore_oldrun00001": "left behind",
        }
        _create(pg_cluster, scratch.scratch_name(), scratch.owner_stamp())
        scratch.check_cleanup("OPSNB_TEST_MAINT_URL")
        (c,) = findings.all_conclusions()
        assert (c.status, c.severity) == ("warn", "P2") and c.title.startswith("This run's scratch database")
    finally:
        _drop(pg_cluster, "opsnb_restore_oldrun00001", "opsnb_restore_liverun0002", scratch.scratch_name())


def test_cleanup_that_cannot_connect_is_inconclusive(monkeypatch):
    monkeypatch.setenv("OPSNB_TEST_MAINT_URL", "postgresql://nobody:x@127.0.0.1:9/postgres?connect_timeout=2")
    assert scratch.check_cleanup("OPSNB_TEST_MAINT_URL") is None
    (c,) = findings.all_conclusions()
    assert c.status == "inconclusive" and c.essential and "maint_database_url_env" in c.detail


class _BusyOnce:
    """An admin session whose first DROP meets sessions that did not exit in time (error path only)."""

    def __init__(self, failures: int):
        self.failures, self.drops = failures, 0

    def execute(self, statement) -> int:
        from opsnb.checks.postgres import DatabaseError

        self.drops += 1
        if self.drops <= self.failures:
            raise DatabaseError('ObjectInUse: database "x" is being accessed by other users')
        return 0

    def scalar(self, query, params=None):
        return None  # gone


def test_drop_is_tried_again_while_sessions_are_still_exiting(monkeypatch):
    from opsnb.checks.postgres import DatabaseError

    monkeypatch.setattr(scratch.time, "sleep", lambda s: None)
    busy = _BusyOnce(failures=1)
    assert scratch.drop_scratch(busy, scratch.scratch_name()) and busy.drops == 2
    stuck = _BusyOnce(failures=scratch.DROP_ATTEMPTS)
    with pytest.raises(DatabaseError, match="ObjectInUse"):
        scratch.drop_scratch(stuck, scratch.scratch_name())
    assert stuck.drops == scratch.DROP_ATTEMPTS
