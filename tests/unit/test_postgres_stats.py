"""Unit tests of opsnb.postgres.stats against a real PostgreSQL (the session's bare cluster)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest

from opsnb import findings
from opsnb.postgres import connect, stats
from opsnb.postgres.session import DatabaseError

# --- a small shop database of our own in the session's bare cluster (each test module has its own) ----


@dataclass
class Shop:
    env: str  # environment variable holding the app role's URL
    url: str  # app role (owns the tables, not superuser)
    admin: str  # superuser, same database


def _make_shop(pg_cluster, name: str, rows: int = 12_000) -> Shop:
    with psycopg.connect(pg_cluster.dsn, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'unit_app'").fetchone():
            conn.execute("CREATE ROLE unit_app LOGIN PASSWORD 'unit_app_pw'")
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}" OWNER unit_app')
    admin = pg_cluster.dsn_for(name)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")
    url = pg_cluster.postgres.dsn("unit_app", "unit_app_pw", name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            """
            CREATE TABLE "Order" ("id" text PRIMARY KEY, "userId" text NOT NULL, "status" text NOT NULL,
                                  "createdAt" timestamp(3) NOT NULL);
            CREATE TABLE "OrderItem" ("id" text PRIMARY KEY,
                                      "orderId" text NOT NULL REFERENCES "Order" ON DELETE CASCADE);
            CREATE TABLE "OrderArchive" ("id" text PRIMARY KEY, "userId" text NOT NULL, "status" text NOT NULL,
                                         "createdAt" timestamp(3) NOT NULL);
            CREATE INDEX "Order_createdAt_idx" ON "Order" ("createdAt");
            """
        )
        conn.execute(
            """INSERT INTO "Order" SELECT 'o' || g, 'u' || (g %% 500), 'paid', now() - g * interval '2 hours'
               FROM generate_series(1, %s) g""",
            (rows,),
        )
        conn.execute("""INSERT INTO "OrderItem" SELECT 'i' || g, 'o' || g FROM generate_series(1, 100) g""")
        conn.execute("VACUUM ANALYZE")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_statements_reset()")
    return Shop(env=f"UNIT_{name.upper()}_URL", url=url, admin=admin)


@pytest.fixture(scope="module")
def shop(pg_cluster, request) -> Iterator[Shop]:
    name = "unit_" + request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_postgres_")
    made = _make_shop(pg_cluster, name)
    os.environ[made.env] = made.url
    try:
        yield made
    finally:
        os.environ.pop(made.env, None)


@pytest.fixture(autouse=True)
def _fresh_findings():
    findings.clear()
    yield
    findings.clear()


def _titles(severity: str | None = None) -> list[str]:
    return [f.title for f in findings.all_findings() if severity is None or f.severity == severity]


def test_time_columns_both_generations():
    assert stats.time_columns(["calls", "total_exec_time", "mean_exec_time"]) == (
        "total_exec_time",
        "mean_exec_time",
    )
    assert stats.time_columns(["calls", "total_time", "mean_time"]) == ("total_time", "mean_time")


def test_statements_available_reports_columns_and_reset_time(shop):
    with connect(shop.env) as db:
        seen = stats.check_statements_available(db)
    assert seen["usable"] is True
    assert (seen["total"], seen["mean"]) == ("total_exec_time", "mean_exec_time")  # the cluster is PG >= 13
    assert seen["reset_at"] is not None  # PG14+: pg_stat_statements_info
    assert _titles() == ["pg_stat_statements is enabled"]
    assert "statistics cover the time since" in findings.all_findings()[0].detail


def test_missing_extension_is_a_p2_saying_how_to_enable_it(pg_cluster, shop):
    with psycopg.connect(shop.admin, autocommit=True) as conn:
        conn.execute("DROP EXTENSION pg_stat_statements")
    try:
        with connect(shop.env) as db:
            seen = stats.check_statements_available(db)
    finally:
        with psycopg.connect(shop.admin, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION pg_stat_statements")
    assert seen["usable"] is False
    (found,) = findings.all_findings()
    assert (found.severity, found.title) == ("P2", "pg_stat_statements is not enabled")
    assert "CREATE EXTENSION pg_stat_statements" in found.detail
    assert (
        "shared_preload_libraries" in found.detail and "Neon" in found.detail and "suspends" in found.detail
    )


def test_cache_hit_rate_threshold(shop):
    with connect(shop.env) as db:
        db.scalar('SELECT count(*) FROM "Order"')
        rates = stats.check_cache_hit_rates(db, min_hit_rate_pct=99, min_block_reads=1)
        assert set(rates["kind"]) == {"table", "index"}
        table_rate = float(rates.set_index("kind").loc["table", "hit_rate_pct"])
        assert 0 <= table_rate <= 100
        findings.clear()
        stats.check_cache_hit_rates(db, min_hit_rate_pct=100.5, min_block_reads=1)  # nothing can reach it
    assert any(t.startswith("Table cache hit rate") for t in _titles("P3"))


def test_guarded_turns_a_refusal_into_an_info_finding(shop):
    with connect(shop.env) as db:
        got = stats.guarded(
            "demo", "something forbidden", lambda: db.query("SELECT * FROM pg_authid"), empty="none"
        )
    assert got == "none"
    (found,) = findings.all_findings()
    assert found.severity == "info" and found.title == "Could not check something forbidden"
    assert "permission denied" in found.detail


def test_guarded_lets_other_errors_through():
    with pytest.raises(ZeroDivisionError):
        stats.guarded("demo", "x", lambda: 1 / 0)
    assert issubclass(DatabaseError, Exception)
