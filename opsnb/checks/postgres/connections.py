"""Connections: how many, in which state, from which application, against the pool the app can use.

The one definition of connection usage for every runbook (slow-queries, db-maintenance, 500-triage): the
*pool* is what the app's roles can use, ``max_connections - superuser_reserved_connections -
reserved_connections`` (the last one exists from PostgreSQL 16); ``pool_pct`` is the client connections
(every database, every role: the limit is the server's) over that pool. The runbook's alert "High Database
Connection Usage: > 80 % of connection pool used" is a P2; exhaustion ("sorry, too many clients already",
"remaining connection slots are reserved") is a P1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from psycopg import sql

from opsnb.checks.findings import check, conclude
from opsnb.checks.postgres.roles import HIDDEN_SESSION
from opsnb.checks.postgres.session import Database

if TYPE_CHECKING:
    import pandas as pd

# A client session; the hidden sessions of other roles (no pg_read_all_stats) are counted as clients.
CLIENT = sql.SQL("(backend_type = 'client backend' OR {hidden})").format(hidden=HIDDEN_SESSION)


def connection_usage(db: Database) -> pd.DataFrame:
    """One row: client connections now, max_connections, reserved slots, the app's pool and pool_pct.

    ``hidden`` counts the rows of other roles whose backend type this role may not see (counted as clients).
    """
    return db.query(
        sql.SQL(
            """
            WITH s AS (
                SELECT (SELECT count(*) FROM pg_stat_activity WHERE {client})::int AS connections,
                       (SELECT count(*) FROM pg_stat_activity WHERE {hidden})::int AS hidden,
                       current_setting('max_connections')::int AS max_connections,
                       current_setting('superuser_reserved_connections')::int AS superuser_reserved,
                       coalesce(current_setting('reserved_connections', true)::int, 0) AS reserved
            )
            SELECT connections, max_connections, superuser_reserved, reserved,
                   max_connections - superuser_reserved - reserved AS pool,
                   round(100.0 * connections / greatest(max_connections - superuser_reserved - reserved, 1), 1)
                     ::float8 AS pool_pct,
                   hidden
            FROM s
            """
        ).format(client=CLIENT, hidden=HIDDEN_SESSION)
    )


def connections_by_state(db: Database) -> pd.DataFrame:
    """Client connections per state ('(hidden)' when this role may not see another role's state)."""
    return db.query(
        sql.SQL(
            """
            SELECT coalesce(state, '(hidden)') AS state, count(*) AS connections
            FROM pg_stat_activity
            WHERE {client}
            GROUP BY 1
            ORDER BY 2 DESC, 1
            """
        ).format(client=CLIENT)
    )


def connections_by_application(db: Database) -> pd.DataFrame:
    """Client connections per application, role and database, with their states."""
    return db.query(
        sql.SQL(
            """
            SELECT coalesce(nullif(application_name, ''), '(none)') AS application_name, usename, datname,
                   count(*) AS connections,
                   count(*) FILTER (WHERE state = 'active') AS active,
                   count(*) FILTER (WHERE state = 'idle') AS idle,
                   count(*) FILTER (WHERE state LIKE 'idle in transaction%%') AS idle_in_transaction
            FROM pg_stat_activity
            WHERE {client}
            GROUP BY 1, 2, 3
            ORDER BY 4 DESC, 1
            """
        ).format(client=CLIENT)
    )


@check("postgres.connection-usage", hint="check that the database answers the reader role")
def check_connection_usage(db: Database, warn_pct: float = 80, critical_pct: float = 95) -> pd.DataFrame:
    """P2 at >= ``warn_pct`` % of the pool (the runbook's 80 % alert); P1 at >= ``critical_pct`` % or when
    the pool is used up (only reserved slots left: the app's new connections are refused)."""
    usage = connection_usage(db)
    row = usage.to_dict("records")[0]
    summary = (
        f"{row['connections']} client connection(s) of a pool of {row['pool']} ({row['pool_pct']} %): "
        f"max_connections {row['max_connections']} minus {row['superuser_reserved']} superuser-reserved"
        + (f" and {row['reserved']} reserved" if row["reserved"] else "")
        + " slot(s)"
    )
    if row["hidden"]:
        summary += (
            f"; {row['hidden']} session(s) of other roles are hidden from this role and counted as clients"
        )
    if row["connections"] >= row["pool"] or row["pool_pct"] >= critical_pct:
        return conclude(
            "fail",
            f"Connection pool exhausted: {row['pool_pct']} % used",
            severity="P1",
            detail=summary + ". New connections fail with 'too many clients' / 'remaining connection slots "
            "are reserved' (Prisma P2024/P1001). Close idle sessions, use the pooled (-pooler) URL, lower "
            "the app's pool size, or raise the limit (Neon: a bigger compute).",
            evidence=usage,
        )
    if row["pool_pct"] >= warn_pct:
        return conclude(
            "warn",
            f"High database connection usage: {row['pool_pct']} % of the pool",
            severity="P2",
            detail=summary + f" (runbook alert: > {warn_pct:g} % of the connection pool).",
            evidence=usage,
        )
    return conclude(
        "pass", f"Connection usage is {row['pool_pct']} % of the pool", detail=summary + ".", evidence=usage
    )
