"""The runbook database session on a real PostgreSQL: read-only, bounded, named, one-line errors."""

from __future__ import annotations

import socket

import psycopg
import pytest

from opsnb.checks.postgres import DatabaseError, connect


@pytest.fixture
def db_env(pg_cluster, monkeypatch):
    with psycopg.connect(pg_cluster.dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS opsnb_session_probe")
        conn.execute("CREATE TABLE opsnb_session_probe (id int)")
        conn.execute("INSERT INTO opsnb_session_probe VALUES (1), (2)")
    monkeypatch.setenv("OPSNB_T_DB", pg_cluster.dsn)
    monkeypatch.setenv("OPSNB_RUNBOOK", "slow-queries")
    return "OPSNB_T_DB"


def test_write_refused_and_table_unchanged(db_env, pg_cluster) -> None:
    with connect(db_env) as db:
        with pytest.raises(DatabaseError, match="read-only transaction"):
            db.execute("INSERT INTO opsnb_session_probe VALUES (3)")
        with pytest.raises(DatabaseError, match="read-only transaction"):
            db.execute("DELETE FROM opsnb_session_probe")
        assert db.scalar("SELECT count(*) FROM opsnb_session_probe") == 2
    with psycopg.connect(pg_cluster.dsn) as conn:
        assert conn.execute("SELECT count(*) FROM opsnb_session_probe").fetchone()[0] == 2


def test_session_settings(db_env) -> None:
    with connect(db_env, statement_timeout_ms=1500, lock_timeout_ms=700) as db:
        settings = db.rows(
            "SELECT current_setting('statement_timeout') AS st, current_setting('lock_timeout') AS lt,"
            " current_setting('application_name') AS app, current_setting('default_transaction_read_only') AS ro"
        )[0]
        assert settings == {"st": "1500ms", "lt": "700ms", "app": "opsnb/slow-queries", "ro": "on"}
        frame = db.query("SELECT id FROM opsnb_session_probe WHERE id > 5")
        assert list(frame.columns) == ["id"] and len(frame) == 0


def test_statement_timeout_enforced(db_env) -> None:
    with connect(db_env, statement_timeout_ms=200) as db:
        with pytest.raises(DatabaseError, match="statement timeout"):
            db.scalar("SELECT pg_sleep(3)")


def test_writable_session_only_when_asked(db_env) -> None:
    with connect(db_env, read_only=False) as db:
        assert db.execute("INSERT INTO opsnb_session_probe VALUES (3)") == 1


def test_wrong_password_is_one_scrubbed_line(pg_cluster, monkeypatch) -> None:
    bad = pg_cluster.dsn.replace(pg_cluster.password, "wrong-password-123")
    monkeypatch.setenv("OPSNB_T_BAD", bad)
    with pytest.raises(DatabaseError) as err:
        connect("OPSNB_T_BAD", connect_timeout_s=3)
    message = str(err.value)
    assert "password authentication failed" in message and "\n" not in message
    assert "wrong-password-123" not in message and "$OPSNB_T_BAD" in message


def test_unreachable_database(monkeypatch) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("OPSNB_T_DOWN", f"postgresql://u:pw-down-999@127.0.0.1:{port}/x")
    with pytest.raises(DatabaseError, match="cannot connect") as err:
        connect("OPSNB_T_DOWN", connect_timeout_s=2)
    assert "pw-down-999" not in str(err.value)


def test_the_session_records_which_server_it_judges(db_env, pg_cluster, monkeypatch) -> None:
    noted: list[tuple[str, dict]] = []
    monkeypatch.setattr(
        "opsnb.checks.context.note_target", lambda kind, **identity: noted.append((kind, identity))
    )
    with connect(db_env) as db:
        version = db.scalar("SHOW server_version")
        user = db.scalar("SELECT current_user")
    [(kind, identity)] = noted
    assert kind == "postgres"
    assert identity["role"] == user and identity["server_version"] == version
    assert identity["database"] == psycopg.conninfo.conninfo_to_dict(pg_cluster.dsn)["dbname"]
    assert identity["host"] and int(identity["port"]) > 0
    assert "password" not in identity and not any("pw" in str(v) for v in identity.values())
