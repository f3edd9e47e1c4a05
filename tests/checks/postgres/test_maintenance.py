"""Unit tests of opsnb.checks.postgres.maintenance: vacuum/analyze, dead tuples, wraparound, sequences."""

from __future__ import annotations

import psycopg
from checks.pg_shop import titles

from opsnb.checks import findings
from opsnb.checks.postgres import connect, maintenance


def test_vacuum_and_dead_tuples(shop):
    with psycopg.connect(shop.url, autocommit=True) as conn:
        conn.execute('CREATE TABLE "Churn" ("id" int) WITH (autovacuum_enabled = false)')
        conn.execute('INSERT INTO "Churn" SELECT g FROM generate_series(1, 30000) g')
        conn.execute('DELETE FROM "Churn" WHERE "id" % 2 = 0')
    try:
        with connect(shop.env) as db:
            maintenance.check_dead_tuples(db, max_dead_pct=20, min_dead=10_000)
            assert titles("P3") == ["Churn: 50.0 % dead tuples (15000)"]
            findings.clear()
            status = maintenance.check_vacuum(db, max_age_days=7, min_rows=1000)
            churn = status.set_index("table").loc["Churn"]
            assert churn["last_vacuum"] is None or churn["last_vacuum"] != churn["last_vacuum"]
            (stale,) = findings.all_findings()
            assert stale.severity == "P3" and "Churn never vacuumed" in stale.detail
            assert "Order never" not in stale.detail  # the fixture vacuumed it
            with psycopg.connect(shop.url, autocommit=True) as conn:
                conn.execute('VACUUM ANALYZE "Churn"')
            findings.clear()
            maintenance.check_dead_tuples(db)
            maintenance.check_vacuum(db)
            assert not titles("P3")
    finally:
        with psycopg.connect(shop.url, autocommit=True) as conn:
            conn.execute('DROP TABLE "Churn"')


def test_wraparound_thresholds(shop):
    with connect(shop.env) as db:
        df = maintenance.check_wraparound(db)
        assert df.iloc[0]["kind"] == "database" and df.iloc[0]["transactions_left"] > 2_000_000_000
        assert [f.severity for f in findings.all_findings()] == ["info"]
        findings.clear()
        maintenance.check_wraparound(db, warn_left=maintenance.XID_LIMIT)
        assert titles("P2")[0].startswith("Transaction ID wraparound")
        findings.clear()
        maintenance.check_wraparound(db, critical_left=maintenance.XID_LIMIT)
        assert titles("P1")[0].startswith("Transaction ID wraparound")


def test_sequences_near_their_max(shop):
    with psycopg.connect(shop.url, autocommit=True) as conn:
        conn.execute("CREATE SEQUENCE tiny_seq AS smallint MAXVALUE 100")
        conn.execute("SELECT setval('tiny_seq', 95)")
        conn.execute("CREATE SEQUENCE roomy_seq")
        conn.execute("SELECT nextval('roomy_seq')")
    try:
        with connect(shop.env) as db:
            df = maintenance.check_sequences(db)
    finally:
        with psycopg.connect(shop.url, autocommit=True) as conn:
            conn.execute("DROP SEQUENCE tiny_seq, roomy_seq")
    assert df.iloc[0]["sequence"] == "tiny_seq" and df.iloc[0]["used_pct"] == 95.0
    assert titles("P2") == ["Sequence tiny_seq at 95.0 % of its maximum"]
