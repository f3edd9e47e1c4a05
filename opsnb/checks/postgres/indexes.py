"""Indexes: missing (sequential scans on large tables), unused, duplicate, invalid, their sizes.

Missing-index suspicion follows PgHero: a table of >= 10 000 rows whose scans use an index less than 95 %
of the time. Table counters are cumulative, so a suspicion is confirmed (or cleared) by the generic plan
of the most expensive statements that read the table: a Seq Scan whose filter uses a column no index
leads with is what gets reported, with a ``CREATE INDEX CONCURRENTLY`` suggestion as a gated action.
Once the index exists the plan changes and the conclusion clears, whatever the old counters say. A
suspicion that cannot be confirmed either way (no statement statistics, hidden statement texts, an
EXPLAIN that fails) is ``inconclusive``, never cleared by default.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from psycopg import sql

from opsnb.checks.findings import check, conclude
from opsnb.checks.postgres import explain
from opsnb.checks.postgres.names import shown
from opsnb.checks.postgres.roles import STATS_HINT
from opsnb.checks.postgres.session import Database, DatabaseError
from opsnb.checks.postgres.statements import ENABLE_HINT, StatementStats, time_column

if TYPE_CHECKING:
    import pandas as pd

# the oid of a relation from two parameters (schema, name): a catalog lookup, names never parsed as SQL
_RELID = sql.SQL(
    "(SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = %s AND c.relname = %s)"
)

# what the plans of a suspect table's costliest statements say
MISSING = "missing index"
NOT_NEEDED = "no unindexed filter"
UNCONFIRMED = "could not confirm"


def seq_scan_tables(
    db: Database, min_rows: int = 10_000, max_index_pct: float = 95, min_seq_scans: int = 1
) -> pd.DataFrame:
    """Tables of >= ``min_rows`` rows where an index served < ``max_index_pct`` % of scans (PgHero's rule)."""
    return db.query(
        """
        SELECT s.schemaname AS schema, s.relname AS table, s.seq_scan, coalesce(s.idx_scan, 0) AS idx_scan,
               round(100.0 * coalesce(s.idx_scan, 0) / nullif(s.seq_scan + coalesce(s.idx_scan, 0), 0), 1)::float8
                 AS index_used_pct,
               greatest(s.n_live_tup, c.reltuples::bigint) AS estimated_rows, s.seq_tup_read
        FROM pg_stat_user_tables s
        JOIN pg_class c ON c.oid = s.relid
        WHERE greatest(s.n_live_tup, c.reltuples::bigint) >= %(min_rows)s AND s.seq_scan >= %(min_seq)s
          AND 100.0 * coalesce(s.idx_scan, 0) / (s.seq_scan + coalesce(s.idx_scan, 0)) < %(pct)s
        ORDER BY s.seq_tup_read DESC, s.relname
        """,
        {"min_rows": min_rows, "min_seq": max(min_seq_scans, 1), "pct": max_index_pct},
    )


def statements_on_table(
    db: Database, total_col: str, mean_col: str, table: str, limit: int = 5
) -> pd.DataFrame:
    """The read statements of this database that name ``table``, most total time first."""
    total, mean = time_column(total_col), time_column(mean_col)  # ValueError before any SQL runs
    word = r"(^|[^A-Za-z0-9_$\"])" + re.escape(table) + r"($|[^A-Za-z0-9_$\"])"
    statement = sql.SQL(
        """
        SELECT queryid, query, calls, round({mean}::numeric, 2)::float8 AS mean_ms,
               round({total}::numeric, 2)::float8 AS total_ms
        FROM pg_stat_statements
        WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND query ~* '^\\s*(select|with)\\M'
          AND (strpos(query, %(quoted)s) > 0 OR (%(plain)s AND query ~* %(word)s))
        ORDER BY {total} DESC
        LIMIT %(limit)s
        """
    ).format(total=total, mean=mean)
    # recorded statements name the table quoted ("Order") or, when it is all lower case, maybe bare
    quoted = shown(sql.Identifier(table))
    return db.query(
        statement, {"quoted": quoted, "plain": table == table.lower(), "word": word, "limit": limit}
    )


def table_indexes(db: Database, schema: str, table: str) -> pd.DataFrame:
    """Indexes of one table: name, key columns in order, valid, unique, definition."""
    statement = sql.SQL(
        """
        SELECT ic.relname AS index,
               array(SELECT coalesce(a.attname, '(expression)')
                     FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
                     LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                     ORDER BY k.n) AS columns,
               i.indisvalid AS valid, i.indisunique AS is_unique, pg_get_indexdef(i.indexrelid) AS definition
        FROM pg_index i
        JOIN pg_class ic ON ic.oid = i.indexrelid
        WHERE i.indrelid = {relid}
        ORDER BY ic.relname
        """
    ).format(relid=_RELID)
    return db.query(statement, (schema, table))


def table_columns(db: Database, schema: str, table: str) -> list[str]:
    """Column names of one table, in order."""
    return [
        r["attname"]
        for r in db.rows(
            sql.SQL(
                "SELECT attname FROM pg_attribute WHERE attrelid = {relid} AND attnum > 0 AND NOT attisdropped "
                "ORDER BY attnum"
            ).format(relid=_RELID),
            (schema, table),
        )
    ]


def filter_columns(condition: str, columns: list[str]) -> list[str]:
    """Columns of the table that a plan's Filter compares, in order of appearance (first = best key)."""
    found: list[tuple[int, str]] = []
    for col in columns:
        # EXPLAIN quotes a name unless it is a plain lower-case identifier
        pattern = (
            r'(?<![\w$."])"?' + re.escape(col) + r'"?(?![\w$])'
            if re.fullmatch(r"[a-z_][a-z0-9_$]*", col)
            else re.escape(shown(sql.Identifier(col)))
        )
        m = re.search(pattern, condition)
        if m:
            found.append((m.start(), col))
    return [c for _, c in sorted(found)]


def suggested_index(schema: str, table: str, column: str) -> tuple[str, sql.Composed]:
    """(index name, CREATE INDEX CONCURRENTLY statement); the name follows Prisma's <Table>_<column>_idx.
    ``shown()`` of the statement is the text a plan or conclusion quotes."""
    name = f"{table}_{column}_idx"[:63]
    statement = sql.SQL("CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {table} ({column})").format(
        name=sql.Identifier(name), table=sql.Identifier(schema, table), column=sql.Identifier(column)
    )
    return name, statement


@dataclass
class Diagnosis:
    """What the generic plans of a suspect table's costliest statements say (one row of the evidence)."""

    verdict: str  # MISSING | NOT_NEEDED | UNCONFIRMED
    reason: str
    column: str | None = None
    index_name: str | None = None
    suggested_sql: str | None = None  # for people; offer_indexes() builds the statement again to run it
    queryid: int | None = None  # the statement whose plan is shown
    query: str | None = None
    calls: int | None = None
    mean_ms: float | None = None
    plan: str | None = None


def diagnose_table(
    db: Database, seen: StatementStats, schema: str, table: str, explain_top: int = 5
) -> Diagnosis:
    """EXPLAIN (generic plan, no ANALYZE) the costliest statements on ``table``: the first Seq Scan whose
    filter column has no index leading with it is a missing index; any statement that could not be
    explained (or read) leaves the table unconfirmed."""
    if not seen.usable:
        return Diagnosis(UNCONFIRMED, f"{seen.why} — {seen.hint}")
    candidates = statements_on_table(db, seen.total, seen.mean, table, limit=explain_top)
    hidden = (
        f"{seen.hidden_texts} statement text(s) of other roles are hidden from this role — {STATS_HINT}"
        if seen.hidden_texts
        else ""
    )
    if not len(candidates):
        return Diagnosis(
            UNCONFIRMED, hidden or "no statement recorded since pg_stat_statements' last reset reads it"
        )
    indexes = table_indexes(db, schema, table)
    leading = {
        cols[0]
        for cols, valid in zip(indexes["columns"], indexes["valid"], strict=True)
        if valid and len(cols)
    }
    columns = table_columns(db, schema, table)
    failed: list[str] = []
    shown_plan: Diagnosis | None = None
    for stmt in candidates.to_dict("records"):
        about = {k: stmt[k] for k in ("queryid", "query", "calls", "mean_ms")}
        try:
            plan = explain.explain_generic(db, stmt["query"])
        except (ValueError, DatabaseError) as exc:
            failed.append(f"queryid {stmt['queryid']}: {exc}")
            continue
        for node in explain.plan_nodes(plan):
            if node.get("Node Type") != "Seq Scan" or node.get("Relation Name") != table:
                continue
            unindexed = [c for c in filter_columns(node.get("Filter", ""), columns) if c not in leading]
            if unindexed:
                name, statement = suggested_index(schema, table, unindexed[0])
                return Diagnosis(
                    MISSING,
                    f"its costliest statement plans a Seq Scan filtering on {shown(sql.Identifier(unindexed[0]))}",
                    column=unindexed[0],
                    index_name=name,
                    suggested_sql=shown(statement),
                    plan=explain.plan_text(plan),
                    **about,
                )
        if shown_plan is None:
            shown_plan = Diagnosis(NOT_NEEDED, "", plan=explain.plan_text(plan), **about)
    if failed:
        why = f"EXPLAIN failed for {len(failed)} of its {len(candidates)} costliest statement(s): {'; '.join(failed)}"
        return Diagnosis(UNCONFIRMED, why, **_plan_of(shown_plan))
    if hidden:
        return Diagnosis(UNCONFIRMED, hidden, **_plan_of(shown_plan))
    return Diagnosis(
        NOT_NEEDED,
        f"none of its {len(candidates)} costliest statement(s) plans a Seq Scan filtering on an unindexed column",
        **_plan_of(shown_plan),
    )


def _plan_of(diagnosis: Diagnosis | None) -> dict[str, Any]:
    """The statement and plan fields of ``diagnosis`` (to show a plan that was read alongside a verdict)."""
    if diagnosis is None:
        return {}
    keep = ("queryid", "query", "calls", "mean_ms", "plan")
    return {k: v for k, v in asdict(diagnosis).items() if k in keep}


@check("postgres.missing-indexes", hint=ENABLE_HINT)
def check_missing_indexes(
    db: Database,
    seen: StatementStats,
    min_rows: int = 10_000,
    max_index_pct: float = 95,
    min_seq_scans: int = 10,
    explain_top: int = 5,
) -> pd.DataFrame:
    """P2 when a suspect table's costliest statement still plans a Seq Scan filtering on an unindexed column.

    ``min_rows`` 10 000 and ``max_index_pct`` 95 are PgHero's missing-index thresholds. One row per suspect
    table with its diagnosis (verdict, reason, column, suggested SQL, statement, plan). A suspect that
    cannot be confirmed either way makes the conclusion inconclusive unless another one is confirmed.

    A table with fewer than ``min_seq_scans`` sequential scans (e.g. the two a fresh ``pgbench -i`` makes)
    is no sample: its counters say nothing about its indexes yet. When only such tables are suspect the
    sample is too small to judge (inconclusive), never a suspicion nor a pass.
    """
    import pandas as pd

    scanned = seq_scan_tables(db, min_rows, max_index_pct)
    suspects = scanned[scanned["seq_scan"] >= min_seq_scans]
    too_few = scanned[scanned["seq_scan"] < min_seq_scans]
    if not len(suspects) and len(too_few):
        return conclude(
            "inconclusive",
            "Sample too small to tell whether "
            + ", ".join(shown(sql.Identifier(t)) for t in too_few["table"])
            + " misses an index",
            detail="; ".join(_scans(r) for r in too_few.to_dict("records"))
            + f": fewer than {min_seq_scans} sequential scans since the statistics reset (a freshly loaded "
            "table). Run it again once the application has read these tables.",
            evidence=too_few,
            essential=False,  # nothing is hidden from us: there is just nothing to judge yet
        )
    if not len(suspects):
        return conclude(
            "pass", f"No table of >= {min_rows} rows is mostly read by sequential scans", evidence=suspects
        )
    rows = [
        {**t, **asdict(diagnose_table(db, seen, t["schema"], t["table"], explain_top))}
        for t in suspects.to_dict("records")
    ]
    found = pd.DataFrame(rows)
    missing = found[found["verdict"] == MISSING].to_dict("records")
    unconfirmed = found[found["verdict"] == UNCONFIRMED].to_dict("records")
    others = "".join(f" Not confirmed for {_scans(r)}: {r['reason']}." for r in unconfirmed)
    if missing:
        where = ", ".join(shown(sql.Identifier(r["table"], r["column"])) for r in missing)
        detail = " ".join(
            f"{_scans(r)}; the costliest statement on it ({int(r['calls'])} calls, {r['mean_ms']} ms mean) "
            f"plans a Seq Scan filtering on {shown(sql.Identifier(r['column']))}: "
            f"{' '.join(str(r['query']).split())[:160]}. Suggested: {r['suggested_sql']}."
            for r in missing
        )
        title = f"Missing index{'es' if len(missing) > 1 else ''} on {where}"
        return conclude("warn", title, severity="P2", detail=detail + others, evidence=found)
    if unconfirmed:
        return conclude(
            "inconclusive",
            f"Could not confirm whether {', '.join(shown(sql.Identifier(r['table'])) for r in unconfirmed)} "
            "misses an index",
            detail=others.strip(),
            evidence=found,
        )
    return conclude(
        "pass",
        "No missing index: the costliest statements on "
        + ", ".join(shown(sql.Identifier(t)) for t in found["table"])
        + " use no unindexed sequential scan",
        detail="; ".join(_scans(r) for r in rows)
        + " (the counters are cumulative since the last statistics reset; the plans are current).",
        evidence=found,
    )


def _scans(row: dict[str, Any]) -> str:
    """A suspect table and what its counters say, for a conclusion's detail."""
    return (
        f"{shown(sql.Identifier(row['table']))} ({row['seq_scan']} sequential vs {row['idx_scan']} index scans, "
        f"{row['index_used_pct']} % indexed, ~{row['estimated_rows']} rows)"
    )


def show_plan(diagnosis: pd.DataFrame | None) -> str:
    """The EXPLAIN of the top offending statement (text), printed for the notebook; '' when there is none."""
    if diagnosis is None or not len(diagnosis) or "plan" not in diagnosis:
        print("No statement to explain.")
        return ""
    ranked = diagnosis.assign(_missing=diagnosis["verdict"].eq(MISSING)).sort_values(
        "_missing", ascending=False
    )
    row = ranked.iloc[0]
    if not isinstance(row["plan"], str) or not row["plan"]:
        print(f"No plan for {row['table']}: {row['verdict']} ({row['reason']}).")
        return ""
    text = f"-- {row['table']}: {row['verdict']}\n-- statement ({int(row['calls'])} calls, {row['mean_ms']} ms mean):\n"
    text += "-- " + " ".join(str(row["query"]).split()) + "\n" + row["plan"]
    print(text)
    return text


def create_index(db: Database, statement: sql.Composable, schema: str, index_name: str) -> str:
    """Run a CREATE INDEX CONCURRENTLY (from suggested_index()) on a read-write autocommit session
    (CONCURRENTLY refuses to run in a transaction block). When it fails it leaves an INVALID index
    behind: that one is dropped again."""
    if not isinstance(statement, sql.Composable):
        raise TypeError("create_index() runs a psycopg.sql statement (see suggested_index()), not text")
    text = statement.as_string(db.conn)
    if not re.match(r"\s*CREATE\s+(UNIQUE\s+)?INDEX\s+CONCURRENTLY\b", text, re.IGNORECASE):
        raise ValueError("only CREATE INDEX CONCURRENTLY is applied")
    try:
        db.execute(statement)
    except DatabaseError:
        invalid = db.scalar(
            sql.SQL("SELECT NOT i.indisvalid FROM pg_index i WHERE i.indexrelid = {relid}").format(
                relid=_RELID
            ),
            (schema, index_name),
        )
        if invalid:
            db.execute(
                sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(schema, index_name))
            )
        raise
    return f"created {index_name}"


def offer_indexes(
    diagnosis: pd.DataFrame | None, writer_database_url_env: str, timeout_s: int = 600
) -> list[dict[str, Any]]:
    """A gated action per suggested index: CREATE INDEX CONCURRENTLY on a separate read-write session."""
    from opsnb.checks.actions import action
    from opsnb.checks.postgres.session import connect

    entries: list[dict[str, Any]] = []
    if diagnosis is None or not len(diagnosis) or "verdict" not in diagnosis:
        print("No index to suggest.")
        return entries
    for row in diagnosis[diagnosis["verdict"] == MISSING].to_dict("records"):
        # built again from the catalog names the diagnosis found: the text in the table is only for reading
        name, statement = suggested_index(row["schema"], row["table"], row["column"])
        schema = row["schema"]
        plan = [
            shown(statement),
            "CONCURRENTLY: reads and writes continue while it builds; it waits for transactions open on the "
            "table (terminate idle-in-transaction sessions first) and leaves no invalid index if it fails",
            f"runs on its own read-write autocommit session as ${writer_database_url_env}, timeout {timeout_s} s",
        ]

        def apply(statement=statement, name=name, schema=schema):
            with connect(
                writer_database_url_env,
                read_only=False,
                statement_timeout_ms=timeout_s * 1000,
                lock_timeout_ms=timeout_s * 1000,
            ) as rw:
                return create_index(rw, statement, schema, name)

        entries.append(action(f"Create index {name}", plan, apply))
    if not entries:
        print("No index to suggest.")
    return entries


# --- db-maintenance: sizes, unused, duplicate, invalid --------------------------------------------------


def index_sizes(db: Database, limit: int = 20) -> pd.DataFrame:
    """The largest indexes with their scans."""
    return db.query(
        """
        SELECT s.schemaname AS schema, s.relname AS table, s.indexrelname AS index,
               pg_relation_size(s.indexrelid) AS size_bytes, pg_size_pretty(pg_relation_size(s.indexrelid)) AS size,
               s.idx_scan
        FROM pg_stat_user_indexes s
        ORDER BY pg_relation_size(s.indexrelid) DESC, s.indexrelname
        LIMIT %s
        """,
        (limit,),
    )


def unused_indexes(db: Database) -> pd.DataFrame:
    """Indexes never scanned since the statistics reset that enforce nothing (not unique, not primary)."""
    return db.query(
        """
        SELECT s.schemaname AS schema, s.relname AS table, s.indexrelname AS index,
               pg_relation_size(s.indexrelid) AS size_bytes, pg_size_pretty(pg_relation_size(s.indexrelid)) AS size,
               s.idx_scan
        FROM pg_stat_user_indexes s
        JOIN pg_index i ON i.indexrelid = s.indexrelid
        WHERE s.idx_scan = 0 AND NOT i.indisunique AND NOT i.indisprimary
        ORDER BY pg_relation_size(s.indexrelid) DESC, s.indexrelname
        """
    )


@check("postgres.unused-indexes", essential=False)
def check_unused_indexes(db: Database, min_size_mb: float = 10) -> pd.DataFrame:
    """P3 listing the unused indexes of >= ``min_size_mb`` MB (PgHero: never scanned and >= 10 MB)."""
    unused = unused_indexes(db)
    big = unused[unused["size_bytes"] >= min_size_mb * 1024 * 1024]
    if not len(big):
        return conclude(
            "pass",
            f"No unused index of >= {min_size_mb:g} MB",
            detail=f"{len(unused)} smaller one(s) never scanned since the statistics reset.",
            evidence=unused,
        )
    drops = "; ".join(
        f"DROP INDEX CONCURRENTLY {shown(sql.Identifier(r['schema'], r['index']))}"
        for r in big.to_dict("records")
    )
    return conclude(
        "warn",
        f"{len(big)} unused index(es) of >= {min_size_mb:g} MB: "
        + ", ".join(f"{r['index']} ({r['size']})" for r in big.to_dict("records")),
        severity="P3",
        detail="Never scanned since the statistics reset, they slow every write to their tables. Check "
        f"replicas and the reset time, then: {drops}.",
        evidence=big,
    )


def duplicate_indexes(db: Database) -> pd.DataFrame:
    """Indexes whose key columns (and operator classes) are a leading part of another index on the table."""
    return db.query(
        """
        WITH ix AS (
            SELECT i.indexrelid, i.indrelid, i.indisunique, i.indisprimary, c.relam,
                   string_to_array(i.indkey::text, ' ')::int[] AS keys,
                   string_to_array(i.indclass::text, ' ')::oid[] AS classes
            FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
            WHERE i.indpred IS NULL AND i.indexprs IS NULL AND i.indisvalid
              AND i.indrelid IN (SELECT relid FROM pg_stat_user_tables)
        )
        SELECT a.indrelid::regclass::text AS table, a.indexrelid::regclass::text AS index,
               b.indexrelid::regclass::text AS covered_by,
               pg_size_pretty(pg_relation_size(a.indexrelid)) AS size,
               pg_get_indexdef(a.indexrelid) AS definition, pg_get_indexdef(b.indexrelid) AS covering_definition
        FROM ix a
        JOIN ix b ON b.indrelid = a.indrelid AND b.indexrelid <> a.indexrelid AND b.relam = a.relam
        WHERE NOT a.indisprimary
          AND a.keys = b.keys[1:cardinality(a.keys)] AND a.classes = b.classes[1:cardinality(a.classes)]
          AND (NOT a.indisunique OR (b.indisunique AND a.keys = b.keys))
          AND (a.keys <> b.keys OR a.indisunique < b.indisunique OR b.indisprimary
               OR (a.indisunique = b.indisunique AND a.indexrelid > b.indexrelid))
        ORDER BY 1, 2
        """
    )


@check("postgres.duplicate-indexes", essential=False)
def check_duplicate_indexes(db: Database) -> pd.DataFrame:
    """P3 listing the indexes made redundant by another one."""
    dup = duplicate_indexes(db)
    if not len(dup):
        return conclude("pass", "No index is covered by another one", evidence=dup)
    return conclude(
        "warn",
        f"{len(dup)} duplicate index(es): "
        + ", ".join(f"{r['index']} (covered by {r['covered_by']})" for r in dup.to_dict("records")),
        severity="P3",
        detail=" ".join(
            f"{r['definition']} is a leading part of {r['covering_definition']}; dropping it frees {r['size']}."
            for r in dup.to_dict("records")
        ),
        evidence=dup,
    )


def invalid_indexes(db: Database) -> pd.DataFrame:
    """Indexes left INVALID (a failed CREATE INDEX CONCURRENTLY): maintained on writes, never used."""
    return db.query(
        """
        SELECT i.indrelid::regclass::text AS table, i.indexrelid::regclass::text AS index,
               pg_size_pretty(pg_relation_size(i.indexrelid)) AS size, pg_get_indexdef(i.indexrelid) AS definition
        FROM pg_index i
        WHERE NOT i.indisvalid AND i.indrelid IN (SELECT relid FROM pg_stat_user_tables)
        ORDER BY 1, 2
        """
    )


@check("postgres.invalid-indexes", essential=False)
def check_invalid_indexes(db: Database) -> pd.DataFrame:
    """P3 listing the invalid indexes (drop each and build it again CONCURRENTLY)."""
    invalid = invalid_indexes(db)
    if not len(invalid):
        return conclude("pass", "No index is invalid", evidence=invalid)
    return conclude(
        "warn",
        f"{len(invalid)} invalid index(es): {', '.join(invalid['index'])}",
        severity="P3",
        detail="A failed CREATE INDEX CONCURRENTLY left them: they cost writes and serve no read. "
        + " ".join(f"DROP INDEX CONCURRENTLY {i};" for i in invalid["index"])
        + " Then create them again.",
        evidence=invalid,
    )
