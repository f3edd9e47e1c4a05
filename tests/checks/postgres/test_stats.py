"""Unit tests of opsnb.checks.postgres.stats against a real PostgreSQL (the session's bare cluster)."""

from __future__ import annotations

import psycopg
import pytest
from checks.pg_shop import titles

from opsnb.checks import findings
from opsnb.checks.postgres import connect, stats
from opsnb.checks.postgres.session import DatabaseError


def test_time_columns_both_generations():
    assert stats.time_columns(["calls", "total_exec_time", "mean_exec_time"]) == (
        "total_exec_time",
        "mean_exec_time",
    )
    assert stats.time_columns(["calls", "total_time", "mean_time"]) == ("total_time", "mean_time")


def test_statements_available_reports_columns_and_reset_time(shop):
    with connect(shop.env) as db:
        seen = stats.check_statements_available(db)
    assert seen["usable"] is True
    assert (seen["total"], seen["mean"]) == ("total_exec_time", "mean_exec_time")  # the cluster is PG >= 13
    assert seen["reset_at"] is not None  # PG14+: pg_stat_statements_info
    assert titles() == ["pg_stat_statements is enabled"]
    assert "statistics cover the time since" in findings.all_findings()[0].detail


def test_missing_extension_is_a_p2_saying_how_to_enable_it(pg_cluster, shop):
    with psycopg.connect(shop.admin, autocommit=True) as conn:
        conn.execute("DROP EXTENSION pg_stat_statements")
    try:
        with connect(shop.env) as db:
            seen = stats.check_statements_available(db)
    finally:
        with psycopg.connect(shop.admin, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION pg_stat_statements")
    assert seen["usable"] is False
    (found,) = findings.all_findings()
    assert (found.severity, found.title) == ("P2", "pg_stat_statements is not enabled")
    assert "CREATE EXTENSION pg_stat_statements" in found.detail
    assert (
        "shared_preload_libraries" in found.detail and "Neon" in found.detail and "suspends" in found.detail
    )


def test_cache_hit_rate_threshold(shop):
    with connect(shop.env) as db:
        db.scalar('SELECT count(*) FROM "Order"')
        rates = stats.check_cache_hit_rates(db, min_hit_rate_pct=99, min_block_reads=1)
        assert set(rates["kind"]) == {"table", "index"}
        table_rate = float(rates.set_index("kind").loc["table", "hit_rate_pct"])
        assert 0 <= table_rate <= 100
        findings.clear()
        stats.check_cache_hit_rates(db, min_hit_rate_pct=100.5, min_block_reads=1)  # nothing can reach it
    assert any(t.startswith("Table cache hit rate") for t in titles("P3"))


def test_guarded_turns_a_refusal_into_an_info_finding(shop):
    with connect(shop.env) as db:
        got = stats.guarded(
            "demo", "something forbidden", lambda: db.query("SELECT * FROM pg_authid"), empty="none"
        )
    assert got == "none"
    (found,) = findings.all_findings()
    assert found.severity == "info" and found.title == "Could not check something forbidden"
    assert "permission denied" in found.detail


def test_guarded_lets_other_errors_through():
    with pytest.raises(ZeroDivisionError):
        stats.guarded("demo", "x", lambda: 1 / 0)
    assert issubclass(DatabaseError, Exception)
