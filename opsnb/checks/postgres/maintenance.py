"""Maintenance: vacuum and analyze ages, dead tuples, transaction-ID wraparound headroom, sequences near max."""

from __future__ import annotations

from opsnb.checks import findings
from opsnb.checks.postgres.session import Database
from opsnb.checks.postgres.stats import guarded

XID_LIMIT = 2_147_483_647  # 2^31 - 1: how far a frozen XID can fall behind before wraparound


def vacuum_status(db: Database):
    """Per table: last (auto)vacuum and (auto)analyze, their age in days, live and dead tuples, dead %."""
    return db.query(
        """
        SELECT schemaname AS schema, relname AS table, n_live_tup AS live_tuples, n_dead_tup AS dead_tuples,
               round(100.0 * n_dead_tup / nullif(n_live_tup + n_dead_tup, 0), 1)::float8 AS dead_pct,
               greatest(last_vacuum, last_autovacuum) AS last_vacuum,
               greatest(last_analyze, last_autoanalyze) AS last_analyze,
               round((extract(epoch FROM now() - greatest(last_vacuum, last_autovacuum)) / 86400)::numeric, 1)::float8
                 AS vacuum_age_days,
               round((extract(epoch FROM now() - greatest(last_analyze, last_autoanalyze)) / 86400)::numeric, 1)::float8
                 AS analyze_age_days
        FROM pg_stat_user_tables
        ORDER BY n_dead_tup DESC, relname
        """
    )


def check_vacuum(db: Database, max_age_days: float = 7, min_rows: int = 1000):
    """P3 per table of >= ``min_rows`` rows never vacuumed/analyzed or not in ``max_age_days`` days
    (the runbook's weekly "Vacuum Database")."""
    check = "vacuum and analyze"
    df = guarded(check, "vacuum and analyze times", lambda: vacuum_status(db))
    if df is None:
        return df
    stale = []
    for r in df[df["live_tuples"] >= min_rows].to_dict("records"):
        for what, done in (("vacuum", "vacuumed"), ("analyze", "analyzed")):
            age = r[f"{what}_age_days"]
            if age is None or age != age:
                stale.append(f"{r['table']} never {done} since the statistics reset")
            elif age > max_age_days:
                stale.append(f"{r['table']} {done} {age} days ago")
    if stale:
        findings.add(
            "P3",
            f"{len(stale)} table(s) not vacuumed/analyzed in {max_age_days:g} days",
            "; ".join(stale) + ". Run VACUUM ANALYZE (automatic on Neon while the compute is up); "
            "check autovacuum settings if it keeps happening.",
            evidence=stale,
            check=check,
        )
    else:
        findings.ok(
            f"Every table of >= {min_rows} rows vacuumed and analyzed within {max_age_days:g} days",
            check=check,
        )
    return df


def check_dead_tuples(db: Database, max_dead_pct: float = 20, min_dead: int = 10_000):
    """P3 per table with >= ``max_dead_pct`` % dead tuples (autovacuum's default scale factor is 20 %)
    and at least ``min_dead`` of them."""
    check = "dead tuples"
    df = guarded(check, "dead tuples", lambda: vacuum_status(db))
    if df is None:
        return df
    bloated = df[(df["dead_pct"].fillna(0) >= max_dead_pct) & (df["dead_tuples"] >= min_dead)]
    for r in bloated.to_dict("records"):
        findings.add(
            "P3",
            f"{r['table']}: {r['dead_pct']} % dead tuples ({r['dead_tuples']})",
            "Autovacuum is not keeping up (or a long transaction holds it back): VACUUM it.",
            evidence=r,
            check=check,
        )
    if not len(bloated):
        findings.ok(f"No table with >= {max_dead_pct:g} % dead tuples", check=check)
    return df


def wraparound_headroom(db: Database, limit: int = 10):
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


def check_wraparound(db: Database, warn_left: int = 1_500_000_000, critical_left: int = 100_000_000):
    """P2 under ``warn_left`` transactions left (PgHero's 1.5 billion), P1 under ``critical_left``
    (at 3 million left PostgreSQL refuses new transactions)."""
    check = "wraparound"
    df = guarded(check, "transaction ID wraparound", lambda: wraparound_headroom(db))
    if df is None:
        return df
    worst = int(df["transactions_left"].min())
    if worst < critical_left:
        sev = "P1"
    elif worst < warn_left:
        sev = "P2"
    else:
        findings.ok(f"Wraparound headroom: {worst:,} transactions left", check=check)
        return df
    name = df.sort_values("transactions_left").iloc[0]["name"]
    findings.add(
        sev,
        f"Transaction ID wraparound: {worst:,} transactions left ({name})",
        "VACUUM (FREEZE) the oldest tables; find what blocks autovacuum (long transactions, "
        "idle-in-transaction sessions, abandoned replication slots).",
        evidence=df,
        check=check,
    )
    return df


def sequences(db: Database):
    """Sequences with their last value, maximum and % used (last_value NULL = not used or not readable)."""
    return db.query(
        """
        SELECT schemaname AS schema, sequencename AS sequence, data_type::text AS data_type,
               last_value, max_value,
               round(100.0 * last_value / max_value, 2)::float8 AS used_pct
        FROM pg_sequences
        ORDER BY used_pct DESC NULLS LAST, sequencename
        """
    )


def check_sequences(db: Database, max_used_pct: float = 90):
    """P2 per sequence above ``max_used_pct`` % of its maximum (PgHero: 90 %)."""
    check = "sequences"
    df = guarded(check, "sequences", lambda: sequences(db))
    if df is None:
        return df
    near = df[df["used_pct"].fillna(0) >= max_used_pct]
    for r in near.to_dict("records"):
        findings.add(
            "P2",
            f"Sequence {r['sequence']} at {r['used_pct']} % of its maximum",
            f"{r['last_value']:,} of {r['max_value']:,} ({r['data_type']}): inserts fail when it runs out; "
            "widen the column and sequence to bigint.",
            evidence=r,
            check=check,
        )
    if not len(near):
        findings.ok(f"No sequence above {max_used_pct:g} % of its maximum ({len(df)} checked)", check=check)
    return df
