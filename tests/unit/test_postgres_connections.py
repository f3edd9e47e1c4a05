"""Unit tests of opsnb.postgres.connections: usage against max_connections and its thresholds."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest

from opsnb import findings
from opsnb.postgres import connect, connections

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


def test_usage_counts_our_sessions_against_max_connections(shop):
    extra = [psycopg.connect(shop.url + "?application_name=unit-pool") for _ in range(3)]
    try:
        with connect(shop.env) as db:
            usage = connections.connection_usage(db).to_dict("records")[0]
            max_conn = int(db.scalar("SHOW max_connections"))
            by_app = connections.connections_by_application(db)
            by_state = connections.connections_by_state(db)
    finally:
        for c in extra:
            c.close()
    assert usage["max_connections"] == max_conn
    assert usage["connections"] >= 4  # three idle + this one
    assert usage["usable_by_app"] == max_conn - usage["superuser_reserved"] - usage["reserved"]
    assert usage["used_pct"] == round(100 * usage["connections"] / max_conn, 1)
    pool = by_app[by_app["application_name"] == "unit-pool"].iloc[0]
    assert (pool["connections"], pool["idle"]) == (3, 3)
    assert by_state.set_index("state").loc["idle", "connections"] >= 3


def test_thresholds_p2_p1_and_ok(shop):
    with connect(shop.env) as db:
        connections.check_connection_usage(db)
        assert [f.severity for f in findings.all_findings()] == ["info"]
        findings.clear()
        connections.check_connection_usage(db, warn_pct=0.01, critical_pct=99)
        assert _titles("P2")[0].startswith("High database connection usage")
        findings.clear()
        connections.check_connection_usage(db, warn_pct=0.01, critical_pct=0.02)
        assert _titles("P1")[0].startswith("Connections exhausted")


def test_reserved_slots_reached_is_p1(pg_cluster, shop):
    """Fill every slot the app may use: PostgreSQL itself refuses the next one, the check says P1."""
    with connect(shop.env) as db:
        usage = connections.connection_usage(db).to_dict("records")[0]
    opened, refused = [], None
    try:
        for _ in range(usage["usable_by_app"] + 1):
            try:
                opened.append(psycopg.connect(shop.url))
            except psycopg.OperationalError as exc:
                refused = str(exc)
                break
        assert refused and (
            "remaining connection slots are reserved" in refused or "too many clients" in refused
        )
        with connect(_admin_env(shop)) as db:
            connections.check_connection_usage(db, warn_pct=80, critical_pct=101)
    finally:
        for c in opened:
            c.close()
        os.environ.pop("UNIT_CONN_ADMIN_URL", None)
    assert _titles("P1") and _titles("P1")[0].startswith("Connections exhausted")


def _admin_env(shop) -> str:
    os.environ["UNIT_CONN_ADMIN_URL"] = shop.admin  # a superuser may still use the reserved slots
    return "UNIT_CONN_ADMIN_URL"
