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


def disk_readers(db: Database, limit: int = 5) -> pd.DataFrame:
    """The tables that read most blocks from disk, with how they are scanned (sequential vs index)."""
    return db.query(
        """
        SELECT io.schemaname AS schema, io.relname AS table, io.heap_blks_read, io.heap_blks_hit,
               s.seq_scan, coalesce(s.idx_scan, 0) AS idx_scan, s.seq_tup_read,
               coalesce(s.idx_tup_fetch, 0) AS idx_tup_fetch
        FROM pg_statio_user_tables io
        JOIN pg_stat_user_tables s ON s.relid = io.relid
        WHERE io.heap_blks_read > 0
        ORDER BY io.heap_blks_read DESC, io.relname
        LIMIT %s
        """,
        (limit,),
    )


def likely_cause(readers: pd.DataFrame) -> str:
    """What the disk readers point to: sequential scans (missing indexes) or a working set bigger than
    memory. A table counts as seq-scan read when most of its rows were read by sequential scans."""
    if not len(readers):
        return "No table stands out: the working set does not fit in memory (more RAM, a bigger compute)."
    seq = readers[readers["seq_tup_read"] > readers["idx_tup_fetch"]]
    if len(seq):
        names = ", ".join(
            f"{r['table']} ({r['seq_scan']} seq scans, {r['heap_blks_read']} blocks read)"
            for r in seq.to_dict("records")
        )
        return (
            f"Most blocks read from disk come from sequential scans of {names}: a missing index is the likely "
            "cause (run slow-queries' missing-index check), not too little memory."
        )
    names = ", ".join(f"{r['table']} ({r['heap_blks_read']} blocks read)" for r in readers.to_dict("records"))
    return (
        f"The tables read from disk ({names}) are read through indexes: the working set does not fit in memory "
        "(more RAM, a bigger compute), or the queries fetch more rows than they need."
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
            detail=likely_cause(disk_readers(db)),
            evidence=rates,
        )
    unjudged = rates[~rates.index.isin(judged.index)]
    return conclude(
        "pass",
        f"Cache hit rates at or above {min_hit_rate_pct:g} %: {rated}",
        detail="".join(f"Too few {r.kind} block reads to judge yet. " for r in unjudged.itertuples()),
        evidence=rates,
    )
