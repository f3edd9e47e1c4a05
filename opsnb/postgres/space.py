"""Space: database and table sizes, and the runbook's monthly archive of orders older than 2 years."""

from __future__ import annotations

from typing import Any

from opsnb import findings
from opsnb.postgres.session import Database
from opsnb.postgres.stats import guarded


def _qi(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def database_size(db: Database):
    """One row: this database's name and size (the runbook's daily "Check Database Size")."""
    return db.query(
        "SELECT current_database() AS database, pg_database_size(current_database()) AS size_bytes, "
        "pg_size_pretty(pg_database_size(current_database())) AS size"
    )


def table_sizes(db: Database, limit: int = 10):
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
):
    """One row: rows of ``table`` with ``column`` older than ``older_than``, their size, oldest and newest."""
    return db.query(
        f"""
        SELECT count(*) AS rows, coalesce(sum(pg_column_size(t.*)), 0)::bigint AS size_bytes,
               pg_size_pretty(coalesce(sum(pg_column_size(t.*)), 0)::bigint) AS size,
               min(t.{_qi(column)}) AS oldest, max(t.{_qi(column)}) AS newest
        FROM {_qi(table)} t
        WHERE t.{_qi(column)} < now() - %s::interval
        """,
        (older_than,),
    )


def referencing_tables(db: Database, table: str = "Order"):
    """Foreign keys that reference ``table`` and what a DELETE on it does to them (cascade, restrict…)."""
    return db.query(
        """
        SELECT conrelid::regclass::text AS referencing_table, conname AS constraint,
               CASE confdeltype WHEN 'c' THEN 'cascade' WHEN 'r' THEN 'restrict' WHEN 'a' THEN 'no action'
                                WHEN 'n' THEN 'set null' WHEN 'd' THEN 'set default' END AS on_delete
        FROM pg_constraint
        WHERE contype = 'f' AND confrelid = to_regclass(%s)
        ORDER BY 1, 2
        """,
        (_qi(table),),
    )


def archive_statement(columns: list[str], table: str, archive: str, column: str) -> str:
    """One statement that moves old rows: DELETE … RETURNING feeding INSERT into the archive.

    A single statement is a single transaction: the copy and the delete succeed or fail together, and
    a row inserted while it runs is either moved entirely or left alone. Columns are named, so a
    different column order in the archive table cannot shift values.
    """
    cols = ", ".join(_qi(c) for c in columns)
    return (
        f"WITH moved AS (DELETE FROM {_qi(table)} WHERE {_qi(column)} < now() - %s::interval RETURNING {cols}) "
        f"INSERT INTO {_qi(archive)} ({cols}) SELECT {cols} FROM moved"
    )


def shared_columns(db: Database, table: str, archive: str) -> list[str]:
    """Columns present in both ``table`` and ``archive`` (in ``table``'s order)."""
    return [
        r["attname"]
        for r in db.rows(
            """
            SELECT a.attname FROM pg_attribute a
            WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped
              AND a.attname IN (SELECT attname FROM pg_attribute
                                WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped)
            ORDER BY a.attnum
            """,
            (_qi(table), _qi(archive)),
        )
    ]


def archive_rows(
    db: Database,
    table: str = "Order",
    archive: str = "OrderArchive",
    column: str = "createdAt",
    older_than: str = "2 years",
) -> str:
    """Move the old rows into the archive table in one transaction; how many moved."""
    columns = shared_columns(db, table, archive)
    if column not in columns:
        raise ValueError(f"{archive} lacks columns of {table}")
    moved = db.execute(archive_statement(columns, table, archive, column), (older_than,))
    return f"moved {moved} row(s) from {table} to {archive}"


def check_archive_candidates(
    db: Database, table: str = "Order", column: str = "createdAt", older_than: str = "2 years"
) -> dict[str, Any]:
    """The runbook's monthly "Archive Old Data": count and size of the candidates (info), and what a
    DELETE would do to the tables referencing it. Returns {candidates, references}."""
    check = "archive candidates"
    cand = guarded(check, "archive candidates", lambda: archive_candidates(db, table, column, older_than))
    refs = guarded(check, "foreign keys", lambda: referencing_tables(db, table))
    if cand is None:
        return {"candidates": cand, "references": refs}
    row = cand.to_dict("records")[0]
    findings.add(
        "info",
        f"{row['rows']} {_qi(table)} row(s) older than {older_than} ({row['size']})",
        f"Archive candidates for the monthly maintenance (oldest {row['oldest']}).",
        evidence=row,
        check=check,
    )
    return {"candidates": cand, "references": refs}


def offer_archive(
    found: dict[str, Any],
    database_url_env: str,
    table: str = "Order",
    archive: str = "OrderArchive",
    column: str = "createdAt",
    older_than: str = "2 years",
    allow_cascade: bool = False,
):
    """Gated action: move the candidates to ``archive`` and delete them, in one transaction.

    When a foreign key deletes referencing rows with ON DELETE CASCADE those rows would be lost (they are
    not archived): the action is then only offered with ``allow_cascade`` and says so in its plan.
    """
    from opsnb.actions import action
    from opsnb.postgres.session import connect

    cand, refs = found.get("candidates"), found.get("references")
    if cand is None or not len(cand) or int(cand.iloc[0]["rows"]) == 0:
        print("Nothing to archive.")
        return None
    n = int(cand.iloc[0]["rows"])
    cascades = [] if refs is None else refs[refs["on_delete"] == "cascade"]["referencing_table"].tolist()
    plan = [
        f"WITH moved AS (DELETE FROM {_qi(table)} WHERE {_qi(column)} < now() - interval '{older_than}' RETURNING …) "
        f"INSERT INTO {_qi(archive)} (…) SELECT … FROM moved  -- {n} row(s), one transaction",
    ]
    if cascades:
        plan.append(
            f"ON DELETE CASCADE also deletes the matching rows of {', '.join(cascades)} (NOT archived)"
        )
        if not allow_cascade:
            findings.add(
                "P3",
                f"Archive of {_qi(table)} not offered: it would cascade to {', '.join(cascades)}",
                "Archive those rows first (or change the foreign key), or rerun with archive_allow_cascade=True "
                "to accept losing them.",
                evidence=plan,
                check="archive candidates",
            )
            print("\n".join(["Not offered:"] + plan))
            return None
    restricts = (
        []
        if refs is None
        else refs[refs["on_delete"].isin(["restrict", "no action"])]["referencing_table"].tolist()
    )
    if restricts:
        plan.append(f"fails and changes nothing if rows of {', '.join(restricts)} still reference them")

    def apply():
        with connect(database_url_env, read_only=False, statement_timeout_ms=600_000) as rw:
            return archive_rows(rw, table, archive, column, older_than)

    return action(f"Archive {_qi(table)} rows older than {older_than} to {_qi(archive)}", plan, apply)
