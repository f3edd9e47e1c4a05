"""Unit tests of opsnb.checks.postgres.stats on a real PostgreSQL: cache hit rates and their threshold."""

from __future__ import annotations

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


def test_too_few_reads_is_not_a_pass(shop):
    with psycopg.connect(shop.admin, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_reset()")
    with connect(shop.env) as db:
        assert stats.check_cache_hit_rate(db, min_block_reads=1_000_000) is None
    found = concluded("postgres.cache-hit-rate")
    assert found.status == "inconclusive" and found.detail.startswith(
        "too few block reads to judge a cache hit rate"
    )
