"""Fixtures of the PostgreSQL checks' tests: roles with fewer privileges than the app, tables with odd names."""

from __future__ import annotations

import os
from collections.abc import Iterator

import psycopg
import pytest
from checks.pg_shop import WEIRD, Shop
from psycopg import sql


@pytest.fixture
def role_env(pg_cluster, shop: Shop) -> Iterator:
    """``role_env(name, *grants)``: a login role (created once) with only ``grants`` (e.g. "pg_monitor"),
    connected to the module's shop database through an env var whose name it returns."""
    names = []

    def make(name: str, *grants: str) -> str:
        password = f"{name}_pw"
        with psycopg.connect(pg_cluster.dsn, autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone():
                conn.execute(
                    sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                        sql.Identifier(name), sql.Literal(password)
                    )
                )
            for grant in grants:
                conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(grant), sql.Identifier(name)))
        env = f"UNIT_{name.upper()}_URL"
        os.environ[env] = pg_cluster.postgres.dsn(name, password, shop.url.rsplit("/", 1)[-1])
        names.append(env)
        return env

    try:
        yield make
    finally:
        for env in names:
            os.environ.pop(env, None)


@pytest.fixture(scope="module")
def odd_tables(shop: Shop) -> Shop:
    """A table with an odd name, one in a non-public schema, one named like "schema.table", and "Dup" in
    two schemas (search-path order decides)."""
    with psycopg.connect(shop.url, autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "CREATE TABLE {weird} (id int); INSERT INTO {weird} SELECT generate_series(1, 7);"
                "CREATE SCHEMA audit; CREATE TABLE audit.{event} (id int);"
                "INSERT INTO audit.{event} SELECT generate_series(1, 12);"
                "CREATE TABLE {dotted} (id int); CREATE TABLE {dup} (id int); CREATE TABLE audit.{dup} (id int);"
            ).format(
                weird=sql.Identifier(WEIRD),
                event=sql.Identifier("Event"),
                dotted=sql.Identifier("x.y"),
                dup=sql.Identifier("Dup"),
            )
        )
    return shop
