"""Unit tests of opsnb.checks.postgres.names on a real PostgreSQL: names from parameters found in the catalog
(or refused) before any statement names them, and statements shown to people."""

from __future__ import annotations

import pytest
from checks.pg_shop import WEIRD
from psycopg import sql

from opsnb.checks import findings
from opsnb.checks.postgres import connect, names


def test_resolve_table_bare_qualified_and_odd_names(odd_tables):
    with connect(odd_tables.env) as db:
        weird = names.resolve_table(db, WEIRD)
        event = names.resolve_table(db, "audit.Event")
        dotted = names.resolve_table(db, "x.y")
        dup = names.resolve_table(db, "Dup")
        audit_dup = names.resolve_table(db, "audit.Dup")
        order = names.resolve_table(db, "Order")
        assert names.resolve_table(db, "order") is None  # exact names: no case folding
        assert names.resolve_table(db, "Event") is None  # audit is not on the search path
        assert names.resolve_table(db, 'public."Order"') is None  # names, not SQL syntax
        assert names.resolve_table(db, "") is None and names.resolve_table(db, "a\x00b") is None
        assert (
            names.resolve_table(db, "pg_class") is not None
        )  # pg_catalog is searched first, like PostgreSQL
        assert names.resolve_table(db, "Order", kinds=("v",)) is None
    assert (weird.schema, weird.name, weird.label) == ("public", WEIRD, '"we;ird ""na me"""')
    assert (event.schema, event.name, event.label) == ("audit", "Event", '"audit"."Event"')
    assert (dotted.schema, dotted.name, dotted.qualified) == ("public", "x.y", False)
    assert (dup.schema, audit_dup.schema) == ("public", "audit")
    assert order.ident.as_string(None) == '"public"."Order"'


def test_unknown_names_are_clear_errors_that_make_a_check_inconclusive(odd_tables):
    evil = 'Order" WHERE false; SET default_transaction_read_only = off; COMMIT; DELETE FROM "Order'
    with connect(odd_tables.env) as db:
        dbname = db.scalar("SELECT current_database()")
        with pytest.raises(names.UnknownName) as err:
            names.require_table(db, evil)
        order = names.require_table(db, "Order")
        assert names.require_column(db, order, "userId") == "userId"
        with pytest.raises(
            names.UnknownName, match='column "userid" does not exist in table "public"."Order"'
        ):
            names.require_column(db, order, "userid")

        @findings.check("demo.named-table")
        def check_named_table(name: str):
            names.require_table(db, name)
            return findings.conclude("pass", "found")

        assert check_named_table(evil) is None
    assert str(err.value) == f'table "{evil}" does not exist in database {dbname}'
    assert findings.all_conclusions()[0].status == "inconclusive"  # an opsnb error: could not look, not a bug


def test_shown_quotes_names_and_binds_placeholders_as_literals():
    statement = sql.SQL("SELECT {} FROM {} WHERE x = {}").format(
        sql.Identifier('a"b'), sql.Identifier("s", WEIRD), sql.Placeholder()
    )
    assert names.shown(statement) == 'SELECT "a""b" FROM "s"."we;ird ""na me""" WHERE x = %s'
    assert (
        names.shown(statement, ("it's",)) == 'SELECT "a""b" FROM "s"."we;ird ""na me""" WHERE x = \'it\'\'s\''
    )
