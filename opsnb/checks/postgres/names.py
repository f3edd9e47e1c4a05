"""Names that arrive as parameters, looked up in the catalog before any SQL names them; SQL shown to people.

Statements are psycopg.sql objects: identifiers through sql.Identifier, values as parameters. A table or
column named by a parameter is first found in the catalog with a parameterized lookup (a hostile name can
only fail to match), and only the catalog's own names are ever put into a statement. ``shown`` renders a
statement as text for a person to read (a plan, a conclusion), never for running.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from psycopg import sql

from opsnb.errors import OpsnbError

if TYPE_CHECKING:
    from opsnb.checks.postgres.session import Database

# relkinds whose rows can be counted: tables, partitioned tables, views, materialized views, foreign tables
READABLE_KINDS = ("r", "p", "v", "m", "f")
TABLE_KINDS = ("r", "p")


class UnknownName(OpsnbError, LookupError):
    """A table or column named by a parameter is not in the database's catalog (no SQL was built from it).

    An opsnb error: a check it escapes from concludes ``inconclusive`` (it could not look where it was told).
    """


@dataclass(frozen=True)
class Table:
    """A relation found in the catalog for a name given as a parameter."""

    oid: int
    schema: str
    name: str
    given: str  # the name as the parameter spelled it
    qualified: bool  # True when ``given`` named the schema

    @property
    def ident(self) -> sql.Identifier:
        """The schema-qualified identifier, the only form statements use."""
        return sql.Identifier(self.schema, self.name)

    @property
    def label(self) -> str:
        """How conclusions name it: quoted, and schema-qualified only when the parameter was."""
        return shown(self.ident if self.qualified else sql.Identifier(self.name))


def resolve_table(db: Database, name: str, kinds: Sequence[str] = READABLE_KINDS) -> Table | None:
    """The relation ``name`` refers to, or None: ``schema.table`` (exact, case-sensitive names), else a bare
    table name looked up along the search path the way PostgreSQL resolves it."""
    if not isinstance(name, str) or not name or "\x00" in name:
        return None
    # every dot could separate schema from table ("a.b.c" may be schema "a" + table "b.c" or "a.b" + "c")
    splits = [(name[:i], name[i + 1 :]) for i, ch in enumerate(name) if ch == "."]
    for schema, table in splits:
        rows = db.rows(
            "SELECT c.oid::bigint AS oid, n.nspname AS schema, c.relname AS name "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = %s AND c.relkind::text = ANY(%s)",
            (schema, table, list(kinds)),
        )
        if rows:
            return Table(int(rows[0]["oid"]), rows[0]["schema"], rows[0]["name"], name, True)
    rows = db.rows(
        "SELECT c.oid::bigint AS oid, n.nspname AS schema, c.relname AS name "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relname = %s AND c.relkind::text = ANY(%s) AND n.nspname = ANY(current_schemas(true)) "
        "ORDER BY array_position(current_schemas(true), n.nspname) LIMIT 1",
        (name, list(kinds)),
    )
    if rows:
        return Table(int(rows[0]["oid"]), rows[0]["schema"], rows[0]["name"], name, False)
    return None


def require_table(db: Database, name: str, kinds: Sequence[str] = READABLE_KINDS) -> Table:
    """resolve_table(), or UnknownName('table "X" does not exist in database Y')."""
    found = resolve_table(db, name, kinds)
    if found is None:
        raise UnknownName(
            f'table "{name}" does not exist in database {db.scalar("SELECT current_database()")}'
        )
    return found


def require_column(db: Database, table: Table, column: str) -> str:
    """``column`` when ``table`` has it (exact name), else UnknownName."""
    if isinstance(column, str) and column and "\x00" not in column:
        if db.scalar(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s AND attname = %s AND attnum > 0 "
            "AND NOT attisdropped",
            (table.oid, column),
        ):
            return column
    raise UnknownName(f'column "{column}" does not exist in table {shown(table.ident)}')


def shown(statement: sql.Composable, params: Sequence[Any] = ()) -> str:
    """Text of ``statement`` for a person to read (a plan, a conclusion), never for running: what runs is the
    Composable itself with its parameters. ``params`` take the place of its sql.Placeholder()s, as literals,
    so a plan shows the values the statement will get."""
    values = iter(params)

    def bind(part: sql.Composable) -> sql.Composable:
        if isinstance(part, sql.Placeholder) and params:
            return sql.Literal(next(values))
        if isinstance(part, sql.Composed):
            return sql.Composed([bind(p) for p in part])
        return part

    # no connection: psycopg quotes identifiers and literals with its own rules (standard strings)
    return bind(statement).as_string(None)
