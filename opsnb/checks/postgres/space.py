"""Space: database and table sizes, and the runbook's monthly archive of orders older than 2 years."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from psycopg import sql

from opsnb.checks.findings import check, conclude
from opsnb.checks.postgres.names import TABLE_KINDS, Table, UnknownName, require_column, require_table, shown
from opsnb.checks.postgres.session import Database, DatabaseError

if TYPE_CHECKING:
    import pandas as pd


def database_size(db: Database) -> pd.DataFrame:
    """One row: this database's name and size (the runbook's daily "Check Database Size")."""
    return db.query(
        "SELECT current_database() AS database, pg_database_size(current_database()) AS size_bytes, "
        "pg_size_pretty(pg_database_size(current_database())) AS size"
    )


def table_sizes(db: Database, limit: int = 10) -> pd.DataFrame:
    """The ``limit`` largest tables: total (with indexes and TOAST), table and index sizes, estimated rows."""
    return db.query(
        """
        SELECT n.nspname AS schema, c.relname AS table,
               pg_total_relation_size(c.oid) AS total_bytes,
               pg_size_pretty(pg_total_relation_size(c.oid)) AS total_size,
               pg_size_pretty(pg_relation_size(c.oid)) AS table_size,
               pg_size_pretty(pg_indexes_size(c.oid)) AS index_size,
               greatest(c.reltuples, 0)::bigint AS estimated_rows
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'm')
          AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%%'
        ORDER BY pg_total_relation_size(c.oid) DESC, c.relname
        LIMIT %s
        """,
        (limit,),
    )


def archive_candidates(
    db: Database, table: str = "Order", column: str = "createdAt", older_than: str = "2 years"
) -> pd.DataFrame:
    """One row: rows of ``table`` with ``column`` older than ``older_than``, their size, oldest and newest.

    ``table`` ("schema.table" or a name on the search path) and ``column`` are looked up in the catalog
    first: UnknownName when either is missing, before any statement names them.
    """
    found = require_table(db, table, TABLE_KINDS)
    col = sql.Identifier(require_column(db, found, column))
    statement = sql.SQL(
        """
        SELECT count(*) AS rows, coalesce(sum(pg_column_size(t.*)), 0)::bigint AS size_bytes,
               pg_size_pretty(coalesce(sum(pg_column_size(t.*)), 0)::bigint) AS size,
               min(t.{col}) AS oldest, max(t.{col}) AS newest
        FROM {table} t
        WHERE t.{col} < now() - %s::interval
        """
    ).format(col=col, table=found.ident)
    return db.query(statement, (older_than,))


def referencing_tables(db: Database, table: str = "Order") -> pd.DataFrame:
    """Foreign keys that reference ``table`` and what a DELETE on it does to them (cascade, restrict…)."""
    found = require_table(db, table, TABLE_KINDS)
    return db.query(
        """
        SELECT conrelid::regclass::text AS referencing_table, conname AS constraint,
               CASE confdeltype WHEN 'c' THEN 'cascade' WHEN 'r' THEN 'restrict' WHEN 'a' THEN 'no action'
                                WHEN 'n' THEN 'set null' WHEN 'd' THEN 'set default' END AS on_delete
        FROM pg_constraint
        WHERE contype = 'f' AND confrelid = %s
        ORDER BY 1, 2
        """,
        (found.oid,),
    )


def archive_statement(
    columns: list[str], table: sql.Identifier, archive: sql.Identifier, column: str
) -> sql.Composed:
    """One statement that moves old rows: DELETE … RETURNING feeding INSERT into the archive.

    ``table`` and ``archive`` are identifiers (sql.Identifier(schema, name)); the age is the one
    parameter (a sql.Placeholder, e.g. '2 years'). A single statement is a single transaction: the copy
    and the delete succeed or fail together, and a row inserted while it runs is either moved entirely or
    left alone. Columns are named, so a different column order in the archive table cannot shift values.
    """
    for ident in (table, archive):
        # format() would quote a plain str as a *literal*: only identifiers name tables here
        if not isinstance(ident, sql.Identifier):
            raise TypeError(f"table and archive must be sql.Identifier, not {type(ident).__name__}")
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    return sql.SQL(
        "WITH moved AS (DELETE FROM {table} WHERE {column} < now() - {age}::interval RETURNING {cols}) "
        "INSERT INTO {archive} ({cols}) SELECT {cols} FROM moved"
    ).format(table=table, column=sql.Identifier(column), age=sql.Placeholder(), cols=cols, archive=archive)


def _shared_columns(db: Database, table: Table, archive: Table) -> list[str]:
    return [
        r["attname"]
        for r in db.rows(
            """
            SELECT a.attname FROM pg_attribute a
            WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped
              AND a.attname IN (SELECT attname FROM pg_attribute
                                WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped)
            ORDER BY a.attnum
            """,
            (table.oid, archive.oid),
        )
    ]


def shared_columns(db: Database, table: str, archive: str) -> list[str]:
    """Columns present in both ``table`` and ``archive`` (in ``table``'s order)."""
    return _shared_columns(db, require_table(db, table, TABLE_KINDS), require_table(db, archive, TABLE_KINDS))


def _archive_move(db: Database, table: str, archive: str, column: str) -> tuple[Table, Table, sql.Composed]:
    """Both tables and the column looked up in the catalog, and the statement that moves the rows."""
    src = require_table(db, table, TABLE_KINDS)
    dst = require_table(db, archive, TABLE_KINDS)
    require_column(db, src, column)
    columns = _shared_columns(db, src, dst)
    if column not in columns:
        raise UnknownName(f"{dst.label} lacks columns of {src.label} (no {shown(sql.Identifier(column))})")
    return src, dst, archive_statement(columns, src.ident, dst.ident, column)


def archive_rows(
    db: Database,
    table: str = "Order",
    archive: str = "OrderArchive",
    column: str = "createdAt",
    older_than: str = "2 years",
) -> str:
    """Move the old rows into the archive table in one transaction; how many moved."""
    _, _, statement = _archive_move(db, table, archive, column)
    moved = db.execute(statement, (older_than,))
    return f"moved {moved} row(s) from {table} to {archive}"


@check(
    "postgres.archive-candidates",
    essential=False,
    hint="check the archive parameters (table, column, age) and that the reader role may read the table",
)
def check_archive_candidates(
    db: Database,
    table: str = "Order",
    archive: str = "OrderArchive",
    column: str = "createdAt",
    older_than: str = "2 years",
    allow_cascade: bool = False,
) -> pd.DataFrame:
    """The runbook's monthly "Archive Old Data": how many rows of ``table`` are older than ``older_than``,
    and whether the archive can take them. P3 when it cannot: no archive table with the same columns, or
    a foreign key that would delete referencing rows with them (ON DELETE CASCADE; they are not archived)
    unless ``allow_cascade``. Evidence: one row (count, size, oldest, newest, what references the table)."""
    src = require_table(db, table, TABLE_KINDS)
    require_column(db, src, column)
    found = archive_candidates(db, table, column, older_than)
    refs = referencing_tables(db, table)
    cascades = refs[refs["on_delete"] == "cascade"]["referencing_table"].tolist()
    row = found.iloc[0]
    evidence = found.assign(
        cascades_to=", ".join(cascades),
        restricted_by=", ".join(refs[refs["on_delete"].isin(["restrict", "no action"])]["referencing_table"]),
    )
    counted = f"{row['rows']} {src.label} row(s) older than {older_than} ({row['size']})"
    if not row["rows"]:
        return conclude("pass", f"No {src.label} row is older than {older_than}", evidence=evidence)
    try:
        _archive_move(db, table, archive, column)
    except UnknownName as exc:
        return conclude(
            "warn",
            f"{counted} cannot be archived: {exc}",
            severity="P3",
            detail='Create the archive table with the same columns (the runbook\'s "OrderArchive"), or set '
            "the archive parameter to the one you use.",
            evidence=evidence,
        )
    if cascades and not allow_cascade:
        return conclude(
            "warn",
            f"{counted} cannot be archived as the runbook says: deleting them cascades to {', '.join(cascades)}",
            severity="P3",
            detail=f"ON DELETE CASCADE would delete the matching rows of {', '.join(cascades)} without archiving "
            "them. Archive those rows first (or change the foreign key), or rerun with "
            "archive_allow_cascade=True to accept losing them.",
            evidence=evidence,
        )
    return conclude(
        "pass",
        f"{counted} to archive",
        detail=f"Archive candidates for the monthly maintenance (oldest {row['oldest']})"
        + (f"; their rows in {', '.join(cascades)} are deleted with them (allowed)." if cascades else "."),
        evidence=evidence,
    )


def offer_archive(
    database_url_env: str,
    writer_database_url_env: str,
    table: str = "Order",
    archive: str = "OrderArchive",
    column: str = "createdAt",
    older_than: str = "2 years",
    allow_cascade: bool = False,
) -> dict[str, Any] | None:
    """Gated action: move the rows older than ``older_than`` to ``archive`` and delete them, in one
    transaction. Not offered (None, and why printed) when there is nothing to move, a name is unknown, the
    rows cannot be read, or a foreign key would cascade the delete without ``allow_cascade``:
    check_archive_candidates concludes that.
    """
    from opsnb.checks.actions import action
    from opsnb.checks.postgres.session import connect

    # the plan quotes the statement that will run, built from catalog names on a read-only session
    with connect(database_url_env) as db:
        try:
            src, dst, statement = _archive_move(db, table, archive, column)
            n = int(archive_candidates(db, table, column, older_than).iloc[0]["rows"])
            refs = referencing_tables(db, table)
        except (UnknownName, DatabaseError) as exc:  # check_archive_candidates concluded why already
            print(f"Not offered: {exc}")
            return None
    if not n:
        print("Nothing to archive.")
        return None
    cascades = refs[refs["on_delete"] == "cascade"]["referencing_table"].tolist()
    plan = [shown(statement, (older_than,)) + f"  -- {n} row(s), one transaction"]
    if cascades:
        plan.append(
            f"ON DELETE CASCADE also deletes the matching rows of {', '.join(cascades)} (NOT archived)"
        )
        if not allow_cascade:
            print("\n".join(["Not offered:"] + plan))
            return None
    restricts = refs[refs["on_delete"].isin(["restrict", "no action"])]["referencing_table"].tolist()
    if restricts:
        plan.append(f"fails and changes nothing if rows of {', '.join(restricts)} still reference them")

    def apply():
        with connect(writer_database_url_env, read_only=False, statement_timeout_ms=600_000) as rw:
            return archive_rows(rw, table, archive, column, older_than)

    return action(f"Archive {src.label} rows older than {older_than} to {dst.label}", plan, apply)
