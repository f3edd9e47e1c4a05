"""Unit tests of opsnb.checks.postgres.space: sizes and the monthly archive."""

from __future__ import annotations

import psycopg
import pytest
from checks.pg_shop import titles
from psycopg import sql

from opsnb.checks.postgres import connect, space


def test_sizes(shop):
    with connect(shop.env) as db:
        size = space.database_size(db).to_dict("records")[0]
        tables = space.table_sizes(db, limit=2)
    assert size["database"] == shop.url.rsplit("/", 1)[-1] and size["size_bytes"] > 1_000_000
    assert list(tables["table"]) == ["Order", "OrderItem"]
    assert tables.iloc[0]["estimated_rows"] == 12_000


def test_archive_candidates_and_references(shop):
    with connect(shop.env) as db:
        expected = db.scalar(
            """SELECT count(*) FROM "Order" WHERE "createdAt" < now() - interval '2 years'"""
        )
        found = space.check_archive_candidates(db)
    cand = found["candidates"].to_dict("records")[0]
    assert cand["rows"] == expected > 0 and cand["size_bytes"] > 0
    assert found["references"].to_dict("records") == [
        {"referencing_table": '"OrderItem"', "constraint": "OrderItem_orderId_fkey", "on_delete": "cascade"}
    ]
    assert titles("info") == [f'{expected} "Order" row(s) older than 2 years ({cand["size"]})']


def test_archive_not_offered_when_it_would_cascade(shop, monkeypatch):
    monkeypatch.setenv("OPSNB_HEADLESS", "1")
    monkeypatch.setenv("OPSNB_ALLOW_WRITES", "1")
    with connect(shop.env) as db:
        found = space.check_archive_candidates(db)
        before = db.scalar('SELECT count(*) FROM "Order"')
        assert space.offer_archive(found, shop.env, shop.env) is None
        assert db.scalar('SELECT count(*) FROM "Order"') == before
    assert titles("P3") == ['Archive of "Order" not offered: it would cascade to "OrderItem"']


def test_archive_moves_rows_in_one_transaction(shop, monkeypatch):
    monkeypatch.setenv("OPSNB_HEADLESS", "1")
    monkeypatch.setenv("OPSNB_ALLOW_WRITES", "1")
    with psycopg.connect(shop.url, autocommit=True) as conn:
        old_ids = [
            r[0]
            for r in conn.execute(
                """SELECT "id" FROM "Order" WHERE "createdAt" < now() - interval '2 years' ORDER BY 1"""
            )
        ]
        # one archived row already there: the whole move must fail and change nothing
        conn.execute('INSERT INTO "OrderArchive" SELECT * FROM "Order" WHERE "id" = %s', (old_ids[0],))
    with connect(shop.env) as db:
        found = space.check_archive_candidates(db)
        with pytest.raises(Exception, match="duplicate key"):
            space.offer_archive(found, shop.env, shop.env, allow_cascade=True)
        assert db.scalar('SELECT count(*) FROM "Order" WHERE "id" = ANY(%s)', (old_ids,)) == len(old_ids)
        db_rw = connect(shop.env, read_only=False)
        db_rw.execute('DELETE FROM "OrderArchive"')
        db_rw.close()
        entry = space.offer_archive(found, shop.env, shop.env, allow_cascade=True)
        assert (
            entry["status"] == "applied"
            and entry["result"] == f"moved {len(old_ids)} row(s) from Order to OrderArchive"
        )
        assert any("ON DELETE CASCADE" in step for step in entry["plan"])
        assert db.scalar('SELECT count(*) FROM "Order" WHERE "id" = ANY(%s)', (old_ids,)) == 0
        assert db.scalar('SELECT count(*) FROM "OrderArchive"') == len(old_ids)
        assert space.archive_candidates(db).iloc[0]["rows"] == 0


def test_archive_statement_names_columns():
    statement = space.archive_statement(
        ["id", "createdAt"],
        sql.Identifier("public", "Order"),
        sql.Identifier("public", "OrderArchive"),
        "createdAt",
    )
    assert isinstance(statement, sql.Composed)
    assert statement.as_string(None) == (
        'WITH moved AS (DELETE FROM "public"."Order" WHERE "createdAt" < now() - %s::interval '
        'RETURNING "id", "createdAt") '
        'INSERT INTO "public"."OrderArchive" ("id", "createdAt") SELECT "id", "createdAt" FROM moved'
    )
    with pytest.raises(TypeError):  # a plain str would have been quoted as a literal
        space.archive_statement(["id"], "Order", sql.Identifier("OrderArchive"), "createdAt")
