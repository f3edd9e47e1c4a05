"""Unit tests of opsnb.checks.postgres.connections: usage against max_connections and its thresholds."""

from __future__ import annotations

import os

import psycopg
from checks.pg_shop import titles

from opsnb.checks import findings
from opsnb.checks.postgres import connect, connections


def test_usage_counts_our_sessions_against_max_connections(shop):
    extra = [psycopg.connect(shop.url + "?application_name=unit-pool") for _ in range(3)]
    try:
        with connect(shop.env) as db:
            usage = connections.connection_usage(db).to_dict("records")[0]
            max_conn = int(db.scalar("SHOW max_connections"))
            by_app = connections.connections_by_application(db)
            by_state = connections.connections_by_state(db)
    finally:
        for c in extra:
            c.close()
    assert usage["max_connections"] == max_conn
    assert usage["connections"] >= 4  # three idle + this one
    assert usage["usable_by_app"] == max_conn - usage["superuser_reserved"] - usage["reserved"]
    assert usage["used_pct"] == round(100 * usage["connections"] / max_conn, 1)
    pool = by_app[by_app["application_name"] == "unit-pool"].iloc[0]
    assert (pool["connections"], pool["idle"]) == (3, 3)
    assert by_state.set_index("state").loc["idle", "connections"] >= 3


def test_thresholds_p2_p1_and_ok(shop):
    with connect(shop.env) as db:
        connections.check_connection_usage(db)
        assert [f.severity for f in findings.all_findings()] == ["info"]
        findings.clear()
        connections.check_connection_usage(db, warn_pct=0.01, critical_pct=99)
        assert titles("P2")[0].startswith("High database connection usage")
        findings.clear()
        connections.check_connection_usage(db, warn_pct=0.01, critical_pct=0.02)
        assert titles("P1")[0].startswith("Connections exhausted")


def test_reserved_slots_reached_is_p1(pg_cluster, shop):
    """Fill every slot the app may use: PostgreSQL itself refuses the next one, the check says P1."""
    with connect(shop.env) as db:
        usage = connections.connection_usage(db).to_dict("records")[0]
    opened, refused = [], None
    try:
        for _ in range(usage["usable_by_app"] + 1):
            try:
                opened.append(psycopg.connect(shop.url))
            except psycopg.OperationalError as exc:
                refused = str(exc)
                break
        assert refused and (
            "remaining connection slots are reserved" in refused or "too many clients" in refused
        )
        with connect(_admin_env(shop)) as db:
            connections.check_connection_usage(db, warn_pct=80, critical_pct=101)
    finally:
        for c in opened:
            c.close()
        os.environ.pop("UNIT_CONN_ADMIN_URL", None)
    assert titles("P1") and titles("P1")[0].startswith("Connections exhausted")


def _admin_env(shop) -> str:
    os.environ["UNIT_CONN_ADMIN_URL"] = shop.admin  # a superuser may still use the reserved slots
    return "UNIT_CONN_ADMIN_URL"
