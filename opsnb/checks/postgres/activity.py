"""Sessions now (pg_stat_activity): long-running queries, blocked queries, idle-in-transaction sessions,
and the gated action that cancels or terminates them.

One function, one SQL statement; ``check_*`` functions judge and conclude. Thresholds are keyword
arguments with PgHero's defaults (long-running >= 60 s). A role without pg_read_all_stats sees other
roles' sessions without state or query: the checks then conclude ``inconclusive`` instead of passing on
what they could not see (roles.require_visible_sessions).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from psycopg import sql

from opsnb.checks.findings import check, conclude
from opsnb.checks.postgres.names import shown
from opsnb.checks.postgres.roles import STATS_HINT, require_visible_sessions
from opsnb.checks.postgres.session import Database

if TYPE_CHECKING:
    import pandas as pd

# client sessions of the target database only (pg_stat_activity is cluster-wide), never this one
_CLIENTS = sql.SQL(
    "backend_type = 'client backend' AND pid <> pg_backend_pid() AND datname = current_database()"
)


def _short(text: Any, width: int = 160) -> str:
    one = " ".join(str(text or "").split())
    return one if len(one) <= width else one[: width - 1] + "…"


def long_running(db: Database, min_s: float = 60) -> pd.DataFrame:
    """Active statements of this database running for at least ``min_s`` seconds (PgHero: 60 s), oldest
    first; ``blocked_by``: the pids it waits for (pg_blocking_pids), empty unless it is itself blocked."""
    return db.query(
        sql.SQL(
            """
            SELECT pid, datname AS database, usename, application_name, state,
                   pg_blocking_pids(pid) AS blocked_by,
                   round(extract(epoch FROM now() - query_start)::numeric, 1)::float8 AS seconds,
                   wait_event_type, wait_event, left(query, 1000) AS query
            FROM pg_stat_activity
            WHERE {clients} AND state IS NOT NULL AND state NOT IN ('idle')
              AND state NOT LIKE 'idle in transaction%%'
              AND query_start < now() - make_interval(secs => %s)
            ORDER BY query_start
            """
        ).format(clients=_CLIENTS),
        (min_s,),
    )


def blocked_queries(db: Database) -> pd.DataFrame:
    """Backends of this database waiting on a lock, one row per (blocked, blocker) pair from
    pg_blocking_pids(); ``blocker_waits_for`` is what the blocker itself waits for, so a chain reads
    row by row, and ``root_blocker`` is true when the blocker waits for nobody (the one to stop)."""
    return db.query(
        """
        SELECT blocked.pid AS blocked_pid, blocked.datname AS database,
               blocked.application_name AS blocked_application,
               round(extract(epoch FROM now() - blocked.query_start)::numeric, 1)::float8 AS waiting_s,
               left(blocked.query, 500) AS blocked_query,
               blocker.pid AS blocker_pid, blocker.application_name AS blocker_application,
               blocker.state AS blocker_state, left(blocker.query, 500) AS blocker_query,
               pg_blocking_pids(blocker.pid) AS blocker_waits_for,
               cardinality(pg_blocking_pids(blocker.pid)) = 0 AS root_blocker
        FROM pg_stat_activity blocked
        CROSS JOIN LATERAL unnest(pg_blocking_pids(blocked.pid)) AS b(pid)
        JOIN pg_stat_activity blocker ON blocker.pid = b.pid
        WHERE blocked.backend_type = 'client backend' AND blocked.wait_event_type = 'Lock'
          AND blocked.datname = current_database()
        ORDER BY blocked.query_start
        """
    )


def idle_in_transaction(db: Database, min_s: float = 0) -> pd.DataFrame:
    """Sessions of this database idle inside an open transaction for >= ``min_s`` s, with the relations
    they hold locks on."""
    return db.query(
        """
        SELECT a.pid, a.datname AS database, a.usename, a.application_name, a.client_addr::text AS client_addr, a.state,
               round(extract(epoch FROM now() - a.state_change)::numeric, 1)::float8 AS idle_s,
               round(extract(epoch FROM now() - a.xact_start)::numeric, 1)::float8 AS transaction_s,
               (SELECT string_agg(DISTINCT l.relation::regclass::text, ', ')
                FROM pg_locks l
                WHERE l.pid = a.pid AND l.relation IS NOT NULL
                  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()))
                 AS locked_relations,
               left(a.query, 500) AS last_query
        FROM pg_stat_activity a
        WHERE a.backend_type = 'client backend' AND a.pid <> pg_backend_pid() AND a.state LIKE 'idle in transaction%%'
          AND a.datname = current_database()
          AND a.state_change < now() - make_interval(secs => %s)
        ORDER BY a.state_change
        """,
        (min_s,),
    )


@check("postgres.long-running-queries", hint=STATS_HINT)
def check_long_running(db: Database, min_s: float = 60) -> pd.DataFrame:
    """P2 when statements have been running for >= ``min_s`` seconds (PgHero's long_running_query_sec)."""
    require_visible_sessions(db)
    found = long_running(db, min_s)
    if not len(found):
        return conclude("pass", f"No query has been running for >= {min_s:g} s", evidence=found)
    first = found.iloc[0]
    return conclude(
        "warn",
        f"{len(found)} query(ies) running for >= {min_s:g} s",
        severity="P2",
        detail=f"Longest: pid {first['pid']} ({first['application_name'] or 'no application_name'}) for "
        f"{first['seconds']} s: {_short(first['query'])}",
        evidence=found,
    )


@check("postgres.blocked-queries", hint=STATS_HINT)
def check_blocked(db: Database) -> pd.DataFrame:
    """P2 naming each blocked backend's root blockers (those that wait for nobody); the evidence has
    every (blocked, blocker) pair, so a chain A waits for B waits for C reads row by row."""
    require_visible_sessions(db)
    found = blocked_queries(db)
    if not len(found):
        return conclude("pass", "No query is waiting on a lock held by another session", evidence=found)
    roots = found[found["root_blocker"].astype(bool)]
    blockers = sorted(
        {
            f"pid {r.blocker_pid} ({r.blocker_application or '?'}, {r.blocker_state})"
            for r in roots.itertuples()
        }
    )
    chained = found[~found["root_blocker"].astype(bool)]
    detail = f"Longest wait {found['waiting_s'].max()} s: {_short(found.iloc[0]['blocked_query'])}."
    if len(chained):
        detail += (
            " Chains: "
            + "; ".join(
                f"pid {r.blocked_pid} waits for pid {r.blocker_pid}, which waits for "
                + ", ".join(f"pid {p}" for p in r.blocker_waits_for)
                for r in chained.itertuples()
            )
            + ". Only the root blockers need stopping."
        )
    return conclude(
        "warn",
        f"{found['blocked_pid'].nunique()} blocked query(ies); root blockers: {', '.join(blockers) or 'none (a lock cycle)'}",
        severity="P2",
        detail=detail,
        evidence=found,
    )


@check("postgres.idle-in-transaction", hint=STATS_HINT)
def check_idle_in_transaction(db: Database, min_s: float = 60) -> pd.DataFrame:
    """P2 naming every session idle in an open transaction for >= ``min_s`` s.

    Such a session holds its locks and its snapshot: it blocks DDL and CREATE INDEX CONCURRENTLY and keeps
    VACUUM from removing dead rows. PgHero lists them as worth a warning; 60 s is our default.
    """
    require_visible_sessions(db)
    found = idle_in_transaction(db, min_s)
    if not len(found):
        return conclude("pass", f"No session is idle in a transaction for >= {min_s:g} s", evidence=found)
    who = sorted(
        {f"{r.application_name or '(no application_name)'} (pid {r.pid})" for r in found.itertuples()}
    )
    longest = found.iloc[0]
    return conclude(
        "warn",
        f"Idle in transaction: {', '.join(who)}",
        severity="P2",
        detail=f"{len(found)} session(s) idle inside an open transaction for >= {min_s:g} s; the longest for "
        f"{longest['idle_s']} s holding locks on {longest['locked_relations'] or 'no table'}; last query: "
        f"{_short(longest['last_query'])}. Fix the code path that forgets COMMIT/ROLLBACK; set "
        "idle_in_transaction_session_timeout; terminate the backend below if it blocks others.",
        evidence=found,
    )


# --- cancel / terminate ---------------------------------------------------------------------------------


def runaway_backends(
    long_running_df: pd.DataFrame | None, idle_df: pd.DataFrame | None, only_pids: str = ""
) -> pd.DataFrame:
    """Backends to stop: long-running ones get pg_cancel_backend, idle-in-transaction ones pg_terminate_backend.

    The frames are what check_long_running / check_idle_in_transaction returned (None when they could
    not look). A long-running statement that is itself waiting on a lock (``blocked_by`` not empty) is a
    victim, not a cause: it is left out, only root blockers are proposed. ``only_pids``: comma-separated pids to restrict to ("" = every one found); ValueError for
    anything that is not a positive integer.
    """
    import pandas as pd

    wanted = parse_pids(only_pids) if only_pids.strip() else None
    rows = []
    for df, how, secs in ((long_running_df, "cancel", "seconds"), (idle_df, "terminate", "idle_s")):
        if df is None:
            continue
        for r in df.to_dict("records"):
            if len(r.get("blocked_by") or []):
                continue  # blocked: stopping its blocker frees it
            if wanted is None or int(r["pid"]) in wanted:
                query = r.get("query") or r.get("last_query")
                rows.append(
                    {
                        "pid": int(r["pid"]),
                        "how": how,
                        "database": r.get("database"),
                        "application_name": r["application_name"],
                        "seconds": r[secs],
                        "query": _short(query, 120),
                    }
                )
    return pd.DataFrame(rows, columns=["pid", "how", "database", "application_name", "seconds", "query"])


def parse_pids(text: str) -> set[int]:
    """Pids from a comma/space separated list: digits only (no sign, no 0x, no 1e3), else ValueError."""
    pids = set()
    for item in re.split(r"[,\s]+", str(text).strip()):
        if not item:
            continue
        if not re.fullmatch(r"[0-9]{1,10}", item) or not 0 < int(item) < 2**31:
            raise ValueError(f"not a backend pid: {item!r}")
        pids.add(int(item))
    return pids


# the two signals a runaway backend can get: fixed function names, picked by "how"
_SIGNALS = {"cancel": "pg_cancel_backend", "terminate": "pg_terminate_backend"}


def stop_statement(how: str) -> sql.Composed:
    """SELECT pg_cancel_backend(%s) ("cancel") or pg_terminate_backend(%s) ("terminate"); the pid is a
    parameter (a sql.Placeholder, so a plan can show it with shown())."""
    if how not in _SIGNALS:
        raise ValueError(f"how must be 'cancel' or 'terminate', got {how!r}")
    return sql.SQL("SELECT {fn}({pid})").format(fn=sql.SQL(_SIGNALS[how]), pid=sql.Placeholder())


def _pid(value: Any) -> int:
    (pid,) = parse_pids(str(value))
    return pid


def stop_backends(db: Database, targets: pd.DataFrame) -> list[dict[str, Any]]:
    """pg_cancel_backend / pg_terminate_backend each target; which ones the server confirmed."""
    done = []
    for r in targets.to_dict("records"):
        pid = _pid(r["pid"])
        ok = db.scalar(stop_statement(r["how"]), (pid,))
        done.append({"pid": pid, "function": _SIGNALS[r["how"]], "signalled": bool(ok)})
    return done


def offer_stop_backends(targets: pd.DataFrame | None, writer_database_url_env: str) -> dict[str, Any] | None:
    """Gated action: cancel the long-running and terminate the idle-in-transaction backends listed."""
    from opsnb.checks.actions import action
    from opsnb.checks.postgres.session import connect

    if targets is None or not len(targets):
        print("No runaway backend to cancel or terminate.")
        return None
    plan = [
        shown(stop_statement(r["how"]), (_pid(r["pid"]),))
        + f"  -- database {r['database'] or '?'}, {r['application_name'] or '?'}, {r['seconds']} s: {r['query']}"
        for r in targets.to_dict("records")
    ]
    plan.append(
        "cancel stops the running statement; terminate closes the session and rolls back its transaction"
    )

    def apply():
        with connect(writer_database_url_env, read_only=False) as rw:
            return stop_backends(rw, targets)

    return action(f"Stop {len(targets)} runaway backend(s)", plan, apply)
