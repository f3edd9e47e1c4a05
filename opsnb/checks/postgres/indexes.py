"""Indexes: missing (sequential scans on large tables), unused, duplicate, invalid, their sizes.

Missing-index suspicion follows PgHero: a table of >= 10 000 rows whose scans use an index less than 95 %
of the time. Table counters are cumulative, so a suspicion is confirmed (or cleared) by the generic plan
of the most expensive statements that read the table: a Seq Scan whose filter uses a column no index
leads with is what gets reported, with a ``CREATE INDEX CONCURRENTLY`` suggestion as a gated action.
Once the index exists the plan changes and the finding goes away, whatever the old counters say.
"""

from __future__ import annotations

import re
from typing import Any

from psycopg import sql

from opsnb.checks import findings
from opsnb.checks.postgres import queries
from opsnb.checks.postgres.session import Database, DatabaseError
from opsnb.checks.postgres.stats import guarded, shown

# the oid of a relation from two parameters (schema, name): a catalog lookup, names never parsed as SQL
_RELID = sql.SQL(
    "(SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = %s AND c.relname = %s)"
)


def seq_scan_tables(db: Database, min_rows: int = 10_000, max_index_pct: float = 95, min_seq_scans: int = 1):
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


def statements_on_table(db: Database, total_col: str, mean_col: str, table: str, limit: int = 5):
    """The read statements of this database that name ``table``, most total time first."""
    if total_col not in ("total_exec_time", "total_time") or mean_col not in ("mean_exec_time", "mean_time"):
        raise ValueError("unexpected time columns")
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
    ).format(total=queries.time_column(total_col), mean=queries.time_column(mean_col))
    # recorded statements name the table quoted ("Order") or, when it is all lower case, maybe bare
    quoted = shown(sql.Identifier(table))
    return db.query(
        statement, {"quoted": quoted, "plain": table == table.lower(), "word": word, "limit": limit}
    )


def table_indexes(db: Database, schema: str, table: str):
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
    ``shown()`` of the statement is the text a plan or finding quotes."""
    name = f"{table}_{column}_idx"[:63]
    statement = sql.SQL("CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {table} ({column})").format(
        name=sql.Identifier(name), table=sql.Identifier(schema, table), column=sql.Identifier(column)
    )
    return name, statement


def diagnose_table(
    db: Database,
    statements: dict[str, Any],
    server_version_num: int,
    schema: str,
    table: str,
    explain_top: int = 5,
) -> dict[str, Any]:
    """EXPLAIN (generic plan, no ANALYZE) the costliest statements on ``table``; the first Seq Scan whose
    filter column has no index leading with it. Keys: verdict, column, statement, plan, suggested_sql."""
    out: dict[str, Any] = {
        "verdict": "no statement statistics",
        "column": None,
        "statement": None,
        "plan": None,
        "suggested_sql": None,
        "index_name": None,
    }
    if not statements.get("usable"):
        return out
    candidates = statements_on_table(db, statements["total"], statements["mean"], table, limit=explain_top)
    if not len(candidates):
        out["verdict"] = "no recorded statement reads it"
        return out
    indexes = table_indexes(db, schema, table)
    leading = {
        cols[0]
        for cols, valid in zip(indexes["columns"], indexes["valid"], strict=True)
        if valid and len(cols)
    }
    columns = table_columns(db, schema, table)
    out["verdict"] = "its costliest statements use an index now"
    for stmt in candidates.to_dict("records"):
        try:
            plan = queries.explain_generic(db, stmt["query"], server_version_num)
        except (ValueError, DatabaseError) as exc:
            out.setdefault("explain_errors", []).append(f"{stmt['queryid']}: {exc}")
            continue
        for node in queries.plan_nodes(plan):
            if node.get("Node Type") != "Seq Scan" or node.get("Relation Name") != table:
                continue
            unindexed = [c for c in filter_columns(node.get("Filter", ""), columns) if c not in leading]
            if unindexed:
                name, statement = suggested_index(schema, table, unindexed[0])
                out.update(
                    verdict="missing index",
                    column=unindexed[0],
                    statement=stmt,
                    plan=queries.plan_text(plan),
                    suggested_sql=shown(statement),  # for people; offer_indexes() builds it again to run
                    index_name=name,
                )
                return out
        if out["plan"] is None:
            out["plan"] = queries.plan_text(plan)
            out["statement"] = stmt
    return out


def check_missing_indexes(
    db: Database,
    statements: dict[str, Any],
    server_version_num: int,
    min_rows: int = 10_000,
    max_index_pct: float = 95,
    min_seq_scans: int = 1,
    explain_top: int = 5,
):
    """P2 per table whose costliest statement still plans a Seq Scan filtering on an unindexed column.

    ``min_rows`` 10 000 and ``max_index_pct`` 95 are PgHero's missing-index thresholds. Without
    pg_stat_statements a suspicious table is a P3 (the counters alone cannot say which column).
    Returns one row per suspicious table with the diagnosis (column, statement, plan, suggested SQL).
    """
    import pandas as pd

    check = "missing indexes"
    suspects = guarded(
        check,
        "sequential scans per table",
        lambda: seq_scan_tables(db, min_rows, max_index_pct, min_seq_scans),
    )
    if suspects is None:
        return pd.DataFrame()
    rows = []
    for t in suspects.to_dict("records"):
        try:
            d = diagnose_table(db, statements, server_version_num, t["schema"], t["table"], explain_top)
        except DatabaseError as exc:
            d = {"verdict": f"could not EXPLAIN: {exc}"}
        rows.append({**t, **d})
        where = shown(
            sql.Identifier(t["table"], d["column"]) if d.get("column") else sql.Identifier(t["table"])
        )
        stats = (
            f"{t['seq_scan']} sequential scans vs {t['idx_scan']} index scans ({t['index_used_pct']} % indexed) "
            f"on ~{t['estimated_rows']} rows"
        )
        if d.get("verdict") == "missing index":
            stmt = d["statement"]
            findings.add(
                "P2",
                f"Missing index on {where}",
                f"{stats}. The costliest statement on it ({stmt['calls']} calls, {stmt['mean_ms']} ms mean) plans a "
                f"Seq Scan filtering on {shown(sql.Identifier(d['column']))}: {queries._short(stmt['query'])}. "
                f"Suggested: {d['suggested_sql']}",
                evidence={"statement": stmt["query"], "plan": d["plan"], "suggested_sql": d["suggested_sql"]},
                check=check,
            )
        elif d.get("verdict") == "no statement statistics":
            findings.add(
                "P3",
                f"{shown(sql.Identifier(t['table']))} looks like it misses an index",
                f"{stats}. Enable pg_stat_statements to see which statement and column.",
                evidence=t,
                check=check,
            )
        else:
            findings.ok(
                f"{shown(sql.Identifier(t['table']))}: sequential scans in its history, but {d.get('verdict')}",
                stats + " (the counters are cumulative since the last statistics reset).",
                check=check,
            )
    if not rows:
        findings.ok(f"No table of >= {min_rows} rows is mostly read by sequential scans", check=check)
    return pd.DataFrame(rows)


def show_plan(diagnosis) -> str:
    """The EXPLAIN of the top offending statement (text), printed for the notebook; '' when there is none."""
    if diagnosis is None or not len(diagnosis) or "plan" not in diagnosis:
        print("No statement to explain.")
        return ""
    ranked = diagnosis.assign(_missing=diagnosis["verdict"].eq("missing index")).sort_values(
        "_missing", ascending=False
    )
    row = ranked.iloc[0]
    if not row.get("plan"):
        print(f"No plan for {row['table']}: {row['verdict']}.")
        return ""
    stmt = row["statement"]
    text = f"-- {row['table']}: {row['verdict']}\n-- statement ({stmt['calls']} calls, {stmt['mean_ms']} ms mean):\n"
    text += "-- " + " ".join(str(stmt["query"]).split()) + "\n" + row["plan"]
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


def offer_indexes(diagnosis, writer_database_url_env: str, timeout_s: int = 600) -> list[dict[str, Any]]:
    """A gated action per suggested index: CREATE INDEX CONCURRENTLY on a separate read-write session."""
    from opsnb.checks.actions import action
    from opsnb.checks.postgres.session import connect

    entries: list[dict[str, Any]] = []
    if diagnosis is None or not len(diagnosis) or "suggested_sql" not in diagnosis:
        print("No index to suggest.")
        return entries
    for row in diagnosis[diagnosis["suggested_sql"].notna()].to_dict("records"):
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


def index_sizes(db: Database, limit: int = 20):
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


def unused_indexes(db: Database):
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


def check_unused_indexes(db: Database, min_size_mb: float = 10):
    """P3 per unused index of >= ``min_size_mb`` MB (PgHero: never scanned and >= 10 MB)."""
    check = "unused indexes"
    df = guarded(check, "unused indexes", lambda: unused_indexes(db))
    if df is None:
        return df
    big = df[df["size_bytes"] >= min_size_mb * 1024 * 1024]
    for r in big.to_dict("records"):
        findings.add(
            "P3",
            f"Unused index {r['index']} ({r['size']})",
            f"Never scanned since the statistics reset; it slows every write to {r['table']}. "
            "Check replicas and the reset time, then DROP INDEX CONCURRENTLY "
            + shown(sql.Identifier(r["schema"], r["index"]))
            + ".",
            evidence=r,
            check=check,
        )
    if not len(big):
        findings.ok(
            f"No unused index of >= {min_size_mb:g} MB ({len(df)} smaller ones never scanned)", check=check
        )
    return df


def duplicate_indexes(db: Database):
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


def check_duplicate_indexes(db: Database):
    """P3 per index made redundant by another one."""
    check = "duplicate indexes"
    df = guarded(check, "duplicate indexes", lambda: duplicate_indexes(db))
    if df is None:
        return df
    for r in df.to_dict("records"):
        findings.add(
            "P3",
            f"Duplicate index {r['index']} (covered by {r['covered_by']})",
            f"{r['definition']} is a leading part of {r['covering_definition']}; dropping it frees {r['size']}.",
            evidence=r,
            check=check,
        )
    if not len(df):
        findings.ok("No duplicate indexes", check=check)
    return df


def invalid_indexes(db: Database):
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


def check_invalid_indexes(db: Database):
    """P3 per invalid index (drop it and build it again CONCURRENTLY)."""
    check = "invalid indexes"
    df = guarded(check, "invalid indexes", lambda: invalid_indexes(db))
    if df is None:
        return df
    for r in df.to_dict("records"):
        findings.add(
            "P3",
            f"Invalid index {r['index']}",
            f"A failed CREATE INDEX CONCURRENTLY left it: it costs writes and serves no read. "
            f"DROP INDEX CONCURRENTLY {r['index']}; then create it again.",
            evidence=r,
            check=check,
        )
    if not len(df):
        findings.ok("No invalid indexes", check=check)
    return df
