"""A small shop database of a test module's own in the session's bare cluster (`pg_cluster`)."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from opsnb.checks import findings

WEIRD = 'we;ird "na me"'  # a real table name with a semicolon, double quotes and a space


@dataclass
class Shop:
    env: str  # environment variable holding the app role's URL
    url: str  # app role (owns the tables, not superuser)
    admin: str  # superuser, same database


def make_shop(pg_cluster, name: str, rows: int = 12_000) -> Shop:
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


def titles(severity: str | None = None) -> list[str]:
    """Titles of the conclusions recorded so far (of one severity when given)."""
    return [c.title for c in findings.all_conclusions() if severity is None or c.severity == severity]


def concluded(check_id: str) -> findings.Conclusion:
    """The one conclusion recorded for ``check_id`` (AssertionError when there is none)."""
    found = [c for c in findings.all_conclusions() if c.check == check_id]
    assert len(found) == 1, [(c.check, c.title) for c in findings.all_conclusions()]
    return found[0]


def idle_worker(url: str, app: str = "unit-worker") -> psycopg.Connection:
    """A session of the app that updates a row and leaves its transaction open: idle in transaction."""
    conn = psycopg.connect(url + f"?application_name={app}")
    conn.execute('UPDATE "Order" SET "status" = "status" WHERE "id" = %s', ("o1",))
    return conn
