"""opsnb.checks.triage.database against a real PostgreSQL: reachable, down (P0), our own login refused
(inconclusive), and the reader session the connection-usage check runs on."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit, urlunsplit

import pytest

from opsnb.checks import findings
from opsnb.checks.postgres import Database
from opsnb.checks.triage import database

DSN_ENV = "OPSNB_TEST_TRIAGE_DSN"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def with_password(dsn: str, password: str) -> str:
    parts = urlsplit(dsn)
    user_host = parts.netloc.split("@", 1)
    user = user_host[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{user_host[1]}"))


def test_reachable_database_passes(pg_cluster, monkeypatch):
    monkeypatch.setenv(DSN_ENV, pg_cluster.dsn)
    table = database.check_reachable(DSN_ENV)
    [c] = findings.all_conclusions()
    assert (c.check, c.status, c.title) == ("triage.database-reachable", "pass", "The database answers")
    row = table.iloc[0]
    assert row["reachable"] and row["database"] == "postgres" and row["role"] == pg_cluster.superuser
    assert row["connect_ms"] > 0 and pg_cluster.password not in repr(table) + c.detail


def test_down_database_is_p0(monkeypatch):
    monkeypatch.setenv(DSN_ENV, f"postgresql://u:secretpw@127.0.0.1:{free_port()}/shop")
    table = database.check_reachable(DSN_ENV, connect_timeout_s=2)
    [c] = findings.all_conclusions()
    assert (c.status, c.severity, c.title) == ("fail", "P0", "The database cannot be reached")
    assert not table.iloc[0]["reachable"] and "secretpw" not in c.detail + repr(table)
    assert findings.verdict() == "FAIL"


@pytest.mark.parametrize("what", ["password", "database", "secret"])
def test_our_own_login_refused_is_inconclusive(pg_cluster, monkeypatch, what):
    if what == "password":
        monkeypatch.setenv(DSN_ENV, with_password(pg_cluster.dsn, "not-the-password"))
    elif what == "database":
        monkeypatch.setenv(DSN_ENV, pg_cluster.dsn_for("no_such_db"))
    else:
        monkeypatch.delenv(DSN_ENV, raising=False)
    assert database.check_reachable(DSN_ENV) is None
    [c] = findings.all_conclusions()
    assert c.status == "inconclusive" and c.essential and "not-the-password" not in c.detail
    assert findings.verdict() == "WARN", "a database we could not judge is a blind spot, not a pass"


def test_reader_session_is_none_when_unreachable(pg_cluster, monkeypatch):
    monkeypatch.setenv(DSN_ENV, pg_cluster.dsn)
    with database.reader_session(DSN_ENV) as db:
        assert isinstance(db, Database) and db.scalar("SHOW default_transaction_read_only") == "on"
    assert db.conn.closed
    monkeypatch.setenv(DSN_ENV, f"postgresql://u:p@127.0.0.1:{free_port()}/shop")
    with database.reader_session(DSN_ENV) as db:
        assert db is None
    monkeypatch.delenv(DSN_ENV)
    with database.reader_session(DSN_ENV) as db:
        assert db is None


def test_role_and_pool_runs_both_checks_on_one_session(pg_cluster, monkeypatch):
    monkeypatch.setenv(DSN_ENV, pg_cluster.dsn)
    usage = database.role_and_pool(DSN_ENV)
    assert usage is not None and len(usage) == 1
    checks = [c.check for c in findings.all_conclusions()]
    assert checks == ["safety.read-only-role", "postgres.connection-usage"]
    # a superuser can write: the role check says so
    assert findings.all_conclusions()[0].status == "warn"
    findings.clear()
    monkeypatch.setenv(DSN_ENV, f"postgresql://u:p@127.0.0.1:{free_port()}/shop")
    assert database.role_and_pool(DSN_ENV) is None and findings.all_conclusions() == []
