"""Unit tests of opsnb.checks.postgres.roles on a real PostgreSQL: what a role could change, what it may see."""

from __future__ import annotations

import psycopg
import pytest
from checks.pg_shop import concluded, idle_worker

from opsnb.checks.findings import CouldNotLook
from opsnb.checks.postgres import connect, roles


def test_the_apps_role_could_write_the_reader_could_not(pg_cluster, shop, role_env):
    reader_env = role_env("unit_reader")
    with psycopg.connect(shop.admin, autocommit=True) as conn:
        for statement in roles.reader_role_statements(
            "unit_reader", None, shop.url.rsplit("/", 1)[-1], "unit_app"
        ):
            conn.execute(statement)
    with connect(shop.env) as db:
        roles.check_read_only_role(db, shop.env)
    app = concluded("safety.read-only-role")
    assert (app.status, app.severity) == ("warn", "P3")
    assert "table writes" in app.detail and "Order" in app.detail
    with connect(reader_env) as db:
        found = roles.check_read_only_role(db, reader_env)
    reader = concluded("safety.read-only-role")  # the re-run replaced the first conclusion
    assert (reader.status, reader.title) == (
        "pass",
        f"The read session's role (${reader_env}) cannot change the database",
    )
    assert found.empty


def test_sessions_of_other_roles_hidden_without_pg_read_all_stats(shop, role_env):
    plain_env, monitor_env = role_env("unit_plain"), role_env("unit_monitor", "pg_monitor")
    worker = idle_worker(shop.url)
    try:
        with connect(plain_env) as db:
            seen = roles.session_visibility(db).iloc[0]
            with pytest.raises(CouldNotLook) as blind:
                roles.require_visible_sessions(db)
        with connect(monitor_env) as db:
            monitor = roles.session_visibility(db).iloc[0]
            roles.require_visible_sessions(db)  # sees everything: no exception
    finally:
        worker.close()
    assert (bool(seen["reads_all_stats"]), seen["role"]) == (False, "unit_plain")
    assert seen["hidden_sessions"] >= 1  # the app's idle worker at least
    assert blind.value.why.startswith("could not see other roles' sessions (")
    assert blind.value.hint == roles.STATS_HINT and "pg_monitor" in roles.STATS_HINT
    assert (bool(monitor["reads_all_stats"]), monitor["hidden_sessions"]) == (True, 0)
