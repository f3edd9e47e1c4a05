"""Unit tests of opsnb.checks.postgres.maintenance on a real PostgreSQL: vacuum/analyze, dead tuples,
wraparound, sequences."""

from __future__ import annotations

import pandas as pd
import psycopg
from checks.pg_shop import concluded

from opsnb.checks import findings
from opsnb.checks.postgres import connect, maintenance


def test_dead_tuples_and_vacuum(shop):
    with psycopg.connect(shop.url, autocommit=True) as conn:
        conn.execute('CREATE TABLE "Churn" ("id" int) WITH (autovacuum_enabled = false)')
        conn.execute('INSERT INTO "Churn" SELECT g FROM generate_series(1, 30000) g')
        conn.execute('DELETE FROM "Churn" WHERE "id" % 2 = 0')
    try:
        with connect(shop.env) as db:
            bloated = maintenance.check_dead_tuples(db, max_dead_pct=20, min_dead=10_000)
            assert list(bloated["table"]) == ["Churn"]
            found = concluded("postgres.dead-tuples")
            assert (found.status, found.severity) == ("warn", "P3")
            assert found.title == "1 table(s) with >= 20 % dead tuples: Churn 50.0 % (15000)"
            status = maintenance.check_vacuum(db, max_age_days=7, min_rows=1000)
            churn = status.set_index("table").loc["Churn"]
            assert churn["last_vacuum"] is None or churn["last_vacuum"] != churn["last_vacuum"]
            stale = concluded("postgres.vacuum-analyze")
            assert (stale.status, stale.severity, stale.essential) == ("warn", "P3", False)
            assert "Churn not vacuumed since the statistics reset and not analyzed" in stale.detail
            assert "Order" not in stale.title  # the fixture vacuumed it
            with psycopg.connect(shop.url, autocommit=True) as conn:
                conn.execute('VACUUM ANALYZE "Churn"')
            findings.clear()
            maintenance.check_dead_tuples(db)
            maintenance.check_vacuum(db)
    finally:
        with psycopg.connect(shop.url, autocommit=True) as conn:
            conn.execute('DROP TABLE "Churn"')
    assert [(c.check, c.status) for c in findings.all_conclusions()] == [
        ("postgres.dead-tuples", "pass"),
        ("postgres.vacuum-analyze", "pass"),
    ]


def test_vacuum_times_forgotten_by_a_recent_reset_are_unknown_not_stale(shop):
    """pg_stat_reset() forgets last_vacuum: within the window that is no evidence either way."""
    with psycopg.connect(shop.admin, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_reset()")
    with connect(shop.env) as db:
        assert maintenance.check_vacuum(db, max_age_days=7) is None
        found = concluded("postgres.vacuum-analyze")
        assert found.status == "inconclusive" and found.detail.startswith(
            "could not tell whether Order was vacuumed and analyzed within 7 days: the statistics that record it "
            "were reset 0 days ago"
        )
        with psycopg.connect(shop.url, autocommit=True) as conn:
            conn.execute('VACUUM ANALYZE "Order"')
        maintenance.check_vacuum(db, max_age_days=7)  # the times are recorded again
    assert concluded("postgres.vacuum-analyze").status == "pass"


def test_wraparound_thresholds(shop):
    with connect(shop.env) as db:
        df = maintenance.check_wraparound(db)
        assert df.iloc[0]["kind"] == "database" and df.iloc[0]["transactions_left"] > 2_000_000_000
        assert concluded("postgres.wraparound").status == "pass"
        maintenance.check_wraparound(db, warn_left=maintenance.XID_LIMIT)
        warned = concluded("postgres.wraparound")
        assert (warned.status, warned.severity) == ("warn", "P2")
        assert warned.title.startswith("Transaction ID wraparound: ")
        maintenance.check_wraparound(db, critical_left=maintenance.XID_LIMIT)
    failed = concluded("postgres.wraparound")
    assert (failed.status, failed.severity, failed.essential) == ("fail", "P1", True)


def test_sequences_near_their_max(shop):
    with psycopg.connect(shop.url, autocommit=True) as conn:
        conn.execute("CREATE SEQUENCE tiny_seq AS smallint MAXVALUE 100")
        conn.execute("SELECT setval('tiny_seq', 95)")
        conn.execute("CREATE SEQUENCE roomy_seq")
        conn.execute("SELECT nextval('roomy_seq')")
    try:
        with connect(shop.env) as db:
            near = maintenance.check_sequences(db)
    finally:
        with psycopg.connect(shop.url, autocommit=True) as conn:
            conn.execute("DROP SEQUENCE tiny_seq, roomy_seq")
    assert list(near["sequence"]) == ["tiny_seq"] and near.iloc[0]["used_pct"] == 95.0
    found = concluded("postgres.sequences")
    assert (found.status, found.severity) == ("warn", "P2")
    assert found.title == "1 sequence(s) above 90 % of their maximum: tiny_seq 95.0 %"


def test_sequences_this_role_may_not_read_are_not_a_pass(shop, role_env):
    """pg_sequences shows last_value NULL for a sequence the role may not read: not "0 % used"."""
    with psycopg.connect(shop.url, autocommit=True) as conn:
        conn.execute("CREATE SEQUENCE secret_seq")
        conn.execute("SELECT setval('secret_seq', 42)")
    try:
        with connect(role_env("unit_plain")) as db:
            seqs = maintenance.sequences(db)
            assert maintenance.check_sequences(db) is None
            blind = concluded("postgres.sequences")
        with connect(role_env("unit_reads_tables", "pg_read_all_data")) as db:
            maintenance.check_sequences(db)
    finally:
        with psycopg.connect(shop.url, autocommit=True) as conn:
            conn.execute("DROP SEQUENCE secret_seq")
    row = seqs.set_index("sequence").loc["secret_seq"]
    assert not row["readable"] and pd.isna(row["last_value"])  # NULL, not a number
    assert (blind.status, blind.essential) == ("inconclusive", True)
    assert blind.detail.startswith("could not read 1 of 1 sequence(s): secret_seq")
    assert concluded("postgres.sequences").status == "pass"  # pg_read_all_data reads them
