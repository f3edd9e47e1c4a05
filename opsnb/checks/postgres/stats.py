"""The cumulative statistics of the database (pg_statio_*): the cache hit rates they give.

One function, one SQL statement; ``check_cache_hit_rate`` judges. Thresholds are PgHero's defaults.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opsnb.checks.findings import CouldNotLook, check, conclude
from opsnb.checks.postgres.session import Database

if TYPE_CHECKING:
    import pandas as pd


def cache_hit_rates(db: Database) -> pd.DataFrame:
    """Table (heap) and index cache hit rates in % with the block reads behind them (PgHero's query)."""
    return db.query(
        """
        SELECT 'table' AS kind,
               round(100 * sum(heap_blks_hit) / nullif(sum(heap_blks_hit) + sum(heap_blks_read), 0), 2)::float8
                 AS hit_rate_pct,
               coalesce(sum(heap_blks_hit + heap_blks_read), 0)::bigint AS block_reads
        FROM pg_statio_user_tables
        UNION ALL
        SELECT 'index',
               round(100 * sum(idx_blks_hit) / nullif(sum(idx_blks_hit) + sum(idx_blks_read), 0), 2)::float8,
               coalesce(sum(idx_blks_hit + idx_blks_read), 0)::bigint
        FROM pg_statio_user_indexes
        """
    )


@check("postgres.cache-hit-rate", essential=False, hint="run it again once the app has read some data")
def check_cache_hit_rate(
    db: Database, min_hit_rate_pct: float = 99.0, min_block_reads: int = 1000
) -> pd.DataFrame:
    """P3 when the table or index cache hit rate is below ``min_hit_rate_pct`` (PgHero: 99 %).

    Under ``min_block_reads`` reads a rate means nothing yet: such a kind is not judged, and when neither
    kind has enough reads the check could not look.
    """
    rates = cache_hit_rates(db)
    judged = rates[(rates["block_reads"] >= min_block_reads) & rates["hit_rate_pct"].notna()]
    if not len(judged):
        raise CouldNotLook(
            f"too few block reads to judge a cache hit rate (fewer than {min_block_reads} since the "
            "statistics reset)"
        )
    low = judged[judged["hit_rate_pct"] < min_hit_rate_pct]
    rated = ", ".join(f"{r.kind} {r.hit_rate_pct} %" for r in judged.itertuples())
    if len(low):
        return conclude(
            "warn",
            "Cache hit rate below "
            f"{min_hit_rate_pct:g} %: " + ", ".join(f"{r.kind} {r.hit_rate_pct} %" for r in low.itertuples()),
            severity="P3",
            detail="The working set does not fit in memory: more RAM (a bigger Neon compute), or fewer/lighter "
            "scans.",
            evidence=rates,
        )
    unjudged = rates[~rates.index.isin(judged.index)]
    return conclude(
        "pass",
        f"Cache hit rates at or above {min_hit_rate_pct:g} %: {rated}",
        detail="".join(f"Too few {r.kind} block reads to judge yet. " for r in unjudged.itertuples()),
        evidence=rates,
    )
