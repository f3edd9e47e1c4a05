"""Unit tests of opsnb.checks.postgres.activity on a real PostgreSQL: idle-in-transaction, blocked and
long-running sessions, stopping them through the gated action, and what a role that cannot see them concludes."""

from __future__ import annotations

import threading
import time

import psycopg
from checks.pg_shop import concluded, idle_worker

from opsnb.checks import findings
from opsnb.checks.postgres import activity, connect


def test_nothing_running_passes(shop, role_env):
    with connect(role_env("unit_monitor", "pg_monitor")) as db:
        activity.check_idle_in_transaction(db, min_s=0)
        activity.check_blocked(db)
        activity.check_long_running(db, min_s=0)
    assert [(c.check, c.status, c.title) for c in findings.all_conclusions()] == [
        ("postgres.idle-in-transaction", "pass", "No session is idle in a transaction for >= 0 s"),
        ("postgres.blocked-queries", "pass", "No query is waiting on a lock held by another session"),
        ("postgres.long-running-queries", "pass", "No query has been running for >= 0 s"),
    ]


def test_idle_blocked_and_stopping_them(shop, role_env, monkeypatch):
    monitor_env = role_env("unit_monitor", "pg_monitor")
    worker = idle_worker(shop.url)
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
        with connect(monitor_env) as db:
            idle = activity.check_idle_in_transaction(db, min_s=1)
            blocked = activity.check_blocked(db)
            running = activity.check_long_running(db, min_s=1)
            assert activity.idle_in_transaction(db, min_s=3600).empty
        assert list(idle["application_name"]) == ["unit-worker"]
        assert '"Order"' in idle.iloc[0]["locked_relations"]
        assert list(blocked["blocked_application"]) == ["unit-waiter"]
        assert list(blocked["blocker_pid"]) == [worker.info.backend_pid]
        assert list(running["application_name"]) == ["unit-waiter"]
        pid = worker.info.backend_pid
        assert (
            concluded("postgres.idle-in-transaction").title == f"Idle in transaction: unit-worker (pid {pid})"
        )
        blocked_found = concluded("postgres.blocked-queries")
        assert blocked_found.severity == "P2" and f"pid {pid} (unit-worker" in blocked_found.title
        assert concluded("postgres.long-running-queries").severity == "P2"

        assert list(running["blocked_by"].map(list)) == [[pid]]  # the long-running waiter is a victim
        targets = activity.runaway_backends(running, idle)
        assert dict(zip(targets["pid"], targets["how"], strict=True)) == {pid: "terminate"}  # root only
        assert list(targets["database"]) == [shop.url.rsplit("/", 1)[-1]]
        only = activity.runaway_backends(running, idle, only_pids=str(pid))
        assert list(only["pid"]) == [pid]
        assert activity.runaway_backends(None, None).empty  # checks that could not look return None

        # headless without --allow-writes: only the plan
        monkeypatch.setenv("OPSNB_HEADLESS", "1")
        monkeypatch.delenv("OPSNB_ALLOW_WRITES", raising=False)
        entry = activity.offer_stop_backends(targets, shop.env)
        assert entry["status"] == "planned" and any(
            f"pg_terminate_backend({pid})" in s and "database unit_activity" in s for s in entry["plan"]
        )
        assert not any("pg_cancel_backend" in s for s in entry["plan"])
        assert worker.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        monkeypatch.setenv("OPSNB_ALLOW_WRITES", "1")
        entry = activity.offer_stop_backends(targets, shop.env)
        assert entry["status"] == "applied"
        assert all(r["signalled"] for r in entry["result"])
        t.join(10)
        assert not t.is_alive() and not errors  # its blocker gone, the waiter's UPDATE went through
        with connect(monitor_env) as db:
            assert activity.idle_in_transaction(db).empty
            assert activity.blocked_queries(db).empty
    finally:
        t.join(10)
        worker.close()
        waiter.close()


def test_a_role_that_cannot_see_other_sessions_never_passes(shop, role_env):
    """Without pg_read_all_stats the idle worker is a row without state: "no session idle" would be a lie."""
    plain_env = role_env("unit_plain")
    worker = idle_worker(shop.url)
    try:
        with connect(plain_env) as db:
            assert activity.idle_in_transaction(db, min_s=0).empty  # what the bare query would have said
            assert activity.check_idle_in_transaction(db, min_s=0) is None
            assert activity.check_long_running(db, min_s=0) is None
            assert activity.check_blocked(db) is None
    finally:
        worker.close()
    for check_id in (
        "postgres.idle-in-transaction",
        "postgres.long-running-queries",
        "postgres.blocked-queries",
    ):
        found = concluded(check_id)
        assert (found.status, found.essential) == ("inconclusive", True)
        assert found.detail.startswith("could not see other roles' sessions (")
        assert "grant pg_monitor" in found.detail
    assert findings.verdict() == "WARN"


def test_pg_monitor_is_enough_to_see_them(shop, role_env):
    worker = idle_worker(shop.url, app="unit-monitored")
    try:
        with connect(role_env("unit_monitor", "pg_monitor")) as db:
            idle = activity.check_idle_in_transaction(db, min_s=0)
    finally:
        worker.close()
    assert list(idle["application_name"]) == ["unit-monitored"]
    assert concluded("postgres.idle-in-transaction").status == "warn"


def test_a_chain_proposes_only_its_root_blocker(shop, role_env):
    """A holds "o1"; B holds "o2" and waits for A; C waits for B: only A is a cause."""
    monitor_env = role_env("unit_monitor", "pg_monitor")
    a = idle_worker(shop.url, app="unit-root")
    b = psycopg.connect(shop.url + "?application_name=unit-middle")
    c = psycopg.connect(shop.url + "?application_name=unit-tail", autocommit=True)
    b.execute('UPDATE "Order" SET "status" = "status" WHERE "id" = %s', ("o2",))
    threads = [
        threading.Thread(
            target=b.execute, args=('UPDATE "Order" SET "status" = "status" WHERE "id" = %s', ("o1",))
        ),
    ]
    threads[0].start()
    time.sleep(0.5)
    threads.append(
        threading.Thread(
            target=c.execute, args=('UPDATE "Order" SET "status" = "status" WHERE "id" = %s', ("o2",))
        )
    )
    threads[1].start()
    try:
        time.sleep(1.2)
        with connect(monitor_env) as db:
            blocked = activity.check_blocked(db)
            running = activity.check_long_running(db, min_s=1)
            idle = activity.check_idle_in_transaction(db, min_s=1)
        pairs = {(r.blocked_pid, r.blocker_pid, bool(r.root_blocker)) for r in blocked.itertuples()}
        pa, pb, pc = (x.info.backend_pid for x in (a, b, c))
        assert pairs == {(pb, pa, True), (pc, pb, False)}
        found = concluded("postgres.blocked-queries")
        assert (
            found.title == f"2 blocked query(ies); root blockers: pid {pa} (unit-root, idle in transaction)"
        )
        assert f"pid {pc} waits for pid {pb}, which waits for pid {pa}" in found.detail
        assert set(running["pid"]) == {pb, pc}
        targets = activity.runaway_backends(running, idle)
        assert dict(zip(targets["pid"], targets["how"], strict=True)) == {pa: "terminate"}
    finally:
        a.close()  # frees B, whose rollback on close then frees C
        threads[0].join(10)
        b.close()
        threads[1].join(10)
        c.close()


def test_sessions_of_other_databases_are_not_listed(shop, pg_cluster, role_env):
    other = psycopg.connect(pg_cluster.dsn + "?application_name=unit-elsewhere")
    other.execute("SELECT 1")  # idle in transaction in the cluster's default database
    try:
        time.sleep(0.2)
        with connect(role_env("unit_monitor", "pg_monitor")) as db:
            assert activity.idle_in_transaction(db, min_s=0).empty
            activity.check_idle_in_transaction(db, min_s=0)
    finally:
        other.close()
    assert concluded("postgres.idle-in-transaction").status == "pass"
