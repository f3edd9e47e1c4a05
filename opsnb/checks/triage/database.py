"""Can the shop's database be reached: runbook "Investigation 4: Check database connection".

`psql $DATABASE_URL -c "SELECT 1;"` through the reader role (opsnb.checks.postgres.connect). How full the
connection pool is (runbook "Cause 1") is judged by the one definition of it,
:func:`opsnb.checks.postgres.connections.check_connection_usage`, on the session :func:`reader_session` opens.

Check ``triage.database-reachable``: the database answers → pass; it refuses or does not answer (down,
unreachable, "too many clients") → P0 (runbook "Alert: Database Connection Failed … page on-call"). When only
our own credentials are refused (wrong password, unknown role or database), the database itself was not
judged → inconclusive.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from opsnb.checks import findings

if TYPE_CHECKING:
    import pandas as pd

    from opsnb.checks.postgres import Database

REACH_SQL = """
SELECT current_database() AS database, current_user AS role, current_setting('server_version') AS server_version
"""
CONNECT_TIMEOUT_S = 5
STATEMENT_TIMEOUT_MS = 10_000
# Refusals of our own login (the database answered; the URL or role is wrong), not of the database's health.
CREDENTIAL_REFUSALS = (
    "password authentication failed",
    "authentication failed",
    "no pg_hba.conf entry",
    "does not exist",  # role or database
    "permission denied for database",
)
READER_HINT = "set database_url_env to the reader role's URL (README: 'Read-only by privilege')"


def _credentials_refused(message: str) -> bool:
    """True when the error says the database refused our login rather than being down or full."""
    lowered = message.lower()
    return any(refusal in lowered for refusal in CREDENTIAL_REFUSALS)


@findings.check("triage.database-reachable", hint=READER_HINT)
def check_reachable(database_url_env: str, connect_timeout_s: int = CONNECT_TIMEOUT_S) -> pd.DataFrame:
    """Connect as the reader and run one query: unreachable or refusing connections → P0."""
    import pandas as pd

    from opsnb.checks.postgres import DatabaseError, connect

    started = time.perf_counter()
    try:
        with connect(
            database_url_env, connect_timeout_s=connect_timeout_s, statement_timeout_ms=STATEMENT_TIMEOUT_MS
        ) as db:
            connected = time.perf_counter()
            row = db.rows(REACH_SQL)[0]
    except DatabaseError as exc:
        message = str(exc)
        if _credentials_refused(message):
            raise findings.CouldNotLook(
                f"the database refused the reader's login: {message}", READER_HINT
            ) from None
        return findings.conclude(
            "fail",
            "The database cannot be reached",
            severity="P0",
            detail=f"{message}. Check the provider's status page (Neon dashboard); 'too many clients' means "
            "the connection pool is exhausted (runbook Cause 1): restart the app or lower its pool size",
            evidence=pd.DataFrame([{"reachable": False, "error": message}]),
        )
    done = time.perf_counter()
    table = pd.DataFrame(
        [
            {
                "reachable": True,
                "connect_ms": round((connected - started) * 1000, 1),
                "query_ms": round((done - connected) * 1000, 1),
                **row,
            }
        ]
    )
    return findings.conclude(
        "pass",
        "The database answers",
        detail=f"{row['database']} as {row['role']}, PostgreSQL {row['server_version']}: connected in "
        f"{table.at[0, 'connect_ms']:.0f} ms, answered in {table.at[0, 'query_ms']:.0f} ms",
        evidence=table,
    )


@contextmanager
def reader_session(database_url_env: str) -> Iterator[Database | None]:
    """The reader session for the database steps after :func:`check_reachable`; None when the database cannot
    be reached (check_reachable has concluded why, so the steps that need the session are skipped)."""
    from opsnb.checks.postgres import connect
    from opsnb.errors import OpsnbError

    try:
        db = connect(database_url_env, connect_timeout_s=CONNECT_TIMEOUT_S)
    except OpsnbError:  # DatabaseError and a missing secret are both opsnb errors
        db = None
    if db is None:
        yield None
        return
    with db:
        yield db


def role_and_pool(database_url_env: str) -> pd.DataFrame | None:
    """The runbook's database steps after :func:`check_reachable`, on one reader session: the read role
    (safety.read-only-role), then connection usage (postgres' one definition of the pool rule). Returns the
    usage evidence; None when the database cannot be reached (check_reachable said why)."""
    from opsnb.checks.postgres import connections, roles

    with reader_session(database_url_env) as db:
        if db is None:
            return None
        roles.check_read_only_role(db, database_url_env)
        return connections.check_connection_usage(db)
