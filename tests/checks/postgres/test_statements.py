"""Unit tests of opsnb.checks.postgres.statements on a real PostgreSQL: the pg_stat_statements probe, top and
slow statements, and what a role that cannot read them concludes."""

from __future__ import annotations

import psycopg
import pytest
from checks.pg_shop import concluded, titles

from opsnb.checks import findings
from opsnb.checks.postgres import connect, statements


def _workload(shop) -> None:
    """Fresh statistics, then three slow statements and twenty fast ones (one normalized statement)."""
    with psycopg.connect(shop.admin, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_statements_reset()")
    with psycopg.connect(shop.url, autocommit=True) as conn:
        for _ in range(3):
            conn.execute("SELECT pg_sleep(0.015), 'slow one'")
        for n in range(20):
            conn.execute('SELECT count(*) FROM "Order" WHERE "status" = %s', (f"s{n}",))


def test_time_columns_both_generations():
    assert statements.time_columns(["calls", "total_exec_time", "mean_exec_time"]) == (
        "total_exec_time",
        "mean_exec_time",
    )
    assert statements.time_columns(["calls", "total_time", "mean_time"]) == ("total_time", "mean_time")


def test_probe_and_a_passing_statement_stats_check(shop, role_env):
    _workload(shop)
    with connect(role_env("unit_monitor", "pg_monitor")) as db:
        seen = statements.statement_stats(db)
    assert seen.usable and (seen.total, seen.mean) == ("total_exec_time", "mean_exec_time")  # PG >= 13
    assert seen.statements >= 2 and seen.hidden_texts == 0  # pg_monitor reads every role's statements
    assert seen.reset_at is not None  # PG14+: pg_stat_statements_info
    evidence = statements.check_statement_stats(seen)
    found = concluded("postgres.statement-stats")
    assert (found.status, found.title) == ("pass", "pg_stat_statements is enabled")
    assert f"{seen.statements} statement(s) recorded for this database since" in found.detail
    assert evidence.iloc[0]["usable"] and list(evidence["statements"]) == [seen.statements]


def test_top_and_slow_statements(shop):
    _workload(shop)
    with connect(shop.env) as db:
        seen = statements.statement_stats(db)
        by_mean = statements.top_statements(db, seen, by="mean", limit=5)
        by_total = statements.top_statements(db, seen, by="total", limit=50)
        slow = statements.check_slow_statements(db, seen, min_mean_ms=10, min_calls=3)
        none = statements.slow_statements(db, seen, min_mean_ms=10, min_calls=4)
    assert "pg_sleep" in by_mean.iloc[0]["query"]
    assert list(by_mean["mean_ms"]) == sorted(by_mean["mean_ms"], reverse=True)
    assert list(by_total["total_ms"]) == sorted(by_total["total_ms"], reverse=True)
    assert 99 <= by_total["share_pct"].sum() <= 100.5  # shares of everything this database ran
    counted = by_total[by_total["query"].str.contains('"status" = \\$1', regex=True)]
    assert int(counted["calls"].iloc[0]) == 20  # constants normalized into one statement
    assert list(slow["query"].str.contains("pg_sleep")) == [True]
    assert none.empty  # 3 calls < 4
    found = concluded("postgres.slow-statements")
    assert (found.status, found.severity) == ("warn", "P2")
    assert found.title == "1 statement(s) slow by PgHero's rule (mean >= 10 ms and >= 3 calls)"
    assert "pg_sleep" in found.detail
    findings.clear()
    with connect(shop.env) as db:
        statements.check_slow_statements(db, seen, min_mean_ms=10_000, min_calls=1)
    assert (concluded("postgres.slow-statements").status, titles()) == (
        "pass",
        ["No statement is slow (mean >= 10000 ms and >= 1 calls)"],
    )
    with pytest.raises(ValueError):  # time columns come from a closed set, before any SQL runs
        statements.top_statements(None, statements.StatementStats(True, total="total_exec_time; DROP"))


def test_missing_extension_is_inconclusive_saying_how_to_enable_it(shop):
    with psycopg.connect(shop.admin, autocommit=True) as conn:
        conn.execute("DROP EXTENSION pg_stat_statements")
    try:
        with connect(shop.env) as db:
            seen = statements.statement_stats(db)
            top = statements.top_statements(db, seen, by="total")
            assert statements.check_statement_stats(seen) is None
            assert statements.check_slow_statements(db, seen) is None
    finally:
        with psycopg.connect(shop.admin, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION pg_stat_statements")
    assert not seen.usable and "not installed in this database" in seen.why
    assert top.empty and list(top.columns) == statements.TOP_COLUMNS
    for check_id in ("postgres.statement-stats", "postgres.slow-statements"):
        found = concluded(check_id)
        assert (found.status, found.essential) == ("inconclusive", True)
        assert (
            "CREATE EXTENSION pg_stat_statements" in found.detail
            and "shared_preload_libraries" in found.detail
        )
        assert "Neon" in found.detail and "suspends" in found.detail
    assert findings.verdict() == "WARN"  # an essential check that could not look


def test_hidden_statement_texts_are_not_a_pass(shop, role_env):
    """A role without pg_read_all_stats reads the timings of other roles' statements but not their text."""
    _workload(shop)
    plain_env = role_env("unit_plain")
    with connect(plain_env) as db:
        seen = statements.statement_stats(db)
        statements.check_statement_stats(seen)
        slow = statements.check_slow_statements(db, seen, min_mean_ms=10, min_calls=3)
    assert seen.usable and seen.hidden_texts >= 2  # the app's statements (its own probe stays readable)
    found = concluded("postgres.statement-stats")
    assert found.status == "inconclusive"
    assert (
        found.title
        == f"pg_stat_statements hides {seen.hidden_texts} of {seen.statements} statement texts from this role"
    )
    assert "grant pg_monitor" in found.detail
    # the slow one is still found by its timings; the conclusion says its text is hidden
    assert list(slow["query"]) == [statements.HIDDEN_TEXT]
    slow_found = concluded("postgres.slow-statements")
    assert (slow_found.status, slow_found.severity) == ("warn", "P2")
    assert "The text of 1 of them is hidden from this role" in slow_found.detail


def test_plot_top_statements_draws_one_bar_per_statement():
    import pandas as pd

    df = pd.DataFrame({"query": ["SELECT 1", "SELECT 2", "SELECT 3"], "total_ms": [3.0, 2.0, 1.0]})
    fig = statements.plot_top_statements(df, value="total_ms", limit=2)
    ax = fig.axes[0]
    assert len(ax.patches) == 2 and ax.get_xlabel() == "total time (ms)"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["SELECT 2", "SELECT 1"]


def test_statements_of_other_databases_are_left_out(shop, pg_cluster):
    """pg_stat_statements is cluster-wide: another database's work must not be judged as this one's."""
    _workload(shop)
    with psycopg.connect(pg_cluster.dsn, autocommit=True) as conn:
        for _ in range(3):
            conn.execute("SELECT pg_sleep(0.001) AS elsewhere_marker")
    with psycopg.connect(shop.admin) as conn:  # a superuser reads every text
        elsewhere = {
            r[0]
            for r in conn.execute(
                "SELECT queryid FROM pg_stat_statements WHERE query LIKE '%elsewhere_marker%'"
            )
        }
    assert elsewhere  # the view does show it...
    with connect(shop.env) as db:
        seen = statements.statement_stats(db)
        top = statements.top_statements(db, seen, by="total", limit=1000)
        slow = statements.slow_statements(db, seen, min_mean_ms=0, min_calls=1)
    assert not elsewhere & set(top["queryid"]) and not elsewhere & set(slow["queryid"])  # ...not as ours
    assert top["query"].str.contains('"Order"').any()


def test_preloaded_is_read_from_the_setting():
    assert statements.preloaded("pg_stat_statements") is True
    assert statements.preloaded("auto_explain, pg_stat_statements") is True
    assert statements.preloaded("auto_explain") is False and statements.preloaded("") is False
    assert statements.preloaded(None) is None  # hidden from this role
    assert statements.StatementStats(False, preloaded=True).hint == statements.CREATE_HINT
    assert statements.StatementStats(False, preloaded=None).hint == statements.ENABLE_HINT


def test_the_probe_reports_the_preloaded_library(shop, pg_cluster):
    with psycopg.connect(pg_cluster.dsn, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS unit_bare")
        conn.execute("CREATE DATABASE unit_bare")
    import os

    os.environ["UNIT_BARE_URL"] = pg_cluster.dsn_for("unit_bare")
    try:
        with connect("UNIT_BARE_URL") as db:  # a superuser: the setting is visible
            seen = statements.statement_stats(db)
            statements.check_statement_stats(seen)
    finally:
        os.environ.pop("UNIT_BARE_URL")
        with psycopg.connect(pg_cluster.dsn, autocommit=True) as conn:
            conn.execute("DROP DATABASE unit_bare WITH (FORCE)")
    assert not seen.usable and seen.preloaded is True
    found = concluded("postgres.statement-stats")
    assert found.status == "inconclusive" and statements.CREATE_HINT in found.detail
