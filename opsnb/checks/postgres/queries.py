"""Statements and what is running now: top statements, slow ones, long-running, blocked, idle in transaction.

One function, one SQL statement; ``check_*`` functions add findings. Thresholds are keyword arguments with
PgHero's defaults (FIELD-NOTES): slow = mean >= 20 ms and >= 100 calls; long-running >= 60 s.
"""

from __future__ import annotations

import re
from typing import Any

from psycopg import sql

from opsnb.checks import findings
from opsnb.checks.postgres.session import Database, DatabaseError
from opsnb.checks.postgres.stats import guarded, shown

_THIS_DB = sql.SQL("dbid = (SELECT oid FROM pg_database WHERE datname = current_database())")
_CLIENTS = sql.SQL("backend_type = 'client backend' AND pid <> pg_backend_pid()")
# pg_stat_statements' timing columns by version (PG13+ *_exec_time): the only names accepted for them
TIME_COLUMNS = ("total_exec_time", "mean_exec_time", "total_time", "mean_time")


def _short(text: Any, width: int = 160) -> str:
    one = " ".join(str(text or "").split())
    return one if len(one) <= width else one[: width - 1] + "…"


# --- pg_stat_statements -------------------------------------------------------------------------------


def time_column(name: str) -> sql.Identifier:
    """A pg_stat_statements timing column as an identifier; ValueError for any name outside TIME_COLUMNS."""
    if name not in TIME_COLUMNS:
        raise ValueError(f"unexpected time column {name!r}")
    return sql.Identifier(name)


def top_statements_sql(total_col: str, mean_col: str, by: str = "mean") -> sql.Composed:
    """The statement of top_statements(); one parameter: the limit."""
    if by not in ("mean", "total"):
        raise ValueError("by must be 'mean' or 'total'")
    return sql.SQL(
        """
        SELECT queryid, query, calls, rows,
               round({total}::numeric, 2)::float8 AS total_ms,
               round({mean}::numeric, 2)::float8 AS mean_ms,
               round((100 * {total} / nullif(sum({total}) OVER (), 0))::numeric, 2)::float8
                 AS share_pct
        FROM pg_stat_statements
        WHERE {this_db}
        ORDER BY {order} DESC, calls DESC
        LIMIT %s
        """
    ).format(
        total=time_column(total_col),
        mean=time_column(mean_col),
        this_db=_THIS_DB,
        order=sql.Identifier("mean_ms" if by == "mean" else "total_ms"),
    )


def top_statements(db: Database, total_col: str, mean_col: str, by: str = "mean", limit: int = 10):
    """Top statements of this database by mean or total time: calls, rows, ms, share of total time (%)."""
    statement = top_statements_sql(total_col, mean_col, by)  # ValueError before any SQL runs
    return db.query(statement, (limit,))


def slow_statements_sql(total_col: str, mean_col: str) -> sql.Composed:
    """The statement of slow_statements(); parameters: min mean ms, min calls."""
    total, mean = time_column(total_col), time_column(mean_col)
    return sql.SQL(
        """
        SELECT queryid, query, calls,
               round({mean}::numeric, 2)::float8 AS mean_ms,
               round({total}::numeric, 2)::float8 AS total_ms
        FROM pg_stat_statements
        WHERE {this_db} AND {mean} >= %s AND calls >= %s
        ORDER BY {total} DESC
        """
    ).format(total=total, mean=mean, this_db=_THIS_DB)


def slow_statements(
    db: Database, total_col: str, mean_col: str, min_mean_ms: float = 20, min_calls: int = 100
):
    """Statements slow by PgHero's rule: mean >= ``min_mean_ms`` (20 ms) and calls >= ``min_calls`` (100)."""
    statement = slow_statements_sql(total_col, mean_col)  # ValueError before any SQL runs
    return db.query(statement, (min_mean_ms, min_calls))


def check_top_statements(db: Database, statements: dict[str, Any], by: str = "mean", limit: int = 10):
    """Top ``limit`` statements by ``by`` time (an empty table when pg_stat_statements is unusable)."""
    import pandas as pd

    if not statements.get("usable"):
        print("pg_stat_statements is not enabled here: see the finding above.")
        return pd.DataFrame(columns=["queryid", "query", "calls", "rows", "total_ms", "mean_ms", "share_pct"])
    return guarded(
        "top statements",
        "top statements",
        lambda: top_statements(db, statements["total"], statements["mean"], by=by, limit=limit),
        empty=pd.DataFrame(),
    )


def check_slow_statements(
    db: Database, statements: dict[str, Any], min_mean_ms: float = 20, min_calls: int = 100
):
    """P2 listing the statements slow by PgHero's rule (defaults 20 ms mean, 100 calls)."""
    import pandas as pd

    check = "slow statements"
    if not statements.get("usable"):
        return pd.DataFrame()
    df = guarded(
        check,
        "slow statements",
        lambda: slow_statements(db, statements["total"], statements["mean"], min_mean_ms, min_calls),
    )
    if df is None:
        return pd.DataFrame()
    rule = f"mean >= {min_mean_ms:g} ms and >= {min_calls} calls"
    if len(df):
        worst = df.iloc[0]
        findings.add(
            "P2",
            f"{len(df)} slow statement(s) ({rule})",
            f"Worst by total time: {worst['mean_ms']} ms mean over {worst['calls']} calls: {_short(worst['query'])}",
            evidence=df.head(10)[["queryid", "calls", "mean_ms", "total_ms", "query"]],
            check=check,
        )
    else:
        findings.ok(f"No slow statements ({rule})", check=check)
    return df


def plot_top_statements(df, value: str = "mean_ms", limit: int = 10, title: str | None = None):
    """Horizontal bar chart of the top ``limit`` statements by ``value``; returns the matplotlib Figure."""
    import matplotlib

    if not matplotlib.get_backend().lower().startswith(("module://matplotlib_inline", "module://ipykernel")):
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    top = df.head(limit).iloc[::-1] if len(df) else df
    fig, ax = plt.subplots(figsize=(9, 0.45 * max(len(top), 2) + 1))
    labels = [_short(q, 60) for q in top["query"]] if len(top) else []
    ax.barh(range(len(top)), list(top[value]) if len(top) else [], color="#c0504d")
    ax.set_yticks(range(len(top)), labels, fontsize=8)
    ax.set_xlabel({"mean_ms": "mean time per call (ms)", "total_ms": "total time (ms)"}.get(value, value))
    ax.set_title(title or f"Top {limit} statements by {value}")
    if not len(top):
        ax.text(0.5, 0.5, "no statements", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    plt.close(fig)  # shown once by the notebook's display of the return value
    return fig


# --- EXPLAIN of a normalized statement -----------------------------------------------------------------

_PARAM = re.compile(r"\$(\d+)")
_READ_ONLY_START = re.compile(r"^\s*(select|with|values|table)\b", re.IGNORECASE)


def explain_statements(query: str, server_version_num: int) -> list[sql.Composable]:
    """The SQL that shows the generic plan of a pg_stat_statements text (constants normalized to $n).

    PostgreSQL 16+: ``EXPLAIN (GENERIC_PLAN)`` plans with unknown parameters directly. Older servers:
    PREPARE the text (the parameter types are inferred from context), force the generic plan with
    ``plan_cache_mode = force_generic_plan`` (PG12+) and EXPLAIN EXECUTE it with NULLs. With a generic
    plan the planner never looks at the values, so NULL cannot turn the plan into "One-Time Filter:
    false" the way a literal NULL substitution would; and no representative value has to be guessed.
    Never ANALYZE: nothing is executed. Only single read statements are explained.

    The statement text is SQL already (pg_stat_statements' own record of what ran), so it is the one piece
    taken as sql.SQL as it stands, after the check that it is a single read statement; everything around
    it is fixed.
    """
    text = query.strip().rstrip(";").strip()
    if ";" in text or not _READ_ONLY_START.match(text):
        raise ValueError("only a single SELECT/WITH statement is explained")
    statement = sql.SQL(text)
    n_params = max((int(n) for n in _PARAM.findall(text)), default=0)
    if server_version_num >= 160000:
        return [sql.SQL("EXPLAIN (GENERIC_PLAN, FORMAT JSON) {}").format(statement)]
    if n_params == 0:
        return [sql.SQL("EXPLAIN (FORMAT JSON) {}").format(statement)]
    return [
        sql.SQL("SET plan_cache_mode = force_generic_plan"),
        sql.SQL("PREPARE opsnb_explain AS {}").format(statement),
        sql.SQL("EXPLAIN (FORMAT JSON) EXECUTE opsnb_explain({})").format(
            sql.SQL(", ").join([sql.NULL] * n_params)
        ),
    ]


def explain_generic(db: Database, query: str, server_version_num: int) -> dict[str, Any]:
    """The generic plan (EXPLAIN's JSON "Plan" node) of a normalized statement; nothing is executed."""
    steps = explain_statements(query, server_version_num)
    try:
        for step in steps[:-1]:
            db.execute(step)
        raw = db.scalar(steps[-1])
    finally:
        if len(steps) > 1:
            for cleanup in ("DEALLOCATE ALL", "RESET plan_cache_mode"):
                try:
                    db.execute(cleanup)
                except DatabaseError:
                    pass
    import json

    plan = json.loads(raw) if isinstance(raw, str) else raw
    return plan[0]["Plan"]


def plan_nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """Every node of an EXPLAIN JSON plan, depth first."""
    out = [plan]
    for child in plan.get("Plans", []):
        out += plan_nodes(child)
    return out


def plan_text(plan: dict[str, Any], depth: int = 0) -> str:
    """A compact text rendering of an EXPLAIN JSON plan (node, relation/index, cost, rows, conditions)."""
    head = plan.get("Node Type", "?")
    if plan.get("Index Name"):
        head += f" using {plan['Index Name']}"
    if plan.get("Relation Name"):
        head += f" on {plan['Relation Name']}"
    head += f"  (cost={plan.get('Startup Cost', 0)}..{plan.get('Total Cost', 0)} rows={plan.get('Plan Rows', '?')})"
    lines = [("  " * depth) + ("-> " if depth else "") + head]
    for key in ("Index Cond", "Filter", "Join Filter", "Hash Cond", "Sort Key"):
        if plan.get(key):
            value = plan[key] if isinstance(plan[key], str) else ", ".join(plan[key])
            lines.append(("  " * depth) + f"     {key}: {value}")
    for child in plan.get("Plans", []):
        lines.append(plan_text(child, depth + 1))
    return "\n".join(lines)


# --- running now ----------------------------------------------------------------------------------------


def long_running(db: Database, min_s: float = 60):
    """Active statements running for at least ``min_s`` seconds (PgHero: 60 s), oldest first."""
    return db.query(
        sql.SQL(
            """
            SELECT pid, usename, application_name, state,
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


def blocked_queries(db: Database):
    """Backends waiting on a lock, one row per (blocked, blocker) pair from pg_blocking_pids()."""
    return db.query(
        """
        SELECT blocked.pid AS blocked_pid, blocked.application_name AS blocked_application,
               round(extract(epoch FROM now() - blocked.query_start)::numeric, 1)::float8 AS waiting_s,
               left(blocked.query, 500) AS blocked_query,
               blocker.pid AS blocker_pid, blocker.application_name AS blocker_application,
               blocker.state AS blocker_state, left(blocker.query, 500) AS blocker_query
        FROM pg_stat_activity blocked
        CROSS JOIN LATERAL unnest(pg_blocking_pids(blocked.pid)) AS b(pid)
        JOIN pg_stat_activity blocker ON blocker.pid = b.pid
        WHERE blocked.backend_type = 'client backend' AND blocked.wait_event_type = 'Lock'
        ORDER BY blocked.query_start
        """
    )


def idle_in_transaction(db: Database, min_s: float = 0):
    """Sessions idle inside an open transaction for >= ``min_s`` s, with the relations they hold locks on."""
    return db.query(
        """
        SELECT a.pid, a.usename, a.application_name, a.client_addr::text AS client_addr, a.state,
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
          AND a.state_change < now() - make_interval(secs => %s)
        ORDER BY a.state_change
        """,
        (min_s,),
    )


def hidden_sessions(db: Database) -> int:
    """Client sessions of other roles whose state and query this role may not see."""
    # other roles' rows show NULL backend_type and state to an unprivileged role; background processes
    # (no usename) are not sessions
    return int(
        db.scalar("SELECT count(*) FROM pg_stat_activity WHERE backend_type IS NULL AND usename IS NOT NULL")
    )


def check_hidden_sessions(db: Database) -> int:
    """Info finding when other roles' sessions are hidden (no pg_read_all_stats / pg_monitor)."""
    n = guarded("activity visibility", "session visibility", lambda: hidden_sessions(db), empty=0)
    if n:
        findings.add(
            "info",
            f"{n} session(s) of other roles are hidden from this role",
            "Their state and query are NULL in pg_stat_activity, so long-running, blocked and idle-in-transaction "
            "checks cannot see them. Grant pg_read_all_stats (or pg_monitor) to the role the runbook uses.",
            check="activity visibility",
        )
    return n


def check_long_running(db: Database, min_s: float = 60):
    """P2 when statements have been running for >= ``min_s`` seconds (PgHero's long_running_query_sec)."""
    check = "long-running queries"
    df = guarded(check, "long-running queries", lambda: long_running(db, min_s))
    if df is None:
        return df
    if len(df):
        first = df.iloc[0]
        findings.add(
            "P2",
            f"{len(df)} query(ies) running for >= {min_s:g} s",
            f"Longest: pid {first['pid']} ({first['application_name'] or 'no application_name'}) for "
            f"{first['seconds']} s: {_short(first['query'])}",
            evidence=df.head(10),
            check=check,
        )
    else:
        findings.ok(f"No query running for >= {min_s:g} s", check=check)
    return df


def check_blocked(db: Database):
    """P2 naming each blocked backend and its blockers."""
    check = "blocked queries"
    df = guarded(check, "blocked queries", lambda: blocked_queries(db))
    if df is None:
        return df
    if len(df):
        blockers = sorted(
            {
                f"pid {r.blocker_pid} ({r.blocker_application or '?'}, {r.blocker_state})"
                for r in df.itertuples()
            }
        )
        findings.add(
            "P2",
            f"{df['blocked_pid'].nunique()} blocked query(ies); blockers: {', '.join(blockers)}",
            f"Longest wait {df['waiting_s'].max()} s: {_short(df.iloc[0]['blocked_query'])}",
            evidence=df.head(20),
            check=check,
        )
    else:
        findings.ok("No query is waiting on a lock held by another session", check=check)
    return df


def check_idle_in_transaction(db: Database, min_s: float = 60):
    """P2 naming every session idle in an open transaction for >= ``min_s`` s.

    Such a session holds its locks and its snapshot: it blocks DDL and CREATE INDEX CONCURRENTLY and keeps
    VACUUM from removing dead rows. PgHero lists them as worth a warning; 60 s is our default.
    """
    check = "idle in transaction"
    df = guarded(check, "idle-in-transaction sessions", lambda: idle_in_transaction(db, min_s))
    if df is None:
        return df
    if len(df):
        who = sorted(
            {f"{r.application_name or '(no application_name)'} (pid {r.pid})" for r in df.itertuples()}
        )
        longest = df.iloc[0]
        findings.add(
            "P2",
            f"Idle in transaction: {', '.join(who)}",
            f"{len(df)} session(s) idle inside an open transaction for >= {min_s:g} s; the longest for "
            f"{longest['idle_s']} s holding locks on {longest['locked_relations'] or 'no table'}; last query: "
            f"{_short(longest['last_query'])}. Fix the code path that forgets COMMIT/ROLLBACK; set "
            "idle_in_transaction_session_timeout; terminate the backend below if it blocks others.",
            evidence=df,
            check=check,
        )
    else:
        findings.ok(f"No session idle in transaction for >= {min_s:g} s", check=check)
    return df


# --- cancel / terminate ---------------------------------------------------------------------------------


def runaway_backends(long_running_df, idle_df, only_pids: str = ""):
    """Backends to stop: long-running ones get pg_cancel_backend, idle-in-transaction ones pg_terminate_backend.

    ``only_pids``: comma-separated pids to restrict to ("" = every one found); ValueError for anything
    that is not a positive integer.
    """
    import pandas as pd

    wanted = parse_pids(only_pids) if only_pids.strip() else None
    rows = []
    for df, how, secs in ((long_running_df, "cancel", "seconds"), (idle_df, "terminate", "idle_s")):
        if df is None:
            continue
        for r in df.to_dict("records"):
            if wanted is None or int(r["pid"]) in wanted:
                query = r.get("query") or r.get("last_query")
                rows.append(
                    {
                        "pid": int(r["pid"]),
                        "how": how,
                        "application_name": r["application_name"],
                        "seconds": r[secs],
                        "query": _short(query, 120),
                    }
                )
    return pd.DataFrame(rows, columns=["pid", "how", "application_name", "seconds", "query"])


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


def stop_backends(db: Database, targets) -> list[dict[str, Any]]:
    """pg_cancel_backend / pg_terminate_backend each target; which ones the server confirmed."""
    done = []
    for r in targets.to_dict("records"):
        pid = _pid(r["pid"])
        ok = db.scalar(stop_statement(r["how"]), (pid,))
        done.append({"pid": pid, "function": _SIGNALS[r["how"]], "signalled": bool(ok)})
    return done


def offer_stop_backends(targets, writer_database_url_env: str) -> dict[str, Any] | None:
    """Gated action: cancel the long-running and terminate the idle-in-transaction backends listed."""
    from opsnb.checks.actions import action
    from opsnb.checks.postgres.session import connect

    if targets is None or not len(targets):
        print("No runaway backend to cancel or terminate.")
        return None
    plan = [
        shown(stop_statement(r["how"]), (_pid(r["pid"]),))
        + f"  -- {r['application_name'] or '?'}, {r['seconds']} s: {r['query']}"
        for r in targets.to_dict("records")
    ]
    plan.append(
        "cancel stops the running statement; terminate closes the session and rolls back its transaction"
    )

    def apply():
        with connect(writer_database_url_env, read_only=False) as rw:
            return stop_backends(rw, targets)

    return action(f"Stop {len(targets)} runaway backend(s)", plan, apply)
