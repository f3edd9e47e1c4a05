"""Unit tests of opsnb.checks.postgres.indexes on a real PostgreSQL: missing indexes confirmed (or not) by
EXPLAIN, created CONCURRENTLY through the gated action; unused, duplicate and invalid indexes."""

from __future__ import annotations

import psycopg
import pytest
from checks.pg_shop import concluded
from psycopg import sql

from opsnb.checks import findings
from opsnb.checks.postgres import connect, indexes, statements
from opsnb.checks.postgres.statements import StatementStats


def _fresh_stats(shop) -> None:
    """No index on "Order"."userId" (an earlier test may have made it); forget the table counters and the
    recorded statements of the earlier tests."""
    with psycopg.connect(shop.admin, autocommit=True) as conn:
        conn.execute('DROP INDEX IF EXISTS "Order_userId_idx"')
        conn.execute("SELECT pg_stat_statements_reset()")
        conn.execute("SELECT pg_stat_reset()")


def _user_orders_workload(url: str, calls: int = 60) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for n in range(calls):
            conn.execute(
                'SELECT "id", "status" FROM "Order" WHERE "userId" = %s ORDER BY "createdAt" DESC', (f"u{n}",)
            )


@pytest.fixture
def watcher(role_env) -> str:
    """The reader as the README sets it up: reads every table and every session and statement."""
    return role_env("unit_watch", "pg_read_all_data", "pg_monitor")


def test_filter_columns_and_suggested_index():
    cols = ["id", "userId", "status", "createdAt"]
    assert indexes.filter_columns('(("status" = $2) AND ("userId" = $1))', cols) == ["status", "userId"]
    assert indexes.filter_columns("(status = 'x'::text)", cols) == ["status"]
    assert indexes.filter_columns('("createdAt" < (now() - $1::interval))', cols) == ["createdAt"]
    assert indexes.filter_columns('("userIdx" = $1)', cols) == []
    assert indexes.filter_columns('("we;ird ""col""" = $1)', ['we;ird "col"', "id"]) == ['we;ird "col"']
    name, statement = indexes.suggested_index("public", "Order", "userId")
    assert name == "Order_userId_idx"
    assert isinstance(statement, sql.Composed)
    assert statement.as_string(None) == (
        'CREATE INDEX CONCURRENTLY IF NOT EXISTS "Order_userId_idx" ON "public"."Order" ("userId")'
    )


def test_missing_index_found_then_gone_once_created(shop, watcher, monkeypatch):
    """PgHero's counters stay high after the fix; the EXPLAIN confirmation is what clears the conclusion."""
    _fresh_stats(shop)
    _user_orders_workload(shop.url)
    with connect(watcher) as db:
        seen = statements.statement_stats(db)
        suspects = indexes.seq_scan_tables(db, min_rows=10_000)
        assert list(suspects["table"]) == ["Order"]
        assert indexes.seq_scan_tables(db, min_rows=50_000).empty  # table-size threshold holds
        found = indexes.check_missing_indexes(db, seen)
        assert list(found["verdict"]) == [indexes.MISSING] and list(found["column"]) == ["userId"]
        missing = concluded("postgres.missing-indexes")
        assert (missing.status, missing.severity, missing.title) == (
            "warn",
            "P2",
            'Missing index on "Order"."userId"',
        )
        assert 'Suggested: CREATE INDEX CONCURRENTLY IF NOT EXISTS "Order_userId_idx"' in missing.detail
        assert "Seq Scan on Order" in indexes.show_plan(found)

        monkeypatch.setenv("OPSNB_HEADLESS", "1")
        monkeypatch.delenv("OPSNB_ALLOW_WRITES", raising=False)
        (planned,) = indexes.offer_indexes(found, shop.env)
        assert planned["status"] == "planned"
        assert db.scalar("""SELECT to_regclass('"Order_userId_idx"') IS NULL""")
        monkeypatch.setenv("OPSNB_ALLOW_WRITES", "1")
        (applied,) = indexes.offer_indexes(found, shop.env)
        assert applied["status"] == "applied" and applied["result"] == "created Order_userId_idx"
        assert db.scalar(
            """SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('"Order_userId_idx"')"""
        )

        again = indexes.check_missing_indexes(db, statements.statement_stats(db))
    assert list(again["table"]) == ["Order"]  # the cumulative counters still say "seq scans"
    assert list(again["verdict"]) == [indexes.NOT_NEEDED]
    cleared = concluded("postgres.missing-indexes")  # the re-run replaced the warning
    assert cleared.status == "pass" and cleared.title.startswith(
        'No missing index: the costliest statements on "Order"'
    )
    assert "Order_userId_idx" in indexes.show_plan(again)


def test_no_suspect_table_passes(shop, watcher):
    _fresh_stats(shop)
    with connect(watcher) as db:
        found = indexes.check_missing_indexes(db, statements.statement_stats(db))
    assert found.empty
    assert (
        concluded("postgres.missing-indexes").title
        == "No table of >= 10000 rows is mostly read by sequential scans"
    )


def test_suspect_without_statement_stats_is_inconclusive(shop, watcher):
    _fresh_stats(shop)
    _user_orders_workload(shop.url, 20)
    with connect(watcher) as db:
        found = indexes.check_missing_indexes(
            db, StatementStats(False, why="pg_stat_statements is not installed")
        )
    assert list(found["verdict"]) == [indexes.UNCONFIRMED]
    result = concluded("postgres.missing-indexes")
    assert (
        result.status == "inconclusive"
        and result.title == 'Could not confirm whether "Order" misses an index'
    )
    assert "CREATE EXTENSION pg_stat_statements" in result.detail
    assert findings.verdict() == "WARN"


def test_a_handful_of_seq_scans_is_too_small_a_sample(shop, watcher):
    """Right after a bulk load (pgbench -i) a table has a few seq scans and no index scan: no suspicion."""
    _fresh_stats(shop)
    _user_orders_workload(shop.url, 3)
    with connect(watcher) as db:
        found = indexes.check_missing_indexes(
            db, StatementStats(False, why="pg_stat_statements is not installed", preloaded=True)
        )
    assert list(found["table"]) == ["Order"] and list(found["seq_scan"]) == [3]
    result = concluded("postgres.missing-indexes")
    assert (result.status, result.title) == (
        "inconclusive",
        'Sample too small to tell whether "Order" misses an index',
    )
    assert "fewer than 10 sequential scans" in result.detail


def test_the_hint_reads_shared_preload_libraries(shop, watcher):
    """When the library is already preloaded the advice is CREATE EXTENSION, not a restart."""
    _fresh_stats(shop)
    _user_orders_workload(shop.url, 20)
    with connect(watcher) as db:
        indexes.check_missing_indexes(db, StatementStats(False, why="not installed", preloaded=True))
        preloaded = concluded("postgres.missing-indexes").detail
        findings.clear()
        indexes.check_missing_indexes(db, StatementStats(False, why="not installed", preloaded=False))
        missing = concluded("postgres.missing-indexes").detail
    assert statements.CREATE_HINT in preloaded and "add pg_stat_statements to shared_preload" not in preloaded
    assert "add pg_stat_statements to shared_preload_libraries" in missing


@pytest.fixture
def ledger(shop):
    """A large table in the app's own schema, which the app reaches through its search_path: the statements
    pg_stat_statements records name it without a schema."""
    with psycopg.connect(shop.url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA ledger")
        conn.execute('CREATE TABLE ledger."Entry" ("id" int PRIMARY KEY, "account" text NOT NULL)')
        conn.execute(
            """INSERT INTO ledger."Entry" SELECT g, 'a' || (g % 300) FROM generate_series(1, 12000) g"""
        )
        conn.execute('VACUUM ANALYZE ledger."Entry"')
    _fresh_stats(shop)
    with psycopg.connect(shop.url, autocommit=True, options="-c search_path=ledger") as conn:
        for n in range(40):
            conn.execute('SELECT "id" FROM "Entry" WHERE "account" = %s', (f"a{n}",))
    try:
        yield shop
    finally:
        with psycopg.connect(shop.url, autocommit=True) as conn:
            conn.execute("DROP SCHEMA ledger CASCADE")


def test_a_failed_explain_makes_the_table_unconfirmed_not_fine(ledger, watcher):
    """The reader's search path does not reach ledger."Entry": EXPLAIN fails with UndefinedTable."""
    with connect(watcher) as db:
        found = indexes.check_missing_indexes(db, statements.statement_stats(db))
    entry = found.set_index("table").loc["Entry"]
    assert entry["verdict"] == indexes.UNCONFIRMED
    assert entry["reason"].startswith("EXPLAIN failed for 1 of its 1 costliest statement(s): queryid ")
    assert 'relation "Entry" does not exist' in entry["reason"]
    assert entry["plan"] is None or entry["plan"] != entry["plan"]  # no plan read, none made up
    result = concluded("postgres.missing-indexes")
    assert (result.status, result.title) == (
        "inconclusive",
        'Could not confirm whether "Entry" misses an index',
    )
    assert "UndefinedTable" in result.detail


def test_no_privilege_to_explain_is_unconfirmed(shop, role_env):
    """pg_monitor reads every statement but no table: EXPLAIN is refused."""
    _fresh_stats(shop)
    _user_orders_workload(shop.url, 20)
    with connect(role_env("unit_monitor", "pg_monitor")) as db:
        found = indexes.check_missing_indexes(db, statements.statement_stats(db))
    assert list(found["verdict"]) == [indexes.UNCONFIRMED]
    assert "permission denied for table Order" in found.iloc[0]["reason"]
    assert concluded("postgres.missing-indexes").status == "inconclusive"


def test_hidden_statement_texts_leave_the_table_unconfirmed(shop, role_env):
    _fresh_stats(shop)
    _user_orders_workload(shop.url, 20)
    with connect(role_env("unit_reads_tables", "pg_read_all_data")) as db:
        seen = statements.statement_stats(db)
        found = indexes.check_missing_indexes(db, seen)
    assert seen.hidden_texts >= 1
    assert list(found["verdict"]) == [indexes.UNCONFIRMED]
    assert (
        "hidden from this role" in found.iloc[0]["reason"] and "grant pg_monitor" in found.iloc[0]["reason"]
    )
    assert concluded("postgres.missing-indexes").status == "inconclusive"


def test_failed_concurrent_build_leaves_no_invalid_index(shop):
    with connect(shop.env, read_only=False) as rw:
        with pytest.raises(Exception, match="could not create unique index"):
            indexes.create_index(
                rw,
                sql.SQL("CREATE UNIQUE INDEX CONCURRENTLY {} ON {} ({})").format(
                    sql.Identifier("Order_dup_idx"),
                    sql.Identifier("public", "Order"),
                    sql.Identifier("userId"),
                ),
                "public",
                "Order_dup_idx",
            )
        assert rw.scalar("""SELECT to_regclass('"Order_dup_idx"') IS NULL""")
        with pytest.raises(ValueError):
            indexes.create_index(rw, sql.SQL('DROP TABLE "Order"'), "public", "x")
        with pytest.raises(TypeError):  # text is never run: only a composed statement
            indexes.create_index(rw, 'CREATE INDEX CONCURRENTLY "x" ON "Order" ("id")', "public", "x")
        assert rw.scalar("""SELECT to_regclass('"x"') IS NULL""")


def test_invalid_unused_and_duplicate_indexes_one_conclusion_each(shop):
    _fresh_stats(shop)
    with psycopg.connect(shop.url, autocommit=True) as conn:
        with pytest.raises(psycopg.Error):
            conn.execute('CREATE UNIQUE INDEX CONCURRENTLY "Order_bad_idx" ON "Order" ("status")')
        conn.execute('CREATE INDEX "Order_status_idx" ON "Order" ("status")')
        conn.execute('CREATE INDEX "Order_status_createdAt_idx" ON "Order" ("status", "createdAt")')
    try:
        with connect(shop.env) as db:
            invalid = indexes.check_invalid_indexes(db)
            dup = indexes.check_duplicate_indexes(db)
            unused = indexes.check_unused_indexes(db, min_size_mb=0)
            sizes = indexes.index_sizes(db, limit=3)
    finally:
        with psycopg.connect(shop.url, autocommit=True) as conn:
            for name in ("Order_bad_idx", "Order_status_idx", "Order_status_createdAt_idx"):
                conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(name)))
    assert list(invalid["index"]) == ['"Order_bad_idx"']
    assert list(zip(dup["index"], dup["covered_by"], strict=True)) == [
        ('"Order_status_idx"', '"Order_status_createdAt_idx"')
    ]
    assert {"Order_status_idx", "Order_status_createdAt_idx"} <= set(unused["index"])
    assert "Order_pkey" not in set(unused["index"])  # enforces uniqueness: never "unused"
    assert len(sizes) == 3 and list(sizes["size_bytes"]) == sorted(sizes["size_bytes"], reverse=True)
    assert [(c.check, c.status, c.severity, c.essential) for c in findings.all_conclusions()] == [
        ("postgres.invalid-indexes", "warn", "P3", False),
        ("postgres.duplicate-indexes", "warn", "P3", False),
        ("postgres.unused-indexes", "warn", "P3", False),
    ]
    assert concluded("postgres.invalid-indexes").title == '1 invalid index(es): "Order_bad_idx"'
    assert concluded("postgres.duplicate-indexes").title == (
        '1 duplicate index(es): "Order_status_idx" (covered by "Order_status_createdAt_idx")'
    )
    unused_found = concluded("postgres.unused-indexes")
    assert "Order_status_idx (" in unused_found.title and "Order_status_createdAt_idx (" in unused_found.title
    assert 'DROP INDEX CONCURRENTLY "public"."Order_status_idx"' in unused_found.detail


def test_unused_index_size_threshold(shop):
    with connect(shop.env) as db:
        indexes.check_unused_indexes(db, min_size_mb=10)  # PgHero's default: our small indexes are below it
        indexes.check_invalid_indexes(db)
        indexes.check_duplicate_indexes(db)
    assert [(c.status, c.title) for c in findings.all_conclusions()] == [
        ("pass", "No unused index of >= 10 MB"),
        ("pass", "No index is invalid"),
        ("pass", "No index is covered by another one"),
    ]
