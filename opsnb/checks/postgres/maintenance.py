"""Maintenance: vacuum and analyze ages, dead tuples, transaction-ID wraparound headroom, sequences near max.

One function, one SQL statement; ``check_*`` functions judge and conclude, thresholds are keyword
arguments with PgHero's (or autovacuum's) defaults.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opsnb.checks.findings import CouldNotLook, check, conclude
from opsnb.checks.postgres.session import Database

if TYPE_CHECKING:
    import pandas as pd

XID_LIMIT = 2_147_483_647  # 2^31 - 1: how far a frozen XID can fall behind before wraparound


def vacuum_status(db: Database) -> pd.DataFrame:
    """Per table: last (auto)vacuum and (auto)analyze, their age in days, live (the larger of the counter and
    the planner's estimate: a statistics reset zeroes the counter) and dead tuples, dead %, and when the
    statistics that record them were reset (a reset forgets the times)."""
    return db.query(
        """
        SELECT s.schemaname AS schema, s.relname AS table,
               greatest(s.n_live_tup, c.reltuples::bigint) AS live_tuples, s.n_dead_tup AS dead_tuples,
               round(100.0 * s.n_dead_tup / nullif(s.n_live_tup + s.n_dead_tup, 0), 1)::float8 AS dead_pct,
               greatest(s.last_vacuum, s.last_autovacuum) AS last_vacuum,
               greatest(s.last_analyze, s.last_autoanalyze) AS last_analyze,
               round((extract(epoch FROM now() - greatest(s.last_vacuum, s.last_autovacuum)) / 86400)::numeric, 1)
                 ::float8 AS vacuum_age_days,
               round((extract(epoch FROM now() - greatest(s.last_analyze, s.last_autoanalyze)) / 86400)::numeric, 1)
                 ::float8 AS analyze_age_days,
               round((extract(epoch FROM now() - d.stats_reset) / 86400)::numeric, 1)::float8 AS stats_reset_days
        FROM pg_stat_user_tables s
        JOIN pg_class c ON c.oid = s.relid
        CROSS JOIN (SELECT stats_reset FROM pg_stat_database WHERE datname = current_database()) d
        ORDER BY s.n_dead_tup DESC, s.relname
        """
    )


@check("postgres.vacuum-analyze", essential=False, hint="run it again after the statistics window has passed")
def check_vacuum(db: Database, max_age_days: float = 7, min_rows: int = 1000) -> pd.DataFrame:
    """P3 listing the tables of >= ``min_rows`` rows not vacuumed or analyzed within ``max_age_days`` days
    (the runbook's weekly "Vacuum Database").

    A missing time means "not since the statistics reset": stale when the reset is older than the window,
    unknown when it is more recent (then the check could not look, unless a known-stale table exists).
    """
    status = vacuum_status(db)
    stale: dict[str, list[str]] = {}  # table -> what is overdue
    unknown: list[str] = []  # tables whose missing times a recent statistics reset explains
    reset_days = None
    for r in status[status["live_tuples"] >= min_rows].to_dict("records"):
        reset_days = r["stats_reset_days"]
        never_reset = reset_days is None or reset_days != reset_days
        for what, done in (("vacuum", "vacuumed"), ("analyze", "analyzed")):
            age = r[f"{what}_age_days"]
            if age is not None and age == age:  # a time is recorded
                if age > max_age_days:
                    stale.setdefault(r["table"], []).append(f"{done} {age:g} days ago")
            elif never_reset or reset_days > max_age_days:
                stale.setdefault(r["table"], []).append(f"not {done} since the statistics reset")
            elif r["table"] not in unknown:
                unknown.append(r["table"])
    window = f"within {max_age_days:g} days"
    them = "it" if len(unknown) == 1 else "them"
    since_reset = f"the statistics that record {them} were reset {reset_days:g} days ago" if unknown else ""
    if stale:
        return conclude(
            "warn",
            f"{len(stale)} table(s) not vacuumed/analyzed {window}: {', '.join(stale)}",
            severity="P3",
            detail="; ".join(f"{t} {' and '.join(why)}" for t, why in stale.items())
            + ". Run VACUUM ANALYZE (automatic on Neon while the compute is up); check autovacuum settings if "
            "it keeps happening." + (f" Unknown for {', '.join(unknown)}: {since_reset}." if unknown else ""),
            evidence=status,
        )
    if unknown:
        raise CouldNotLook(
            f"could not tell whether {', '.join(unknown)} {'was' if len(unknown) == 1 else 'were'} vacuumed and "
            f"analyzed {window}: {since_reset}"
        )
    return conclude(
        "pass", f"Every table of >= {min_rows} rows vacuumed and analyzed {window}", evidence=status
    )


@check("postgres.dead-tuples", essential=False)
def check_dead_tuples(db: Database, max_dead_pct: float = 20, min_dead: int = 10_000) -> pd.DataFrame:
    """P3 listing the tables with >= ``max_dead_pct`` % dead tuples (autovacuum's default scale factor is
    20 %) and at least ``min_dead`` of them."""
    status = vacuum_status(db)
    bloated = status[(status["dead_pct"].fillna(0) >= max_dead_pct) & (status["dead_tuples"] >= min_dead)]
    if not len(bloated):
        return conclude(
            "pass",
            f"No table has >= {max_dead_pct:g} % dead tuples (and >= {min_dead} of them)",
            evidence=status,
        )
    return conclude(
        "warn",
        f"{len(bloated)} table(s) with >= {max_dead_pct:g} % dead tuples: "
        + ", ".join(
            f"{r['table']} {r['dead_pct']} % ({r['dead_tuples']})" for r in bloated.to_dict("records")
        ),
        severity="P3",
        detail="Autovacuum is not keeping up (or a long transaction holds it back): VACUUM them.",
        evidence=bloated,
    )


def wraparound_headroom(db: Database, limit: int = 10) -> pd.DataFrame:
    """Transactions left before wraparound: the database, then its ``limit`` oldest tables."""
    return db.query(
        """
        SELECT 'database' AS kind, datname AS name, age(datfrozenxid) AS xid_age,
               %(lim)s - age(datfrozenxid) AS transactions_left
        FROM pg_database WHERE datname = current_database()
        UNION ALL
        (SELECT 'table', c.oid::regclass::text, age(c.relfrozenxid), %(lim)s - age(c.relfrozenxid)
         FROM pg_class c
         WHERE c.relkind IN ('r', 'm', 't') AND c.relfrozenxid <> '0'
         ORDER BY age(c.relfrozenxid) DESC
         LIMIT %(limit)s)
        """,
        {"lim": XID_LIMIT, "limit": limit},
    )


@check("postgres.wraparound")
def check_wraparound(
    db: Database, warn_left: int = 1_500_000_000, critical_left: int = 100_000_000
) -> pd.DataFrame:
    """P2 under ``warn_left`` transactions left (PgHero's 1.5 billion), P1 under ``critical_left``
    (at 3 million left PostgreSQL refuses new transactions)."""
    headroom = wraparound_headroom(db)
    worst = headroom.sort_values("transactions_left").iloc[0]
    left = int(worst["transactions_left"])
    if left >= warn_left and left >= critical_left:
        return conclude("pass", f"Wraparound headroom: {left:,} transactions left", evidence=headroom)
    critical = left < critical_left
    return conclude(
        "fail" if critical else "warn",
        f"Transaction ID wraparound: {left:,} transactions left ({worst['name']})",
        severity="P1" if critical else "P2",
        detail="VACUUM (FREEZE) the oldest tables; find what blocks autovacuum (long transactions, "
        "idle-in-transaction sessions, abandoned replication slots).",
        evidence=headroom,
    )


def sequences(db: Database) -> pd.DataFrame:
    """Sequences with their last value, maximum, % used, and whether this role may read them (pg_sequences
    shows last_value NULL both for a sequence never used and for one the role may not read)."""
    return db.query(
        """
        SELECT s.schemaname AS schema, s.sequencename AS sequence, s.data_type::text AS data_type,
               s.last_value, s.max_value,
               round(100.0 * s.last_value / s.max_value, 2)::float8 AS used_pct,
               has_sequence_privilege(c.oid, 'SELECT,USAGE') AS readable
        FROM pg_sequences s
        JOIN pg_namespace n ON n.nspname = s.schemaname
        JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = s.sequencename
        ORDER BY used_pct DESC NULLS LAST, s.sequencename
        """
    )


@check("postgres.sequences", hint="grant the reader role pg_read_all_data (it reads every sequence)")
def check_sequences(db: Database, max_used_pct: float = 90) -> pd.DataFrame:
    """P2 listing the sequences above ``max_used_pct`` % of their maximum (PgHero: 90 %)."""
    seqs = sequences(db)
    near = seqs[seqs["used_pct"].fillna(0) >= max_used_pct]
    unreadable = seqs[~seqs["readable"].astype(bool)]
    if len(near):
        return conclude(
            "warn",
            f"{len(near)} sequence(s) above {max_used_pct:g} % of their maximum: "
            + ", ".join(f"{r['sequence']} {r['used_pct']} %" for r in near.to_dict("records")),
            severity="P2",
            detail=" ".join(
                f"{r['sequence']}: {r['last_value']:,} of {r['max_value']:,} ({r['data_type']})."
                for r in near.to_dict("records")
            )
            + " Inserts fail when one runs out: widen the column and sequence to bigint."
            + (f" {len(unreadable)} sequence(s) this role may not read." if len(unreadable) else ""),
            evidence=near,
        )
    if len(unreadable):
        raise CouldNotLook(
            f"could not read {len(unreadable)} of {len(seqs)} sequence(s): "
            + ", ".join(unreadable["sequence"].head(5))
        )
    return conclude(
        "pass", f"No sequence is above {max_used_pct:g} % of its maximum ({len(seqs)} checked)", evidence=seqs
    )
