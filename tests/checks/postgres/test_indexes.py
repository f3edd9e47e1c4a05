"""Unit tests of opsnb.checks.postgres.indexes: missing (confirmed by EXPLAIN), created CONCURRENTLY, unused, duplicate, invalid."""

from __future__ import annotations

import psycopg
import pytest
from checks.pg_shop import titles
from psycopg import sql

from opsnb.checks import findings
from opsnb.checks.postgres import connect, indexes, stats


def _user_orders_workload(url: str, calls: int = 60) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for n in range(calls):
            conn.execute(
                'SELECT "id", "status" FROM "Order" WHERE "userId" = %s ORDER BY "createdAt" DESC', (f"u{n}",)
            )


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


def test_missing_index_found_then_gone_once_created(shop, monkeypatch):
    """PgHero's counters stay high after the fix; the EXPLAIN confirmation is what clears the finding."""
    _user_orders_workload(shop.url)
    with connect(shop.env) as db:
        seen = stats.check_statements_available(db)
        version = stats.server_version_num(db)
        suspects = indexes.seq_scan_tables(db, min_rows=10_000)
        assert list(suspects["table"]) == ["Order"]
        assert indexes.seq_scan_tables(db, min_rows=50_000).empty  # table-size threshold holds
        findings.clear()
        found = indexes.check_missing_indexes(db, seen, version)
        assert list(found["verdict"]) == ["missing index"] and list(found["column"]) == ["userId"]
        assert titles("P2") == ['Missing index on "Order"."userId"']
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

        findings.clear()
        again = indexes.check_missing_indexes(db, seen, version)
    assert list(again["table"]) == ["Order"]  # the cumulative counters still say "seq scans"
    assert list(again["verdict"]) == ["its costliest statements use an index now"]
    assert not titles("P2")
    assert "Order_userId_idx" in indexes.show_plan(again)


def test_missing_index_without_statement_stats_is_p3(shop):
    _user_orders_workload(shop.url, 5)
    with connect(shop.env) as db:
        indexes.check_missing_indexes(db, {"usable": False}, 150000, min_seq_scans=1)
    assert titles("P3") == ['"Order" looks like it misses an index']


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


def test_invalid_unused_and_duplicate_indexes(shop):
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
                conn.execute(f'DROP INDEX IF EXISTS "{name}"')
    assert list(invalid["index"]) == ['"Order_bad_idx"']
    assert list(zip(dup["index"], dup["covered_by"], strict=True)) == [
        ('"Order_status_idx"', '"Order_status_createdAt_idx"')
    ]
    assert {"Order_status_idx", "Order_status_createdAt_idx"} <= set(unused["index"])
    assert "Order_pkey" not in set(unused["index"])  # enforces uniqueness: never "unused"
    assert len(sizes) == 3 and list(sizes["size_bytes"]) == sorted(sizes["size_bytes"], reverse=True)
    p3 = titles("P3")
    assert 'Invalid index "Order_bad_idx"' in p3
    assert 'Duplicate index "Order_status_idx" (covered by "Order_status_createdAt_idx")' in p3
    assert any(t.startswith("Unused index Order_status_idx") for t in p3)


def test_unused_index_size_threshold(shop):
    with connect(shop.env) as db:
        indexes.check_unused_indexes(db, min_size_mb=10)  # PgHero's default: our small indexes are below it
    assert not titles("P3")
    assert any(t.startswith("No unused index of >= 10 MB") for t in titles("info"))
