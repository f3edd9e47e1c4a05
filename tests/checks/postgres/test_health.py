"""Unit tests of opsnb.checks.postgres.health on a real PostgreSQL: each check finds a planted case, stays
quiet without it, and concludes inconclusive when it cannot look."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from checks.pg_shop import concluded

from opsnb.checks import findings
from opsnb.checks.postgres import connect, health


@pytest.fixture
def monitor(role_env) -> str:
    return role_env("unit_monitor", "pg_monitor")


def test_invalid_constraint_found_then_quiet_once_validated(shop):
    with connect(shop.env) as db:
        health.check_invalid_constraints(db)
        assert concluded("postgres.invalid-constraints").title == "Every constraint is validated"
        with psycopg.connect(shop.url, autocommit=True) as conn:
            conn.execute(
                'ALTER TABLE "Order" ADD CONSTRAINT "status_known" CHECK ("status" <> \'\') NOT VALID'
            )
        try:
            found = health.check_invalid_constraints(db)
            assert list(found["constraint"]) == ["status_known"] and list(found["kind"]) == ["check"]
            result = concluded("postgres.invalid-constraints")
            assert (result.status, result.severity, result.essential) == ("warn", "P3", False)
            assert result.title == "1 constraint(s) not validated: Order.status_known"
            assert 'ALTER TABLE "public"."Order" VALIDATE CONSTRAINT "status_known";' in result.detail
            with psycopg.connect(shop.url, autocommit=True) as conn:
                conn.execute('ALTER TABLE "Order" VALIDATE CONSTRAINT "status_known"')
            health.check_invalid_constraints(db)
            assert concluded("postgres.invalid-constraints").status == "pass"
        finally:
            with psycopg.connect(shop.url, autocommit=True) as conn:
                conn.execute('ALTER TABLE "Order" DROP CONSTRAINT IF EXISTS "status_known"')


def test_inactive_replication_slot_found_then_quiet(shop):
    with connect(shop.env) as db:
        health.check_replication_slots(db)
        assert concluded("postgres.replication-slots").status == "pass"
        with psycopg.connect(shop.admin, autocommit=True) as conn:
            conn.execute("SELECT pg_create_physical_replication_slot('unit_gone', true)")
        try:
            found = health.check_replication_slots(db)
            result = concluded("postgres.replication-slots")
            assert (result.status, result.severity) == ("warn", "P2")
            assert result.title == "1 inactive replication slot(s): unit_gone"
            assert "SELECT pg_drop_replication_slot('unit_gone');" in result.detail
            assert int(found.iloc[0]["retained_wal_bytes"]) >= 0
        finally:
            with psycopg.connect(shop.admin, autocommit=True) as conn:
                conn.execute("SELECT pg_drop_replication_slot('unit_gone')")
        health.check_replication_slots(db)
        assert concluded("postgres.replication-slots").status == "pass"


def test_replication_lag_is_zero_on_a_primary(shop):
    with connect(shop.env) as db:
        lag = health.check_replication_lag(db)
    assert not lag.iloc[0]["replica"] and lag.iloc[0]["lag_s"] == 0
    assert concluded("postgres.replication-lag").title == "Not a replica: no replication lag"


def test_freeze_danger_found_with_a_high_threshold_quiet_with_pghero_default(shop):
    with connect(shop.env) as db:
        health.check_autovacuum_freeze(db)  # a fresh cluster is ~200 million xids from a forced freeze
        assert concluded("postgres.autovacuum-freeze").status == "pass"
        near = health.check_autovacuum_freeze(db, threshold=2_000_000_000)
    assert "Order" in set(near["table"])
    result = concluded("postgres.autovacuum-freeze")
    assert (result.status, result.severity) == (
        "warn",
        "P3",
    ) and "near a forced freeze vacuum" in result.title


def test_old_snapshot_found_with_its_session_then_quiet(shop, monitor):
    holder = psycopg.connect(shop.url + "?application_name=unit-snapshot")
    holder.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
    holder.execute("SELECT 1")
    with psycopg.connect(shop.url, autocommit=True) as conn:
        for _ in range(5):  # five transactions that take an xid: the snapshot is now 5 transactions old
            conn.execute("SELECT txid_current()")
    try:
        with connect(monitor) as db:
            health.check_old_snapshots(db)  # PgHero-scale default: 5 transactions is nothing
            assert concluded("postgres.old-snapshots").status == "pass"
            found = health.check_old_snapshots(db, min_xid_age=5)
        assert list(found["pid"]) == [holder.info.backend_pid]
        result = concluded("postgres.old-snapshots")
        assert (result.status, result.severity) == ("warn", "P2")
        assert f"pid {holder.info.backend_pid} (unit-snapshot, database unit_health)" in result.title
    finally:
        holder.close()


def test_old_snapshots_blind_role_is_inconclusive(shop, role_env):
    holder = psycopg.connect(shop.url + "?application_name=unit-snapshot")
    holder.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
    holder.execute("SELECT 1")
    try:
        with connect(role_env("unit_plain")) as db:
            assert health.check_old_snapshots(db, min_xid_age=0) is None
    finally:
        holder.close()
    result = concluded("postgres.old-snapshots")
    assert result.status == "inconclusive" and "grant pg_monitor" in result.detail


def test_prepared_transactions(shop, pg_cluster):
    with psycopg.connect(shop.admin) as conn:
        allowed = conn.execute("SHOW max_prepared_transactions").fetchone()[0]
    with connect(shop.env) as db:
        health.check_prepared_transactions(db)
        quiet = concluded("postgres.prepared-transactions")
        assert quiet.status == "pass" and quiet.title == "No transaction prepared 300 s ago or more"
        if allowed == "0":  # the test cluster cannot plant one: the conclusion says why none can exist
            assert quiet.detail == "prepared transactions are disabled (max_prepared_transactions = 0)"
            pytest.skip("max_prepared_transactions = 0 in the test cluster: no transaction can be prepared")
        with psycopg.connect(shop.url) as conn:
            conn.execute('UPDATE "Order" SET "status" = "status" WHERE "id" = %s', ("o3",))
            conn.execute("PREPARE TRANSACTION 'unit-2pc'")
        try:
            found = health.check_prepared_transactions(db, min_age_s=0)
            assert list(found["gid"]) == ["unit-2pc"]
            assert concluded("postgres.prepared-transactions").severity == "P2"
        finally:
            with psycopg.connect(shop.url, autocommit=True) as conn:
                conn.execute("ROLLBACK PREPARED 'unit-2pc'")


def _counters_after(db, field: str, before: int) -> int:
    """The counter once the statistics have been flushed (up to ~1 s after the transaction ended)."""
    for _ in range(30):
        now = int(health.database_counters(db).iloc[0][field])
        if now > before:
            return now
        time.sleep(0.2)
    return now


def test_a_deadlock_is_counted(shop):
    with connect(shop.env) as db:
        before = int(health.database_counters(db).iloc[0]["deadlocks"])
        health.check_deadlocks(db)
        if before == 0:
            assert concluded("postgres.deadlocks").title == "No deadlock since the statistics reset"
        one, two = psycopg.connect(shop.url), psycopg.connect(shop.url)
        errors: list[Exception] = []
        one.execute('UPDATE "Order" SET "status" = "status" WHERE "id" = %s', ("o5",))
        two.execute('UPDATE "Order" SET "status" = "status" WHERE "id" = %s', ("o6",))

        def cross(conn, row):
            try:
                conn.execute('UPDATE "Order" SET "status" = "status" WHERE "id" = %s', (row,))
            except psycopg.errors.DeadlockDetected as exc:
                errors.append(exc)
            conn.rollback()

        threads = [
            threading.Thread(target=cross, args=(one, "o6")),
            threading.Thread(target=cross, args=(two, "o5")),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(15)
        one.close()
        two.close()
        assert len(errors) == 1  # PostgreSQL aborted one of the two
        assert _counters_after(db, "deadlocks", before) == before + 1
        findings.clear()
        counters = health.check_deadlocks(db)
    result = concluded("postgres.deadlocks")
    assert (result.status, result.severity) == ("warn", "P3")
    assert result.title == f"{before + 1} deadlock(s) in unit_health since the statistics reset"
    assert int(counters.iloc[0]["deadlocks"]) == before + 1


def test_temp_files_over_threshold(shop):
    with connect(shop.env) as db:
        health.check_temp_files(db)
        assert concluded("postgres.temp-files").status == "pass"  # far under 1 GiB
        before = int(health.database_counters(db).iloc[0]["temp_bytes"])
        with psycopg.connect(shop.url, autocommit=True) as conn:
            conn.execute("SET work_mem = '64kB'")
            conn.execute('SELECT * FROM "Order" ORDER BY "userId", "status" DESC').fetchall()
        assert _counters_after(db, "temp_bytes", before) > before
        health.check_temp_files(db, max_temp_bytes=0)
    result = concluded("postgres.temp-files")
    assert (result.status, result.severity) == ("warn", "P3") and "temp file(s)" in result.title


def test_settings_table(shop):
    with connect(shop.env) as db:
        table = health.check_settings(db)
    rows = table.set_index("name")
    assert rows.loc["autovacuum", "setting"] == "on"
    assert "forever" in rows.loc["statement_timeout", "note"]
    assert set(table["name"]) <= set(health.SETTING_NOTES) and len(table) >= 10
    result = concluded("postgres.settings")
    assert (result.status, result.essential) == ("pass", False)
