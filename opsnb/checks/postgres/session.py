"""A database session for runbooks: read-only by default, bounded in time, named after the runbook."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql as _sql
from psycopg.rows import dict_row

from opsnb.checks import context
from opsnb.checks.secrets import Secret, scrub, secret
from opsnb.errors import OpsnbError

if TYPE_CHECKING:
    import pandas as pd

# what the session runs: fixed text, or a statement composed with psycopg.sql (never text built from values)
Statement = str | _sql.Composable


class DatabaseError(OpsnbError):
    """A connection or query failed; the message is one scrubbed line.

    An opsnb error, so that a check it escapes from concludes ``inconclusive`` (the database did not
    answer) instead of ending the run as a bug; outside a check the runbook could not finish (exit 4).
    """

    exit_code = 4


class Database:
    """One psycopg 3 connection in autocommit mode (so we never sit idle in a transaction)."""

    def __init__(self, conn: psycopg.Connection, read_only: bool):
        self.conn = conn
        self.read_only = read_only

    def query(self, sql: Statement, params: Any = None) -> pd.DataFrame:
        """Rows of ``sql`` as a pandas DataFrame (columns kept even when there are no rows)."""
        import pandas as pd

        with self._cursor() as cur:
            self._execute(cur, sql, params)
            columns = [c.name for c in cur.description or []]
            return pd.DataFrame(cur.fetchall(), columns=columns)

    def rows(self, sql: Statement, params: Any = None) -> list[dict[str, Any]]:
        """Rows of ``sql`` as a list of dicts."""
        with self._cursor() as cur:
            self._execute(cur, sql, params)
            return list(cur.fetchall()) if cur.description else []

    def scalar(self, sql: Statement, params: Any = None) -> Any:
        """The first column of the first row (None when there is no row)."""
        rows = self.rows(sql, params)
        return next(iter(rows[0].values())) if rows else None

    def execute(self, sql: Statement, params: Any = None) -> int:
        """Run a statement; the number of rows it touched."""
        with self._cursor() as cur:
            self._execute(cur, sql, params)
            return cur.rowcount

    @property
    def server_version(self) -> int:
        """The server's version number, e.g. 150004 for PostgreSQL 15.4 (from the connection, no query)."""
        return int(self.conn.info.server_version)

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _cursor(self):
        return self.conn.cursor(row_factory=dict_row)

    def _execute(self, cur, sql: Statement, params: Any) -> None:
        try:
            cur.execute(sql, params)
        except psycopg.Error as exc:
            raise DatabaseError(_one_line(exc)) from None


def _one_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return scrub(f"{type(exc).__name__}: {text[0] if text else ''}")


def connect(
    dsn: str | Secret,
    *,
    read_only: bool = True,
    statement_timeout_ms: int = 30_000,
    lock_timeout_ms: int = 5_000,
    connect_timeout_s: int = 10,
    application_name: str | None = None,
) -> Database:
    """Open a session on the database whose URL is in env var ``dsn`` (or a resolved Secret).

    Read-only unless ``read_only=False`` (gated actions); statement and lock
    timeouts are set at connection start so that they hold for every statement.
    The read-only setting is defence in depth only: what guards the database is
    the role (see ``opsnb.checks.postgres.roles.check_read_only_role``).
    """
    url = dsn if isinstance(dsn, Secret) else secret(dsn)
    name = application_name or f"opsnb/{context.runbook()}"
    options = f"-c statement_timeout={int(statement_timeout_ms)} -c lock_timeout={int(lock_timeout_ms)}"
    if read_only:
        options += " -c default_transaction_read_only=on"
    try:
        conn = psycopg.connect(
            url.reveal(),
            autocommit=True,
            connect_timeout=connect_timeout_s,
            application_name=name,
            options=options,
        )
    except psycopg.Error as exc:
        raise DatabaseError(f"cannot connect to ${url.name}: " + _one_line(exc)) from None
    db = Database(conn, read_only)
    note_identity(db)
    return db


def note_identity(db: Database) -> None:
    """Record which server this session judges (host, port, database, role, server version; never the
    password), so that the manifest and the report header say what was looked at."""
    info = db.conn.info
    role = db.scalar("SELECT current_user")
    context.note_target(
        "postgres",
        host=info.host,
        port=info.port,
        database=info.dbname,
        role=role,
        server_version=info.parameter_status("server_version"),
    )
