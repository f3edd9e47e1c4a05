"""PgHero's remaining health checks: invalid constraints, replication slots and lag, autovacuum freeze
danger, old snapshots holding back vacuum, prepared transactions, deadlocks and temp files, and a settings
table.

One function, one SQL statement; ``check_*`` functions judge and conclude. Thresholds are keyword arguments
with PgHero's defaults where PgHero has one (said so in each docstring), ours otherwise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from psycopg import sql

from opsnb.checks.findings import check, conclude
from opsnb.checks.postgres.names import shown
from opsnb.checks.postgres.roles import STATS_HINT, require_visible_sessions
from opsnb.checks.postgres.session import Database

if TYPE_CHECKING:
    import pandas as pd


# --- constraints ----------------------------------------------------------------------------------------


def invalid_constraints(db: Database) -> pd.DataFrame:
    """Constraints added NOT VALID and never validated: existing rows were never checked against them."""
    return db.query(
        """
        SELECT n.nspname AS schema, rel.relname AS table, con.conname AS constraint,
               CASE con.contype WHEN 'f' THEN 'foreign key' WHEN 'c' THEN 'check' ELSE con.contype::text END
                 AS kind,
               frel.relname AS referenced_table, pg_get_constraintdef(con.oid) AS definition
        FROM pg_constraint con
        JOIN pg_class rel ON rel.oid = con.conrelid
        JOIN pg_namespace n ON n.oid = rel.relnamespace
        LEFT JOIN pg_class frel ON frel.oid = con.confrelid
        WHERE NOT con.convalidated
        ORDER BY 1, 2, 3
        """
    )


@check("postgres.invalid-constraints", essential=False)
def check_invalid_constraints(db: Database) -> pd.DataFrame:
    """P3 listing the constraints that were never validated (PgHero flags any)."""
    found = invalid_constraints(db)
    if not len(found):
        return conclude("pass", "Every constraint is validated", evidence=found)
    rows = found.to_dict("records")
    return conclude(
        "warn",
        f"{len(rows)} constraint(s) not validated: "
        + ", ".join(f"{r['table']}.{r['constraint']}" for r in rows),
        severity="P3",
        detail="Added NOT VALID, they hold for new rows only; old rows may break them. Validate each (takes "
        "a SHARE UPDATE EXCLUSIVE lock, writes go on): "
        + " ".join(
            shown(
                sql.SQL("ALTER TABLE {} VALIDATE CONSTRAINT {};").format(
                    sql.Identifier(r["schema"], r["table"]), sql.Identifier(r["constraint"])
                )
            )
            for r in rows
        ),
        evidence=found,
    )


# --- replication ----------------------------------------------------------------------------------------


def replication_slots(db: Database) -> pd.DataFrame:
    """Replication slots with whether a consumer is connected and the WAL they keep (on a primary)."""
    return db.query(
        """
        SELECT slot_name, slot_type, database, active,
               CASE WHEN pg_is_in_recovery() THEN NULL
                    ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint END AS retained_wal_bytes
        FROM pg_replication_slots
        ORDER BY slot_name
        """
    )


@check("postgres.replication-slots", essential=False)
def check_replication_slots(db: Database) -> pd.DataFrame:
    """P2 listing the inactive replication slots (PgHero flags any): nobody consumes them, and the WAL they
    keep grows until the disk is full."""
    slots = replication_slots(db)
    inactive = slots[~slots["active"].astype(bool)]
    if not len(inactive):
        return conclude("pass", f"No inactive replication slot ({len(slots)} slot(s))", evidence=slots)
    rows = inactive.to_dict("records")
    return conclude(
        "warn",
        f"{len(rows)} inactive replication slot(s): " + ", ".join(r["slot_name"] for r in rows),
        severity="P2",
        detail="An inactive slot keeps WAL (and old rows, for a logical slot) for a consumer that is gone. "
        "If it is not coming back: "
        + " ".join(
            shown(sql.SQL("SELECT pg_drop_replication_slot({});").format(sql.Literal(r["slot_name"])))
            for r in rows
        ),
        evidence=inactive,
    )


def replication_lag(db: Database) -> pd.DataFrame:
    """One row: is this server a replica, and its replay lag in seconds (0 on a primary, PgHero's formula)."""
    return db.query(
        """
        SELECT pg_is_in_recovery() AS replica,
               CASE WHEN NOT pg_is_in_recovery() OR pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
                    ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END::float8 AS lag_s
        """
    )


@check("postgres.replication-lag", essential=False)
def check_replication_lag(db: Database, max_lag_s: float = 5) -> pd.DataFrame:
    """P2 when this replica replays more than ``max_lag_s`` seconds behind (PgHero: good under 5 s)."""
    lag = replication_lag(db)
    row = lag.iloc[0]
    if not row["replica"]:
        return conclude("pass", "Not a replica: no replication lag", evidence=lag)
    if row["lag_s"] > max_lag_s:
        return conclude(
            "warn",
            f"Replica replays {row['lag_s']:.1f} s behind the primary",
            severity="P2",
            detail=f"More than {max_lag_s:g} s: reads from it return stale data.",
            evidence=lag,
        )
    return conclude("pass", f"Replica lag {row['lag_s']:.1f} s (under {max_lag_s:g} s)", evidence=lag)


# --- vacuum: freeze danger, old snapshots, prepared transactions -----------------------------------------


def freeze_danger(db: Database, threshold: int = 2_000_000) -> pd.DataFrame:
    """Tables within ``threshold`` transactions of a forced anti-wraparound autovacuum
    (autovacuum_freeze_max_age), the older of the table's and its TOAST table's frozen XID."""
    return db.query(
        """
        SELECT n.nspname AS schema, c.relname AS table,
               greatest(age(c.relfrozenxid), age(t.relfrozenxid)) AS xid_age,
               current_setting('autovacuum_freeze_max_age')::bigint
                 - greatest(age(c.relfrozenxid), age(t.relfrozenxid)) AS transactions_left
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
        WHERE c.relkind = 'r'
          AND current_setting('autovacuum_freeze_max_age')::bigint
              - greatest(age(c.relfrozenxid), age(t.relfrozenxid)) < %s
        ORDER BY transactions_left, 1, 2
        """,
        (threshold,),
    )


@check("postgres.autovacuum-freeze", essential=False)
def check_autovacuum_freeze(db: Database, threshold: int = 2_000_000) -> pd.DataFrame:
    """P3 listing the tables within ``threshold`` transactions (PgHero: 2 million) of a forced
    anti-wraparound autovacuum, which scans the whole table and cannot be cancelled by a lock request."""
    near = freeze_danger(db, threshold)
    if not len(near):
        return conclude(
            "pass", f"No table is within {threshold:,} transactions of a forced freeze vacuum", evidence=near
        )
    rows = near.to_dict("records")
    return conclude(
        "warn",
        f"{len(rows)} table(s) near a forced freeze vacuum: "
        + ", ".join(f"{r['table']} ({r['transactions_left']:,} left)" for r in rows[:5]),
        severity="P3",
        detail="Run VACUUM (FREEZE) on them at a quiet hour, before autovacuum does it at a busy one.",
        evidence=near,
    )


def old_snapshots(db: Database, min_xid_age: int = 1_000_000) -> pd.DataFrame:
    """Sessions whose snapshot (backend_xmin) is at least ``min_xid_age`` transactions old, oldest first."""
    return db.query(
        """
        SELECT pid, datname AS database, usename, application_name, state,
               age(backend_xmin) AS xmin_age,
               round(extract(epoch FROM now() - xact_start)::numeric, 1)::float8 AS transaction_s,
               left(query, 500) AS query
        FROM pg_stat_activity
        WHERE backend_xmin IS NOT NULL AND pid <> pg_backend_pid() AND age(backend_xmin) >= %s
        ORDER BY age(backend_xmin) DESC
        """,
        (min_xid_age,),
    )


@check("postgres.old-snapshots", essential=False, hint=STATS_HINT)
def check_old_snapshots(db: Database, min_xid_age: int = 1_000_000) -> pd.DataFrame:
    """P2 naming the sessions whose snapshot is ``min_xid_age`` transactions old or more (ours: 1 million;
    PgHero has no such check): VACUUM cannot remove any row deleted since, in any table."""
    require_visible_sessions(db)
    found = old_snapshots(db, min_xid_age)
    if not len(found):
        return conclude(
            "pass", f"No session holds a snapshot {min_xid_age:,} transactions old or more", evidence=found
        )
    oldest = found.iloc[0]
    return conclude(
        "warn",
        f"{len(found)} session(s) hold back vacuum; oldest: pid {oldest['pid']} "
        f"({oldest['application_name'] or '?'}, database {oldest['database']}), {oldest['xmin_age']:,} "
        "transactions old",
        severity="P2",
        detail=f"Its transaction has been open {oldest['transaction_s']} s ({oldest['state']}): "
        f"{' '.join(str(oldest['query'] or '').split())[:160]}. End it (COMMIT/ROLLBACK, or terminate it in "
        "slow-queries).",
        evidence=found,
    )


def prepared_transactions(db: Database, min_age_s: float = 300) -> pd.DataFrame:
    """Two-phase transactions prepared at least ``min_age_s`` seconds ago, with the setting that allows them."""
    return db.query(
        """
        SELECT gid, database, owner, prepared,
               round(extract(epoch FROM now() - prepared)::numeric, 1)::float8 AS age_s,
               age(transaction) AS xid_age,
               current_setting('max_prepared_transactions')::int AS max_prepared_transactions
        FROM pg_prepared_xacts
        WHERE prepared < now() - make_interval(secs => %s)
        ORDER BY prepared
        """,
        (min_age_s,),
    )


@check("postgres.prepared-transactions", essential=False)
def check_prepared_transactions(db: Database, min_age_s: float = 300) -> pd.DataFrame:
    """P2 listing the transactions prepared ``min_age_s`` seconds ago or more (ours: 5 minutes) and never
    committed: they hold their locks and their snapshot across restarts until someone decides."""
    found = prepared_transactions(db, min_age_s)
    if not len(found):
        allowed = int(db.scalar("SELECT current_setting('max_prepared_transactions')::int"))
        why = (
            "prepared transactions are disabled (max_prepared_transactions = 0)"
            if allowed == 0
            else f"max_prepared_transactions = {allowed}"
        )
        return conclude(
            "pass", f"No transaction prepared {min_age_s:g} s ago or more", detail=why, evidence=found
        )
    rows = found.to_dict("records")
    return conclude(
        "warn",
        f"{len(rows)} prepared transaction(s) older than {min_age_s:g} s: "
        + ", ".join(r["gid"] for r in rows),
        severity="P2",
        detail="Ask the transaction manager that prepared them; if it is gone: COMMIT PREPARED or "
        "ROLLBACK PREPARED '<gid>' in their database.",
        evidence=found,
    )


# --- pg_stat_database: deadlocks and temp files ----------------------------------------------------------


def database_counters(db: Database) -> pd.DataFrame:
    """One row for the target database: deadlocks, temp files and bytes, and since when they count."""
    return db.query(
        """
        SELECT datname AS database, deadlocks, temp_files, temp_bytes,
               pg_size_pretty(temp_bytes) AS temp_size, stats_reset
        FROM pg_stat_database
        WHERE datname = current_database()
        """
    )


@check("postgres.deadlocks", essential=False)
def check_deadlocks(db: Database) -> pd.DataFrame:
    """P3 with the number of deadlocks in this database since the statistics reset (any is worth a look)."""
    counters = database_counters(db)
    row = counters.iloc[0]
    if not row["deadlocks"]:
        return conclude("pass", "No deadlock since the statistics reset", evidence=counters)
    return conclude(
        "warn",
        f"{row['deadlocks']} deadlock(s) in {row['database']} since the statistics reset",
        severity="P3",
        detail="Each one aborted a transaction. The server log names both statements (log_lock_waits helps); "
        "take locks in the same order in every code path.",
        evidence=counters,
    )


@check("postgres.temp-files", essential=False)
def check_temp_files(db: Database, max_temp_bytes: int = 1024**3) -> pd.DataFrame:
    """P3 when queries of this database wrote more than ``max_temp_bytes`` (ours: 1 GiB) of temp files since
    the statistics reset: sorts and hashes that did not fit in work_mem."""
    counters = database_counters(db)
    row = counters.iloc[0]
    if row["temp_bytes"] <= max_temp_bytes:
        return conclude(
            "pass",
            f"Temp files: {row['temp_size']} since the statistics reset (up to {max_temp_bytes:,} bytes is fine)",
            evidence=counters,
        )
    return conclude(
        "warn",
        f"{row['temp_files']} temp file(s), {row['temp_size']}, written in {row['database']}",
        severity="P3",
        detail="Sorts and hashes spilled to disk: find them (log_temp_files) and add an index or raise work_mem "
        "for those queries.",
        evidence=counters,
    )


# --- settings -------------------------------------------------------------------------------------------

# what each setting means for this runbook, in plain words
SETTING_NOTES = {
    "max_connections": "sessions the server accepts (the pool the app uses is this minus reserved slots)",
    "shared_buffers": "PostgreSQL's own cache; about 25 % of RAM is usual",
    "effective_cache_size": "what the planner assumes the OS caches; about 50-75 % of RAM",
    "work_mem": "memory per sort/hash before it spills to temp files",
    "maintenance_work_mem": "memory for VACUUM and CREATE INDEX",
    "autovacuum": "must be on: without it dead rows pile up and wraparound comes",
    "autovacuum_freeze_max_age": "age at which a table gets a forced anti-wraparound vacuum",
    "statement_timeout": "0 means a statement may run forever",
    "idle_in_transaction_session_timeout": "0 means an idle open transaction is never ended",
    "log_min_duration_statement": "-1 means slow statements are not logged",
    "max_prepared_transactions": "0 disables two-phase commit",
    "random_page_cost": "4 suits spinning disks; about 1.1 suits SSDs",
}


def settings(db: Database) -> pd.DataFrame:
    """The settings of SETTING_NOTES with value, unit and where each was set."""
    return db.query(
        "SELECT name, setting, unit, source FROM pg_settings WHERE name = ANY(%s) ORDER BY name",
        (list(SETTING_NOTES),),
    )


@check("postgres.settings", essential=False)
def check_settings(db: Database) -> pd.DataFrame:
    """Info: a few settings with their value and what they mean (no judgement: tuning is a conversation)."""
    table = settings(db)
    table["note"] = table["name"].map(SETTING_NOTES)
    return conclude("pass", f"{len(table)} settings read", evidence=table)
