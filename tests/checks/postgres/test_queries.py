"""Unit tests of opsnb.checks.postgres.queries: statements, EXPLAIN, sessions running now, stopping backends."""

from __future__ import annotations

import os
import threading
import time

import psycopg
import pytest
from checks.pg_shop import titles

from opsnb.checks.postgres import connect, queries, stats


def _statements(db):
    return stats.check_statements_available(db)


def test_top_and_slow_statements(shop):
    with psycopg.connect(shop.url, autocommit=True) as conn:
        for _ in range(3):
            conn.execute("SELECT pg_sleep(0.015), 'slow one'")
        for n in range(20):
            conn.execute('SELECT count(*) FROM "Order" WHERE "status" = %s', (f"s{n}",))
    with connect(shop.env) as db:
        seen = _statements(db)
        by_mean = queries.top_statements(db, seen["total"], seen["mean"], by="mean", limit=5)
        by_total = queries.top_statements(db, seen["total"], seen["mean"], by="total", limit=50)
        slow = queries.check_slow_statements(db, seen, min_mean_ms=10, min_calls=3)
        none = queries.slow_statements(db, seen["total"], seen["mean"], min_mean_ms=10, min_calls=4)
    assert "pg_sleep" in by_mean.iloc[0]["query"]
    assert list(by_mean["mean_ms"]) == sorted(by_mean["mean_ms"], reverse=True)
    assert list(by_total["total_ms"]) == sorted(by_total["total_ms"], reverse=True)
    assert 99 <= by_total["share_pct"].sum() <= 100.5  # shares of everything this database ran
    counted = by_total[by_total["query"].str.contains('"status" = \\$1', regex=True)]
    assert int(counted["calls"].iloc[0]) == 20  # constants normalized into one statement
    assert list(slow["query"].str.contains("pg_sleep")) == [True]
    assert none.empty  # 3 calls < 4
    assert titles("P2") == ["1 slow statement(s) (mean >= 10 ms and >= 3 calls)"]
    with pytest.raises(ValueError):
        queries.top_statements(None, "total_exec_time; DROP", "mean_exec_time")


def test_top_statements_without_extension_is_empty_not_an_error(shop):
    with connect(shop.env) as db:
        df = queries.check_top_statements(db, {"usable": False}, by="total")
    assert df.empty and "query" in df.columns


def test_plot_top_statements_draws_one_bar_per_statement(shop):
    import pandas as pd

    df = pd.DataFrame({"query": ["SELECT 1", "SELECT 2", "SELECT 3"], "total_ms": [3.0, 2.0, 1.0]})
    fig = queries.plot_top_statements(df, value="total_ms", limit=2)
    ax = fig.axes[0]
    assert len(ax.patches) == 2 and ax.get_xlabel() == "total time (ms)"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["SELECT 2", "SELECT 1"]


def _texts(statements):
    return [s.as_string(None) for s in statements]


def test_explain_statements_by_server_version():
    q = 'SELECT * FROM "Order" WHERE "userId" = $1 AND "status" = $2'
    assert _texts(queries.explain_statements(q, 160000)) == [f"EXPLAIN (GENERIC_PLAN, FORMAT JSON) {q}"]
    old = _texts(queries.explain_statements(q + ";", 150004))
    assert old[0] == "SET plan_cache_mode = force_generic_plan"
    assert old[1] == f"PREPARE opsnb_explain AS {q}"
    assert old[2] == "EXPLAIN (FORMAT JSON) EXECUTE opsnb_explain(NULL, NULL)"
    assert _texts(queries.explain_statements("SELECT 1", 150000)) == ["EXPLAIN (FORMAT JSON) SELECT 1"]
    for bad in ('DELETE FROM "Order" WHERE "id" = $1', "SELECT 1; DROP TABLE x", "VACUUM"):
        with pytest.raises(ValueError):
            queries.explain_statements(bad, 150000)


def test_explain_generic_shows_the_seq_scan_of_a_normalized_statement(shop):
    with connect(shop.env) as db:
        version = stats.server_version_num(db)
        plan = queries.explain_generic(db, 'SELECT "id" FROM "Order" WHERE "userId" = $1 LIMIT $2', version)
        # the session is usable afterwards: nothing prepared is left behind, the setting is back
        assert db.scalar("SELECT count(*) FROM pg_prepared_statements") == 0
        assert db.scalar("SHOW plan_cache_mode") == "auto"
    scans = [n for n in queries.plan_nodes(plan) if n["Node Type"] == "Seq Scan"]
    assert scans and scans[0]["Relation Name"] == "Order" and '"userId"' in scans[0]["Filter"]
    text = queries.plan_text(plan)
    assert "Seq Scan on Order" in text and 'Filter: ("userId" = $1)' in text


def _idle_worker(url: str):
    conn = psycopg.connect(url + "?application_name=unit-worker")
    conn.execute('UPDATE "Order" SET "status" = "status" WHERE "id" = %s', ("o1",))
    return conn  # transaction left open: idle in transaction


def test_idle_blocked_and_stopping_them(shop, monkeypatch):
    worker = _idle_worker(shop.url)
    waiter = psycopg.connect(shop.url + "?application_name=unit-waiter", autocommit=True)
    errors: list[Exception] = []

    def wait_for_row():
        try:
            waiter.execute('UPDATE "Order" SET "status" = "status" WHERE "id" = %s', ("o1",))
        except psycopg.Error as exc:
            errors.append(exc)

    t = threading.Thread(target=wait_for_row)
    t.start()
    try:
        time.sleep(1.2)
        with connect(shop.env) as db:
            idle = queries.check_idle_in_transaction(db, min_s=1)
            blocked = queries.check_blocked(db)
            running = queries.check_long_running(db, min_s=1)
            assert queries.idle_in_transaction(db, min_s=3600).empty
        assert list(idle["application_name"]) == ["unit-worker"]
        assert '"Order"' in idle.iloc[0]["locked_relations"]
        assert list(blocked["blocked_application"]) == ["unit-waiter"]
        assert list(blocked["blocker_pid"]) == [worker.info.backend_pid]
        assert list(running["application_name"]) == ["unit-waiter"]
        p2 = titles("P2")
        assert f"Idle in transaction: unit-worker (pid {worker.info.backend_pid})" in p2
        assert any("blocked" in t and f"pid {worker.info.backend_pid} (unit-worker" in t for t in p2)

        targets = queries.runaway_backends(running, idle)
        assert dict(zip(targets["pid"], targets["how"], strict=True)) == {
            waiter.info.backend_pid: "cancel",
            worker.info.backend_pid: "terminate",
        }
        only = queries.runaway_backends(running, idle, only_pids=str(worker.info.backend_pid))
        assert list(only["pid"]) == [worker.info.backend_pid]

        # headless without --allow-writes: only the plan
        monkeypatch.setenv("OPSNB_HEADLESS", "1")
        monkeypatch.delenv("OPSNB_ALLOW_WRITES", raising=False)
        entry = queries.offer_stop_backends(targets, shop.env)
        assert entry["status"] == "planned" and any(
            f"pg_terminate_backend({worker.info.backend_pid})" in s for s in entry["plan"]
        )
        assert worker.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        monkeypatch.setenv("OPSNB_ALLOW_WRITES", "1")
        entry = queries.offer_stop_backends(targets, shop.env)
        assert entry["status"] == "applied"
        assert all(r["signalled"] for r in entry["result"])
        t.join(10)
        assert errors and isinstance(errors[0], psycopg.errors.QueryCanceled)
        with connect(shop.env) as db:
            assert queries.idle_in_transaction(db).empty
            assert queries.blocked_queries(db).empty
    finally:
        t.join(10)
        worker.close()
        waiter.close()


def test_plain_role_sees_hidden_sessions_as_info(pg_cluster, shop):
    with psycopg.connect(pg_cluster.dsn, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'unit_plain'").fetchone():
            conn.execute("CREATE ROLE unit_plain LOGIN PASSWORD 'unit_plain_pw'")
    worker = _idle_worker(shop.url)
    os.environ["UNIT_PLAIN_URL"] = pg_cluster.postgres.dsn(
        "unit_plain", "unit_plain_pw", shop.url.rsplit("/", 1)[-1]
    )
    try:
        with connect("UNIT_PLAIN_URL") as db:
            hidden = queries.check_hidden_sessions(db)
            idle = queries.check_idle_in_transaction(db, min_s=0)
    finally:
        worker.close()
        os.environ.pop("UNIT_PLAIN_URL")
    assert hidden >= 1 and idle.empty
    assert any("hidden from this role" in t for t in titles("info"))
    assert not titles("P2")
