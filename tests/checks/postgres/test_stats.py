"""Unit tests of opsnb.checks.postgres.stats on a real PostgreSQL: cache hit rates and their threshold."""

from __future__ import annotations

import time

import psycopg
from checks.pg_shop import concluded

from opsnb.checks.postgres import connect, stats


def test_cache_hit_rate_threshold(shop):
    with connect(shop.env) as db:
        db.scalar('SELECT count(*) FROM "Order"')
        rates = stats.check_cache_hit_rate(db, min_hit_rate_pct=99, min_block_reads=1)
        assert set(rates["kind"]) == {"table", "index"}
        table_rate = float(rates.set_index("kind").loc["table", "hit_rate_pct"])
        assert 0 <= table_rate <= 100
        stats.check_cache_hit_rate(db, min_hit_rate_pct=100.5, min_block_reads=1)  # nothing can reach it
    found = concluded("postgres.cache-hit-rate")
    assert (found.status, found.severity, found.essential) == ("warn", "P3", False)
    assert found.title.startswith("Cache hit rate below 100.5 %: table ")
    assert "Neon compute" not in found.detail


def test_the_cause_follows_the_evidence():
    import pandas as pd

    cols = [
        "schema",
        "table",
        "heap_blks_read",
        "heap_blks_hit",
        "seq_scan",
        "idx_scan",
        "seq_tup_read",
        "idx_tup_fetch",
    ]
    scanned = pd.DataFrame([["public", "Order", 900, 10, 40, 2, 480_000, 20]], columns=cols)
    assert stats.likely_cause(scanned).startswith(
        "Most blocks read from disk come from sequential scans of Order"
    )
    assert "missing index" in stats.likely_cause(scanned) and "memory" in stats.likely_cause(scanned)
    indexed = pd.DataFrame([["public", "Order", 900, 10, 1, 4000, 12_000, 400_000]], columns=cols)
    assert "read through indexes: the working set does not fit in memory" in stats.likely_cause(indexed)


def test_disk_readers_name_the_seq_scanned_table(shop):
    with psycopg.connect(shop.admin, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_reset()")
    with psycopg.connect(shop.url, autocommit=True) as conn:
        for _ in range(3):
            conn.execute('SELECT count(*) FROM "Order" WHERE "status" = \'x\'')
    time.sleep(1.2)  # statistics are flushed at most once a second
    with connect(shop.env) as db:
        readers = stats.disk_readers(db)
    if len(readers):  # blocks may all have been in shared_buffers (hits only): then nobody read from disk
        assert readers.iloc[0]["seq_scan"] >= 3


def test_too_few_reads_is_not_a_pass(shop):
    with psycopg.connect(shop.admin, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_reset()")
    with connect(shop.env) as db:
        assert stats.check_cache_hit_rate(db, min_block_reads=1_000_000) is None
    found = concluded("postgres.cache-hit-rate")
    assert found.status == "inconclusive" and found.detail.startswith(
        "too few block reads to judge a cache hit rate"
    )
