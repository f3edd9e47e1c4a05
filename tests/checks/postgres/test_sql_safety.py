"""No SQL text is built from a value: statements are psycopg.sql objects, names from parameters are looked up
in the catalog first, and what a plan shows comes from the same composed statement.

The statements here run against a real PostgreSQL (the module's own shop database, see conftest.py).
"""

from __future__ import annotations

import ast
from pathlib import Path

import psycopg
import pytest
from checks.pg_shop import WEIRD, concluded
from psycopg import sql

import opsnb
from opsnb.checks.backups import verify
from opsnb.checks.postgres import (
    DatabaseError,
    activity,
    connect,
    connections,
    explain,
    indexes,
    names,
    roles,
    space,
    statements,
)

INJECTION = (
    'Product" WHERE false; SET default_transaction_read_only = off; COMMIT; '
    'UPDATE "Product" SET id = -id WHERE id = 1; SELECT count(*) FROM "Product'
)


# --- (d) builders return composed statements, never text ------------------------------------------------


def test_every_builder_returns_a_composable():
    built = [
        statements.top_statements_sql("total_exec_time", "mean_exec_time", by="mean"),
        statements.top_statements_sql("total_time", "mean_time", by="total"),
        statements.slow_statements_sql("total_exec_time", "mean_exec_time"),
        activity.stop_statement("cancel"),
        activity.stop_statement("terminate"),
        indexes.suggested_index("public", "Order", "userId")[1],
        space.archive_statement(["id"], sql.Identifier("public", "Order"), sql.Identifier("A"), "createdAt"),
        connections.CLIENT,
        roles.HIDDEN_SESSION,
        *explain.explain_statements("SELECT $1", 160000),
        *explain.explain_statements("SELECT $1", 150000),
    ]
    for statement in built:
        assert isinstance(statement, sql.Composable) and not isinstance(statement, str), statement


@pytest.mark.parametrize("column", ["total_exec_time; DROP TABLE x", "calls", '"total_time"', ""])
def test_time_columns_come_from_a_closed_set(column):
    with pytest.raises(ValueError):
        statements.top_statements_sql(column, "mean_exec_time")
    with pytest.raises(ValueError):
        statements.slow_statements_sql("total_exec_time", column)
    with pytest.raises(ValueError):
        indexes.statements_on_table(None, column, "mean_exec_time", "Order")


def test_version_dependent_columns_are_identifiers():
    text = statements.top_statements_sql("total_time", "mean_time", by="total").as_string(None)
    assert 'round("total_time"::numeric' in text and 'ORDER BY "total_ms" DESC' in text


def test_stop_statement_takes_the_pid_as_a_parameter():
    statement = activity.stop_statement("terminate")
    assert statement.as_string(None) == "SELECT pg_terminate_backend(%s)"
    assert names.shown(statement, (4242,)) == "SELECT pg_terminate_backend(4242)"
    with pytest.raises(ValueError):
        activity.stop_statement("pg_reload_conf")


@pytest.mark.parametrize("bad", ["1; SELECT 1", "-5", "0x10", "1e3", "12a", "0", "99999999999", "1.5"])
def test_terminate_pids_are_parsed_strictly(bad):
    with pytest.raises(ValueError):
        activity.parse_pids(bad)
    with pytest.raises(ValueError):
        activity.runaway_backends(None, None, only_pids=f"10, {bad}")


def test_pids_list_accepts_commas_and_spaces():
    assert activity.parse_pids(" 10, 20 30,") == {10, 20, 30}


def test_shown_quotes_values_and_names():
    statement = space.archive_statement(
        ["id"], sql.Identifier("public", WEIRD), sql.Identifier("public", "OrderArchive"), "createdAt"
    )
    text = names.shown(statement, ("2 years'; DROP TABLE x; --",))
    assert 'DELETE FROM "public"."we;ird ""na me"""' in text
    assert "now() - '2 years''; DROP TABLE x; --'::interval" in text
    assert names.shown(sql.Identifier('a"b')) == '"a""b"'


def test_one_identifier_helper_no_string_built_sql_in_the_postgres_modules():
    """No hand-made quoting helper is left, and no db.query/rows/scalar/execute gets an f-string, a
    concatenation, a %-formatted or a str.format()ted text (ruff's S608 guards the same in make lint)."""
    root = Path(opsnb.__file__).parent
    files = [*(root / "checks" / "postgres").glob("*.py"), *(root / "checks" / "backups").glob("*.py")]
    offenders = []
    for path in files:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name in ("quote_ident", "_qi"):
                offenders.append(f"{path.name}: def {node.name}")
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("query", "rows", "scalar", "execute")
                and node.args
            ):
                continue
            first = node.args[0]
            built = (
                isinstance(first, ast.JoinedStr)
                or isinstance(first, ast.BinOp)
                or (
                    isinstance(first, ast.Call)
                    and isinstance(first.func, ast.Attribute)
                    and first.func.attr == "format"
                    and isinstance(first.func.value, ast.Constant)
                )
            )
            if built:
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


# --- names from parameters: looked up in the catalog ----------------------------------------------------


def _checksum(url: str) -> str:
    with psycopg.connect(url) as conn:
        return conn.execute(
            """SELECT md5(string_agg(t::text, ',' ORDER BY "id")) FROM "Order" t"""
        ).fetchone()[0]


def test_unknown_table_is_a_clear_error_and_runs_nothing(odd_tables):
    before = _checksum(odd_tables.url)
    evil = 'Order" WHERE false; SET default_transaction_read_only = off; COMMIT; DELETE FROM "Order'
    with connect(odd_tables.env) as db:
        assert names.resolve_table(db, evil) is None
        with pytest.raises(names.UnknownName):
            space.archive_candidates(db, table=evil)
        with pytest.raises(names.UnknownName, match="column"):
            space.archive_candidates(db, column='createdAt" < now(); DELETE FROM "Order" WHERE "id')
    assert _checksum(odd_tables.url) == before


def test_counts_go_through_identifiers(odd_tables):
    with connect(odd_tables.env) as db:
        counts = verify.key_table_counts(db, [WEIRD, "audit.Event", "Order", INJECTION])
    assert counts == {WEIRD: 7, "audit.Event": 12, "Order": 12_000, INJECTION: None}


def test_archive_parameters_are_checked_before_any_statement(odd_tables, monkeypatch):
    monkeypatch.setenv("OPSNB_HEADLESS", "1")
    monkeypatch.setenv("OPSNB_ALLOW_WRITES", "1")
    before = _checksum(odd_tables.url)
    with connect(odd_tables.env) as db:
        dbname = db.scalar("SELECT current_database()")
        assert space.check_archive_candidates(db, table="Nope; DROP TABLE x") is None
        found = concluded("postgres.archive-candidates")
        assert found.status == "inconclusive"  # it could not look where the parameter pointed
        assert f'table "Nope; DROP TABLE x" does not exist in database {dbname}' in found.detail
        assert space.offer_archive(odd_tables.env, odd_tables.env, table="Nope; DROP TABLE x") is None
        space.check_archive_candidates(db, archive="OrderArchive2", allow_cascade=True)
        assert concluded("postgres.archive-candidates").title.endswith(
            f'cannot be archived: table "OrderArchive2" does not exist in database {dbname}'
        )
        assert (
            space.offer_archive(odd_tables.env, odd_tables.env, archive="OrderArchive2", allow_cascade=True)
            is None
        )
    assert _checksum(odd_tables.url) == before


def test_archive_age_is_a_parameter(odd_tables):
    before = _checksum(odd_tables.url)
    with connect(odd_tables.env) as db:
        with pytest.raises(DatabaseError, match="invalid input syntax for type interval"):
            space.archive_candidates(db, older_than='2 years\'::interval; DELETE FROM "Order"; --')
    assert _checksum(odd_tables.url) == before


def test_key_table_names_from_the_cli_string():
    assert verify.key_table_names("Product, audit.Event,,Product") == ["Product", "audit.Event"]
    assert verify.key_table_names(["Product", WEIRD]) == ["Product", WEIRD]
    with pytest.raises(TypeError):
        verify.key_table_names([1])
