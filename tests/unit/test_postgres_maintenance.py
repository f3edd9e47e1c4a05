"""Unit tests of opsnb.postgres.maintenance: vacuum/analyze, dead tuples, wraparound, sequences."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest

from opsnb import findings
from opsnb.postgres import connect, maintenance

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


def test_vacuum_and_dead_tuples(shop):
    with psycopg.connect(shop.url, autocommit=True) as conn:
        conn.execute('CREATE TABLE "Churn" ("id" int) WITH (autovacuum_enabled = false)')
        conn.execute('INSERT INTO "Churn" SELECT g FROM generate_series(1, 30000) g')
        conn.execute('DELETE FROM "Churn" WHERE "id" % 2 = 0')
    try:
        with connect(shop.env) as db:
            maintenance.check_dead_tuples(db, max_dead_pct=20, min_dead=10_000)
            assert _titles("P3") == ["Churn: 50.0 % dead tuples (15000)"]
            findings.clear()
            status = maintenance.check_vacuum(db, max_age_days=7, min_rows=1000)
            churn = status.set_index("table").loc["Churn"]
            assert churn["last_vacuum"] is None or churn["last_vacuum"] != churn["last_vacuum"]
            (stale,) = findings.all_findings()
            assert stale.severity == "P3" and "Churn never vacuumed" in stale.detail
            assert "Order never" not in stale.detail  # the fixture vacuumed it
            with psycopg.connect(shop.url, autocommit=True) as conn:
                conn.execute('VACUUM ANALYZE "Churn"')
            findings.clear()
            maintenance.check_dead_tuples(db)
            maintenance.check_vacuum(db)
            assert not _titles("P3")
    finally:
        with psycopg.connect(shop.url, autocommit=True) as conn:
            conn.execute('DROP TABLE "Churn"')


def test_wraparound_thresholds(shop):
    with connect(shop.env) as db:
        df = maintenance.check_wraparound(db)
        assert df.iloc[0]["kind"] == "database" and df.iloc[0]["transactions_left"] > 2_000_000_000
        assert [f.severity for f in findings.all_findings()] == ["info"]
        findings.clear()
        maintenance.check_wraparound(db, warn_left=maintenance.XID_LIMIT)
        assert _titles("P2")[0].startswith("Transaction ID wraparound")
        findings.clear()
        maintenance.check_wraparound(db, critical_left=maintenance.XID_LIMIT)
        assert _titles("P1")[0].startswith("Transaction ID wraparound")


def test_sequences_near_their_max(shop):
    with psycopg.connect(shop.url, autocommit=True) as conn:
        conn.execute("CREATE SEQUENCE tiny_seq AS smallint MAXVALUE 100")
        conn.execute("SELECT setval('tiny_seq', 95)")
        conn.execute("CREATE SEQUENCE roomy_seq")
        conn.execute("SELECT nextval('roomy_seq')")
    try:
        with connect(shop.env) as db:
            df = maintenance.check_sequences(db)
    finally:
        with psycopg.connect(shop.url, autocommit=True) as conn:
            conn.execute("DROP SEQUENCE tiny_seq, roomy_seq")
    assert df.iloc[0]["sequence"] == "tiny_seq" and df.iloc[0]["used_pct"] == 95.0
    assert _titles("P2") == ["Sequence tiny_seq at 95.0 % of its maximum"]
