"""Unit tests of opsnb.checks.postgres.space on a real PostgreSQL: sizes and the monthly archive."""

from __future__ import annotations

import psycopg
import pytest
from checks.pg_shop import concluded
from psycopg import sql

from opsnb.checks import findings
from opsnb.checks.postgres import connect, space


def test_sizes(shop):
    with connect(shop.env) as db:
        size = space.database_size(db).to_dict("records")[0]
        tables = space.table_sizes(db, limit=2)
    assert size["database"] == shop.url.rsplit("/", 1)[-1] and size["size_bytes"] > 1_000_000
    assert list(tables["table"]) == ["Order", "OrderItem"]
    assert tables.iloc[0]["estimated_rows"] == 12_000


def _old_orders(db) -> int:
    return db.scalar("""SELECT count(*) FROM "Order" WHERE "createdAt" < now() - interval '2 years'""")


def test_archive_that_would_cascade_is_a_p3_and_not_offered(shop, monkeypatch):
    monkeypatch.setenv("OPSNB_HEADLESS", "1")
    monkeypatch.setenv("OPSNB_ALLOW_WRITES", "1")
    with connect(shop.env) as db:
        expected = _old_orders(db)
        found = space.check_archive_candidates(db)
        refs = space.referencing_tables(db)
        before = db.scalar('SELECT count(*) FROM "Order"')
        assert space.offer_archive(shop.env, shop.env) is None
        assert db.scalar('SELECT count(*) FROM "Order"') == before
    row = found.to_dict("records")[0]
    assert row["rows"] == expected > 0 and row["size_bytes"] > 0 and row["cascades_to"] == '"OrderItem"'
    assert refs.to_dict("records") == [
        {"referencing_table": '"OrderItem"', "constraint": "OrderItem_orderId_fkey", "on_delete": "cascade"}
    ]
    result = concluded("postgres.archive-candidates")
    assert (result.status, result.severity, result.essential) == ("warn", "P3", False)
    assert result.title == (
        f'{expected} "Order" row(s) older than 2 years ({row["size"]}) cannot be archived as the runbook says: '
        'deleting them cascades to "OrderItem"'
    )
    assert not findings.all_conclusions()[1:]  # the refused action concludes nothing more


def test_archive_allowed_to_cascade_passes_and_moves_rows_in_one_transaction(shop, monkeypatch):
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
        space.check_archive_candidates(db, allow_cascade=True)
        assert concluded("postgres.archive-candidates").title.endswith("to archive")
        with pytest.raises(Exception, match="duplicate key"):
            space.offer_archive(shop.env, shop.env, allow_cascade=True)
        assert db.scalar('SELECT count(*) FROM "Order" WHERE "id" = ANY(%s)', (old_ids,)) == len(old_ids)
        with connect(shop.env, read_only=False) as rw:
            rw.execute('DELETE FROM "OrderArchive"')
        entry = space.offer_archive(shop.env, shop.env, allow_cascade=True)
        assert (
            entry["status"] == "applied"
            and entry["result"] == f"moved {len(old_ids)} row(s) from Order to OrderArchive"
        )
        assert any("ON DELETE CASCADE" in step for step in entry["plan"])
        assert db.scalar('SELECT count(*) FROM "Order" WHERE "id" = ANY(%s)', (old_ids,)) == 0
        assert db.scalar('SELECT count(*) FROM "OrderArchive"') == len(old_ids)
        assert space.archive_candidates(db).iloc[0]["rows"] == 0
        space.check_archive_candidates(db)
        assert space.offer_archive(shop.env, shop.env) is None  # nothing left to move
    done = concluded("postgres.archive-candidates")
    assert (done.status, done.title) == ("pass", 'No "Order" row is older than 2 years')


def test_archive_without_the_archive_table_is_a_p3(shop):
    with psycopg.connect(shop.url, autocommit=True) as conn:
        conn.execute("""UPDATE "Order" SET "createdAt" = now() - interval '3 years' WHERE "id" = 'o1'""")
    with connect(shop.env) as db:
        space.check_archive_candidates(db, archive="NoSuchArchive")
    found = concluded("postgres.archive-candidates")
    assert (found.status, found.severity) == ("warn", "P3")
    assert found.title.endswith(
        'cannot be archived: table "NoSuchArchive" does not exist in database unit_space'
    )


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
