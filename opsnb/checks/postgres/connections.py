"""Connections: how many, in which state, from which application, against max_connections.

The runbook's alert "High Database Connection Usage: > 80 % of connection pool used" is a P2; exhaustion
("sorry, too many clients already", "remaining connection slots are reserved") is a P1.
"""

from __future__ import annotations

from typing import Any

from psycopg import sql

from opsnb.checks import findings
from opsnb.checks.postgres.session import Database
from opsnb.checks.postgres.stats import guarded

# A client session; rows of other roles show a NULL backend_type to a role without pg_read_all_stats.
CLIENT = sql.SQL("(backend_type = 'client backend' OR (backend_type IS NULL AND usename IS NOT NULL))")


def connection_usage(db: Database):
    """One row: client connections now, max_connections, reserved slots, usable slots and usage %."""
    return db.query(
        sql.SQL(
            """
            WITH s AS (
                SELECT (SELECT count(*) FROM pg_stat_activity WHERE {client}) AS connections,
                       current_setting('max_connections')::int AS max_connections,
                       current_setting('superuser_reserved_connections')::int AS superuser_reserved,
                       coalesce(current_setting('reserved_connections', true)::int, 0) AS reserved
            )
            SELECT connections, max_connections, superuser_reserved, reserved,
                   max_connections - superuser_reserved - reserved AS usable_by_app,
                   round(100.0 * connections / max_connections, 1)::float8 AS used_pct
            FROM s
            """
        ).format(client=CLIENT)
    )


def connections_by_state(db: Database):
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


def connections_by_application(db: Database):
    """Client connections per application, role and database, with their states."""
    return db.query(
        sql.SQL(
            """
            SELECT coalesce(nullif(application_name, ''), '(none)') AS application_name, usename, datname,
                   count(*) AS connections,
                   count(*) FILTER (WHERE state = 'active') AS active,
                   count(*) FILTER (WHERE state = 'idle') AS idle,
                   count(*) FILTER (WHERE state LIKE 'idle in transaction%') AS idle_in_transaction
            FROM pg_stat_activity
            WHERE {client}
            GROUP BY 1, 2, 3
            ORDER BY 4 DESC, 1
            """
        ).format(client=CLIENT)
    )


def check_connection_usage(
    db: Database, warn_pct: float = 80, critical_pct: float = 95
) -> dict[str, Any] | None:
    """P2 at >= ``warn_pct`` % of max_connections (the runbook's 80 % alert); P1 at >= ``critical_pct`` %
    or when the app role's slots are used up (only reserved slots left: new app connections are refused)."""
    check = "connections"
    df = guarded(check, "connection usage", lambda: connection_usage(db))
    if df is None:
        return None
    row = df.to_dict("records")[0]
    summary = (
        f"{row['connections']} of max_connections {row['max_connections']} in use ({row['used_pct']} %); "
        f"{row['superuser_reserved'] + row['reserved']} slot(s) reserved, {row['usable_by_app']} usable by the app"
    )
    if row["connections"] >= row["usable_by_app"] or row["used_pct"] >= critical_pct:
        findings.add(
            "P1",
            f"Connections exhausted: {row['used_pct']} % of max_connections",
            summary + ". New connections fail with 'too many clients' / 'remaining connection slots are "
            "reserved' (Prisma P2024/P1001). Close idle sessions, use the pooled (-pooler) URL, lower the "
            "app's pool size, or raise the limit (Neon: a bigger compute).",
            evidence=row,
            check=check,
        )
    elif row["used_pct"] >= warn_pct:
        findings.add(
            "P2",
            f"High database connection usage: {row['used_pct']} % of max_connections",
            summary + f" (runbook alert: > {warn_pct:g} % of the pool).",
            evidence=row,
            check=check,
        )
    else:
        findings.ok(f"Connection usage {row['used_pct']} % of max_connections", summary, check=check)
    return df
