"""LocalPostgres and the bare `pg_cluster` fixture."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg

from opsnb.sandbox import postgres


def test_find_bindir_has_server_tools() -> None:
    bindir = postgres.find_bindir()
    assert bindir is not None
    assert all((bindir / tool).exists() for tool in ("initdb", "pg_ctl", "postgres", "pg_dump", "pg_restore"))
    assert postgres.server_major(bindir) >= 12


def test_pg_cluster_fixture(pg_cluster) -> None:
    with psycopg.connect(pg_cluster.dsn, autocommit=True) as conn:
        assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]
        assert conn.execute("SHOW shared_preload_libraries").fetchone()[0] == "pg_stat_statements"
        assert conn.execute("SELECT count(*) FROM pg_stat_statements").fetchone()[0] >= 0
        assert conn.execute("SHOW listen_addresses").fetchone()[0] == "127.0.0.1"
        conn.execute("DROP DATABASE IF EXISTS scratch_t")
        conn.execute("CREATE DATABASE scratch_t")
    with psycopg.connect(pg_cluster.dsn_for("scratch_t")) as conn:
        assert conn.execute("SELECT current_database()").fetchone()[0] == "scratch_t"
    assert Path(pg_cluster.bindir, "psql").exists()


def test_password_is_required(pg_cluster) -> None:
    bad = pg_cluster.dsn.replace(pg_cluster.password, "wrong")
    try:
        psycopg.connect(bad, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        assert "password authentication failed" in str(exc)
    else:
        raise AssertionError("connected with a wrong password")


def test_cluster_parent_is_reachable_by_server_user(tmp_path: Path) -> None:
    folder, temporary = postgres.cluster_parent(tmp_path / "pg")
    if os.geteuid() == 0:
        # pytest's temp dirs are 0700 root: the cluster goes to a postgres-owned folder under /tmp instead
        assert temporary and folder.stat().st_uid == __import__("pwd").getpwnam("postgres").pw_uid
        folder.rmdir()
    else:
        assert folder == tmp_path / "pg" and not temporary


def test_bulk_seed_is_deterministic(pg_cluster) -> None:
    from opsnb.sandbox import seed

    digests = []
    for db in ("seed_a", "seed_b"):
        with psycopg.connect(pg_cluster.dsn, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {db}")
            conn.execute(f"CREATE DATABASE {db}")
        with psycopg.connect(pg_cluster.dsn_for(db)) as conn:
            conn.execute(seed._sql_file("schema.sql"))
            seed._bulk_seed(conn, 600)
            digests.append(
                conn.execute(
                    'SELECT md5(string_agg(o."id" || o."userId" || o."status" || o."total", \',\' ORDER BY o."id")), '
                    '(SELECT md5(string_agg("email", \',\' ORDER BY "id")) FROM "User") FROM "Order" o'
                ).fetchone()
            )
        with psycopg.connect(pg_cluster.dsn, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {db}")
    assert digests[0] == digests[1]
