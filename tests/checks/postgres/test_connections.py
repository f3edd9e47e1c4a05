"""Unit tests of opsnb.checks.postgres.connections: the one definition of connection usage, pinned on a real
PostgreSQL of its own with max_connections 20 and 3 slots reserved for superusers (a pool of 17)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from checks.pg_shop import concluded

from opsnb.checks.postgres import connect, connections


@dataclass
class Small:
    app_env: str  # a plain login role
    admin_env: str  # the superuser: may use the reserved slots
    app_url: str
    plain_env: str  # another plain role: sees the app's sessions hidden


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Small]:
    from opsnb.sandbox.postgres import LocalPostgres, cluster_parent

    folder, _ = cluster_parent(Path(tmp_path_factory.mktemp("pg-small")) / "pg")
    pg = LocalPostgres(folder, stat_statements=False)
    password = secrets.token_urlsafe(12)
    pg.init(password)
    with open(pg.datadir / "postgresql.conf", "a") as conf:
        conf.write("max_connections = 20\nsuperuser_reserved_connections = 3\n")
    pg.start()
    admin = pg.dsn("opsnb_admin", password, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("CREATE ROLE small_app LOGIN PASSWORD 'small_app_pw'")
        conn.execute("CREATE ROLE small_plain LOGIN PASSWORD 'small_plain_pw'")
    env = {
        "UNIT_SMALL_APP_URL": pg.dsn("small_app", "small_app_pw", "postgres"),
        "UNIT_SMALL_ADMIN_URL": admin,
        "UNIT_SMALL_PLAIN_URL": pg.dsn("small_plain", "small_plain_pw", "postgres"),
    }
    os.environ.update(env)
    try:
        yield Small(
            "UNIT_SMALL_APP_URL", "UNIT_SMALL_ADMIN_URL", env["UNIT_SMALL_APP_URL"], "UNIT_SMALL_PLAIN_URL"
        )
    finally:
        for name in env:
            os.environ.pop(name, None)
        pg.remove()


def _open(url: str, n: int, app: str = "unit-pool") -> list[psycopg.Connection]:
    return [psycopg.connect(url + f"?application_name={app}") for _ in range(n)]


def _close(conns: list[psycopg.Connection]) -> None:
    for c in conns:
        c.close()


def test_14_clients_of_a_pool_of_17_is_82_percent_a_warning(small):
    """max_connections 20 - 3 reserved = a pool of 17; 13 app sessions + the check's own = 14 = 82.4 %."""
    pool = _open(small.app_url, 13)
    try:
        with connect(small.app_env) as db:
            usage = connections.connection_usage(db).iloc[0]
            connections.check_connection_usage(db)
    finally:
        _close(pool)
    assert (
        usage["connections"],
        usage["max_connections"],
        usage["superuser_reserved"],
        usage["reserved"],
    ) == (
        14,
        20,
        3,
        0,
    )
    assert (usage["pool"], usage["pool_pct"], usage["hidden"]) == (17, 82.4, 0)
    found = concluded("postgres.connection-usage")
    assert (found.status, found.severity) == ("warn", "P2")
    assert found.title == "High database connection usage: 82.4 % of the pool"
    assert "14 client connection(s) of a pool of 17" in found.detail and "superuser-reserved" in found.detail


def test_few_clients_pass_and_the_thresholds_are_parameters(small):
    pool = _open(small.app_url, 4)
    try:
        with connect(small.app_env) as db:
            connections.check_connection_usage(db)
            assert concluded("postgres.connection-usage").title == "Connection usage is 29.4 % of the pool"
            assert concluded("postgres.connection-usage").status == "pass"
            connections.check_connection_usage(db, warn_pct=20, critical_pct=29)  # re-run: replaced
    finally:
        _close(pool)
    found = concluded("postgres.connection-usage")
    assert (found.status, found.severity, found.title) == (
        "fail",
        "P1",
        "Connection pool exhausted: 29.4 % used",
    )


def test_pool_used_up_is_p1_while_postgres_refuses_the_app(small):
    """Every slot the app may use is taken: PostgreSQL refuses the next one, a superuser still sees P1."""
    opened, refused = [], None
    try:
        for _ in range(18):
            try:
                opened.append(psycopg.connect(small.app_url))
            except psycopg.OperationalError as exc:
                refused = str(exc)
                break
        assert len(opened) == 17 and refused and "remaining connection slots are reserved" in refused
        with connect(small.admin_env) as db:
            connections.check_connection_usage(db, warn_pct=80, critical_pct=200)
    finally:
        _close(opened)
    found = concluded("postgres.connection-usage")
    assert (found.status, found.severity) == ("fail", "P1")
    assert (
        found.title == "Connection pool exhausted: 105.9 % used"
    )  # 18 of 17: the superuser in a reserved slot


def test_a_role_without_pg_read_all_stats_still_counts_every_session(small):
    pool = _open(small.app_url, 5)
    try:
        with connect(small.plain_env) as db:
            usage = connections.connection_usage(db).iloc[0]
            by_state = connections.connections_by_state(db)
    finally:
        _close(pool)
    assert (usage["connections"], usage["hidden"]) == (6, 5)  # its own session is visible
    assert by_state.set_index("state").loc["(hidden)", "connections"] == 5


def test_by_state_and_by_application(small):
    pool = _open(small.app_url, 3)
    try:
        with connect(small.admin_env) as db:
            by_app = connections.connections_by_application(db)
            by_state = connections.connections_by_state(db)
    finally:
        _close(pool)
    row = by_app[by_app["application_name"] == "unit-pool"].iloc[0]
    assert (row["usename"], row["connections"], row["idle"]) == ("small_app", 3, 3)
    assert by_state.set_index("state").loc["idle", "connections"] == 3
