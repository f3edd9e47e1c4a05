"""Roles: the reader role the runbooks read with, and what the current role could change.

Read-only is a property of the role, not of the session: a session default
(``default_transaction_read_only``) is undone by one ``SET``. The reader role
holds ``pg_read_all_data`` (PostgreSQL 14+) and ``pg_monitor`` only: no DML, no
``pg_signal_backend``, no ownership. PostgreSQL lets every role create temporary
tables and large objects unless that is revoked from PUBLIC, so the set-up
revokes both and gives them back to the application role.

Without ``pg_read_all_stats`` (part of ``pg_monitor``) a role sees other roles' sessions in
``pg_stat_activity`` as rows without state, query or times, and their statements in
``pg_stat_statements`` as ``<insufficient privilege>``: the checks that judge them must know it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from psycopg import sql

from opsnb.checks.findings import CouldNotLook, check, conclude

if TYPE_CHECKING:
    import pandas as pd

    from opsnb.checks.postgres.session import Database

# How to make other roles' sessions and statements visible to the reader.
STATS_HINT = "grant pg_monitor (or pg_read_all_stats) to the reader role"
# A pg_stat_activity row of another role's session as a role without pg_read_all_stats sees it: no backend
# type, state or query. Rows without a database are background processes (the logical replication
# launcher runs as the bootstrap superuser), not sessions.
HIDDEN_SESSION = sql.SQL(
    "(backend_type IS NULL AND usename IS NOT NULL AND datid IS NOT NULL AND datid <> 0)"
)

# Functions that create or import large objects: open to PUBLIC by default.
LARGE_OBJECT_WRITERS = (
    "lo_create(oid)",
    "lo_creat(integer)",
    "lo_import(text)",
    "lo_import(text, oid)",
    "lo_from_bytea(oid, bytea)",
)


def reader_role_statements(
    role: str, password: str | None, database: str, app_role: str | None = None
) -> list[sql.Composed]:
    """The statements that create (or update) a reader role for ``database``.

    Run them as a superuser (or the database owner for the REVOKEs), connected to ``database``.
    ``app_role`` gets back the temporary-table and large-object rights revoked from PUBLIC.
    On PostgreSQL 13 (no pg_read_all_data) grant SELECT on the schemas' tables instead.
    """
    ident = sql.Identifier(role)
    login = (
        sql.SQL("LOGIN PASSWORD {}").format(sql.Literal(password))
        if password is not None
        else sql.SQL("LOGIN")
    )
    stmts = [
        sql.SQL(
            "DO $$BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {}) THEN "
            "EXECUTE format('CREATE ROLE %I', {}); END IF; END$$"
        ).format(sql.Literal(role), sql.Literal(role)),
        sql.SQL("ALTER ROLE {} {} NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS").format(
            ident, login
        ),
        sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(ident),
        sql.SQL("GRANT pg_read_all_data, pg_monitor TO {}").format(ident),
        sql.SQL("REVOKE CREATE ON SCHEMA public FROM PUBLIC"),
        sql.SQL("REVOKE TEMPORARY ON DATABASE {} FROM PUBLIC").format(sql.Identifier(database)),
    ]
    stmts += [
        sql.SQL("REVOKE EXECUTE ON FUNCTION {} FROM PUBLIC").format(sql.SQL(f)) for f in LARGE_OBJECT_WRITERS
    ]
    if app_role:
        app = sql.Identifier(app_role)
        stmts.append(sql.SQL("GRANT TEMPORARY ON DATABASE {} TO {}").format(sql.Identifier(database), app))
        stmts += [
            sql.SQL("GRANT EXECUTE ON FUNCTION {} TO {}").format(sql.SQL(f), app)
            for f in LARGE_OBJECT_WRITERS
        ]
    return stmts


# One row per kind of change the current role could make in this database. Temporary tables vanish with
# the session but still count: a read session has no business creating anything.
WRITE_CAPABILITIES_SQL = sql.SQL("""
SELECT 'superuser' AS capability, 'the role is a superuser' AS detail
  FROM pg_roles WHERE rolname = current_user AND rolsuper
UNION ALL
SELECT 'table writes', count(*)::text || ' table(s), e.g. ' || min(format('%I.%I', n.nspname, c.relname))
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p')
   AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
   AND (has_table_privilege(c.oid, 'INSERT') OR has_table_privilege(c.oid, 'UPDATE')
        OR has_table_privilege(c.oid, 'DELETE') OR has_table_privilege(c.oid, 'TRUNCATE'))
HAVING count(*) > 0
UNION ALL
SELECT 'create objects', 'CREATE on schema ' || string_agg(format('%I', nspname), ', ')
  FROM pg_namespace
 WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname NOT LIKE 'pg_t%'
   AND has_schema_privilege(oid, 'CREATE')
HAVING count(*) > 0
UNION ALL
SELECT 'temporary tables', 'TEMPORARY on database ' || current_database()
 WHERE has_database_privilege(current_database(), 'TEMPORARY')
UNION ALL
SELECT 'large objects', 'EXECUTE on lo_create()'
 WHERE has_function_privilege('lo_create(oid)', 'EXECUTE')
UNION ALL
SELECT 'signal backends', 'member of pg_signal_backend (can cancel/terminate other sessions)'
 WHERE pg_has_role('pg_signal_backend', 'USAGE')
""")


def write_capabilities(db: Database) -> pd.DataFrame:
    """What the session's role could change here (empty when it is a true reader): capability, detail."""
    return db.query(WRITE_CAPABILITIES_SQL)


@check("safety.read-only-role", hint="grant the reader role pg_monitor (it reads pg_roles and privileges)")
def check_read_only_role(db: Database, dsn_env: str = "DATABASE_URL") -> pd.DataFrame:
    """Conclude whether the role behind ``dsn_env`` could change the database (it should be a reader)."""
    found = write_capabilities(db)
    if not len(found):
        return conclude(
            "pass", f"The read session's role (${dsn_env}) cannot change the database", evidence=found
        )
    what = "; ".join(f"{r.capability}: {r.detail}" for r in found.itertuples())
    return conclude(
        "warn",
        f"The read session's role (${dsn_env}) can change the database",
        severity="P3",
        detail=f"{what}. Only the role makes a run read-only: point {dsn_env} at a reader role "
        "(pg_read_all_data + pg_monitor, README 'Read-only by privilege') and give writes their own "
        "writer_database_url_env.",
        evidence=found,
    )


def session_visibility(db: Database) -> pd.DataFrame:
    """One row: the role, whether it reads every session's details (pg_read_all_stats) and how many
    sessions of other roles show it no state, query or times."""
    return db.query(
        sql.SQL(
            """
            SELECT current_user AS role,
                   pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') AS reads_all_stats,
                   (SELECT count(*) FROM pg_stat_activity WHERE {hidden})::int AS hidden_sessions
            """
        ).format(hidden=HIDDEN_SESSION)
    )


def require_visible_sessions(db: Database) -> None:
    """Raise CouldNotLook when sessions of other roles are hidden from this role: a check that judges
    sessions would otherwise pass on what it was not allowed to see."""
    row = session_visibility(db).iloc[0]
    if not row["reads_all_stats"] and int(row["hidden_sessions"]) > 0:
        raise CouldNotLook(
            f"could not see other roles' sessions ({int(row['hidden_sessions'])} hidden from role "
            f"{row['role']}, which lacks pg_read_all_stats)",
            STATS_HINT,
        )
