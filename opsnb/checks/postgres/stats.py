"""What the statistics can be trusted for: pg_stat_statements presence, reset times, cache hit rates.

One function, one SQL statement (PgHero's model). ``check_*`` functions run one of them, turn the result
into findings and return the table the notebook shows. A check the role is not allowed to run becomes an
``info`` finding (what a Neon user without superuser sees), never an error.

Also the helpers every module builds its SQL with: statements are psycopg.sql objects (identifiers through
sql.Identifier, values as parameters), a name that arrives as a parameter is looked up in the catalog before
any SQL names it (``require_table``), and ``shown`` renders a statement as text for a person to read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from opsnb.checks import findings
from opsnb.checks.postgres.session import Database, DatabaseError

ENABLE_HINT = (
    "Enable it: add pg_stat_statements to shared_preload_libraries (needs a restart), then run "
    "`CREATE EXTENSION pg_stat_statements;` in this database. On Neon the library is preloaded: "
    "`CREATE EXTENSION pg_stat_statements;` is enough, but its statistics vanish whenever the compute "
    "suspends (scale to zero), so check when they were last reset before trusting them."
)


def guarded(check: str, what: str, run: Callable[[], Any], empty: Any = None) -> Any:
    """``run()``; when the database refuses (privileges, missing view), an info finding and ``empty``."""
    try:
        return run()
    except DatabaseError as exc:
        findings.add(
            "info", f"Could not check {what}", f"{exc}. The role may lack the privilege.", check=check
        )
        return empty


def server_version_num(db: Database) -> int:
    """server_version_num, e.g. 150004 for PostgreSQL 15.4."""
    return int(db.scalar("SELECT current_setting('server_version_num')::int"))


def statements_extension(db: Database):
    """One row: is pg_stat_statements installed in this database, available, preloaded (None if hidden)."""
    return db.query(
        """
        SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements') AS installed,
               EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_stat_statements') AS available,
               (SELECT setting FROM pg_settings WHERE name = 'shared_preload_libraries') AS preload_libraries,
               to_regclass('pg_stat_statements') IS NOT NULL AS view_visible
        """
    )


def statement_columns(db: Database) -> list[str]:
    """Column names of the pg_stat_statements view (PG13+ has *_exec_time, older *_time)."""
    return [
        r["attname"]
        for r in db.rows(
            "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass('pg_stat_statements') "
            "AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
        )
    ]


def time_columns(columns: list[str]) -> tuple[str, str]:
    """(total, mean) time column names for this pg_stat_statements version (ms in both)."""
    if "mean_exec_time" in columns:  # PostgreSQL 13+
        return "total_exec_time", "mean_exec_time"
    return "total_time", "mean_time"


def statements_reset_at(db: Database):
    """When pg_stat_statements was last reset (PG14+ pg_stat_statements_info), else None."""
    if db.scalar("SELECT to_regclass('pg_stat_statements_info') IS NOT NULL"):
        return db.scalar("SELECT stats_reset FROM pg_stat_statements_info")
    return None


def database_stats_reset_at(db: Database):
    """When this database's cumulative statistics (pg_stat_database, table counters) were last reset."""
    return db.scalar("SELECT stats_reset FROM pg_stat_database WHERE datname = current_database()")


def check_statements_available(db: Database) -> dict[str, Any]:
    """Is pg_stat_statements usable here? P2 with how to enable it when not; returns what was seen.

    Keys: usable (bool), columns (list), total/mean (time column names), reset_at, database_reset_at.
    """
    check = "pg_stat_statements"
    ext = statements_extension(db).to_dict("records")[0]
    seen: dict[str, Any] = {"usable": False, "columns": [], "total": None, "mean": None, **ext}
    if not ext["installed"] or not ext["view_visible"]:
        preload = ext["preload_libraries"]
        detail = (
            f"The extension is {'installed' if ext['installed'] else 'not installed'} in this database"
            f" ({'available' if ext['available'] else 'not available'} on the server;"
            f" shared_preload_libraries = {preload!r}"
            + (" (hidden from this role)" if preload is None else "")
            + "). Top statements and the EXPLAIN of offending statements are skipped; every other check ran. "
            + ENABLE_HINT
        )
        findings.add("P2", "pg_stat_statements is not enabled", detail, evidence=ext, check=check)
        print("pg_stat_statements is not enabled: " + ENABLE_HINT)
        return seen
    try:
        columns = statement_columns(db)
        db.scalar("SELECT count(*) FROM pg_stat_statements")
    except DatabaseError as exc:
        # e.g. installed but not preloaded: "pg_stat_statements must be loaded via shared_preload_libraries"
        findings.add(
            "P2", "pg_stat_statements is not enabled", f"{exc}. {ENABLE_HINT}", evidence=ext, check=check
        )
        return seen
    total, mean = time_columns(columns)
    seen.update(usable=True, columns=columns, total=total, mean=mean)
    seen["reset_at"] = guarded(check, "when pg_stat_statements was reset", lambda: statements_reset_at(db))
    seen["database_reset_at"] = guarded(
        check, "when statistics were reset", lambda: database_stats_reset_at(db)
    )
    since = seen["reset_at"] or seen["database_reset_at"]
    findings.ok(
        "pg_stat_statements is enabled",
        f"Timing columns {total}/{mean}; statistics cover the time since "
        + (
            f"{since:%Y-%m-%d %H:%M:%S %Z}"
            if since is not None
            else "an unknown reset time (PostgreSQL < 14)"
        )
        + " (on Neon they restart whenever the compute resumes).",
        check=check,
    )
    return seen


def cache_hit_rates(db: Database):
    """Table (heap) and index cache hit rates in % with the block reads behind them (PgHero's query)."""
    return db.query(
        """
        SELECT 'table' AS kind,
               round(100 * sum(heap_blks_hit) / nullif(sum(heap_blks_hit) + sum(heap_blks_read), 0), 2)::float8
                 AS hit_rate_pct,
               sum(heap_blks_hit + heap_blks_read)::bigint AS block_reads
        FROM pg_statio_user_tables
        UNION ALL
        SELECT 'index',
               round(100 * sum(idx_blks_hit) / nullif(sum(idx_blks_hit) + sum(idx_blks_read), 0), 2)::float8,
               sum(idx_blks_hit + idx_blks_read)::bigint
        FROM pg_statio_user_indexes
        """
    )


def check_cache_hit_rates(db: Database, min_hit_rate_pct: float = 99.0, min_block_reads: int = 1000):
    """P3 when the table or index cache hit rate is below ``min_hit_rate_pct``.

    99 % is PgHero's cache_hit_rate_threshold; under ``min_block_reads`` reads the rate means nothing yet.
    """
    check = "cache hit rate"
    df = guarded(check, "cache hit rates", lambda: cache_hit_rates(db))
    if df is None:
        return df
    for row in df.itertuples():
        if (
            row.hit_rate_pct is None
            or row.hit_rate_pct != row.hit_rate_pct
            or (row.block_reads or 0) < min_block_reads
        ):
            findings.ok(f"{row.kind.capitalize()} cache hit rate: not enough reads yet", check=check)
        elif float(row.hit_rate_pct) < min_hit_rate_pct:
            findings.add(
                "P3",
                f"{row.kind.capitalize()} cache hit rate {row.hit_rate_pct} % is below {min_hit_rate_pct} %",
                "The working set does not fit in memory: more RAM (a bigger Neon compute), or fewer/lighter scans.",
                evidence=row._asdict(),
                check=check,
            )
        else:
            findings.ok(f"{row.kind.capitalize()} cache hit rate {row.hit_rate_pct} %", check=check)
    return df


# --- names from parameters, and SQL shown to a person ---------------------------------------------------

# relkinds whose rows can be counted: tables, partitioned tables, views, materialized views, foreign tables
READABLE_KINDS = ("r", "p", "v", "m", "f")
TABLE_KINDS = ("r", "p")


class UnknownName(LookupError):
    """A table or column named by a parameter is not in the database's catalog (no SQL was built from it)."""


@dataclass(frozen=True)
class Table:
    """A relation found in the catalog for a name given as a parameter."""

    oid: int
    schema: str
    name: str
    given: str  # the name as the parameter spelled it
    qualified: bool  # True when ``given`` named the schema

    @property
    def ident(self) -> sql.Identifier:
        """The schema-qualified identifier, the only form statements use."""
        return sql.Identifier(self.schema, self.name)

    @property
    def label(self) -> str:
        """How findings name it: quoted, and schema-qualified only when the parameter was."""
        return shown(self.ident if self.qualified else sql.Identifier(self.name))


def resolve_table(db: Database, name: str, kinds: Sequence[str] = READABLE_KINDS) -> Table | None:
    """The relation ``name`` refers to, or None: ``schema.table`` (exact, case-sensitive names), else a bare
    table name looked up along the search path the way PostgreSQL resolves it. Only catalog lookups with
    parameters run here, so a hostile name can only fail to match."""
    if not isinstance(name, str) or not name or "\x00" in name:
        return None
    # every dot could separate schema from table ("a.b.c" may be schema "a" + table "b.c" or "a.b" + "c")
    splits = [(name[:i], name[i + 1 :]) for i, ch in enumerate(name) if ch == "."]
    for schema, table in splits:
        rows = db.rows(
            "SELECT c.oid::bigint AS oid, n.nspname AS schema, c.relname AS name "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = %s AND c.relkind::text = ANY(%s)",
            (schema, table, list(kinds)),
        )
        if rows:
            return Table(int(rows[0]["oid"]), rows[0]["schema"], rows[0]["name"], name, True)
    rows = db.rows(
        "SELECT c.oid::bigint AS oid, n.nspname AS schema, c.relname AS name "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relname = %s AND c.relkind::text = ANY(%s) AND n.nspname = ANY(current_schemas(true)) "
        "ORDER BY array_position(current_schemas(true), n.nspname) LIMIT 1",
        (name, list(kinds)),
    )
    if rows:
        return Table(int(rows[0]["oid"]), rows[0]["schema"], rows[0]["name"], name, False)
    return None


def require_table(db: Database, name: str, kinds: Sequence[str] = READABLE_KINDS) -> Table:
    """resolve_table(), or UnknownName('table "X" does not exist in database Y')."""
    found = resolve_table(db, name, kinds)
    if found is None:
        raise UnknownName(
            f'table "{name}" does not exist in database {db.scalar("SELECT current_database()")}'
        )
    return found


def require_column(db: Database, table: Table, column: str) -> str:
    """``column`` when ``table`` has it (exact name), else UnknownName."""
    if isinstance(column, str) and column and "\x00" not in column:
        if db.scalar(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s AND attname = %s AND attnum > 0 "
            "AND NOT attisdropped",
            (table.oid, column),
        ):
            return column
    raise UnknownName(f'column "{column}" does not exist in table {shown(table.ident)}')


def shown(statement: sql.Composable, params: Sequence[Any] = ()) -> str:
    """Text of ``statement`` for a person to read (a plan, a finding), never for running: what runs is the
    Composable itself with its parameters. ``params`` take the place of its sql.Placeholder()s, as literals,
    so a plan shows the values the statement will get."""
    values = iter(params)

    def bind(part: sql.Composable) -> sql.Composable:
        if isinstance(part, sql.Placeholder) and params:
            return sql.Literal(next(values))
        if isinstance(part, sql.Composed):
            return sql.Composed([bind(p) for p in part])
        return part

    # no connection: psycopg quotes identifiers and literals with its own rules (standard strings)
    return bind(statement).as_string(None)
