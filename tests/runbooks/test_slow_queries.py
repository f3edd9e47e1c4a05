"""slow-queries end to end on the sandbox.

With its faults on the runbook WARNs naming "Order"."userId" (missing index, confirmed by EXPLAIN) and the
shop-worker session idle in transaction, its conclusions in the runbook's order; with --allow-writes it
terminates that session and creates the index CONCURRENTLY; with the faults off the next run PASSes. A plain
role (no superuser, no pg_read_all_stats) on a database without pg_stat_statements cannot see the statements
or the other roles' sessions: those checks conclude inconclusive, saying how to enable pg_stat_statements and
to grant pg_monitor (never "no session idle in transaction"), the run WARNs, and every other check still
runs. The notebook also runs under nbval (test_nbval.py).
"""

from __future__ import annotations

import secrets

import psycopg
from psycopg import sql
from runbooks.runbook_run import found, run_runbook

RUNBOOK = "slow-queries"
# the checks, in the order the runbook reaches them
CHECKS = [
    "safety.read-only-role",
    "postgres.statement-stats",
    "postgres.slow-statements",
    "postgres.missing-indexes",
    "postgres.connection-usage",
    "postgres.idle-in-transaction",
    "postgres.long-running-queries",
    "postgres.blocked-queries",
]
SESSION_CHECKS = ("postgres.idle-in-transaction", "postgres.long-running-queries", "postgres.blocked-queries")


def index_exists(sandbox) -> bool:
    with psycopg.connect(sandbox.admin_url) as conn:
        row = conn.execute(
            """SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('"Order_userId_idx"')"""
        )
        got = row.fetchone()
    return bool(got and got[0])


def test_faults_found_fixed_by_actions_then_pass(sandbox, tmp_path):
    out = tmp_path / "out"
    with sandbox.faults(missing_index=True, idle_in_transaction=True):
        assert not index_exists(sandbox)
        # 1. faults on: WARN naming the column and the idle session; actions only planned
        code, m = run_runbook(RUNBOOK, out)
        assert (code, m["outcome"]) == (1, "WARN")
        assert [f["check"] for f in m["findings"]] == CHECKS
        [missing] = found(m, "postgres.missing-indexes", "P2")
        assert (missing["status"], missing["title"]) == ("warn", 'Missing index on "Order"."userId"')
        [order] = [row for row in missing["evidence"] if row["table"] == "Order"]
        assert order["verdict"] == "missing index" and order["column"] == "userId"
        assert "Seq Scan" in order["plan"] and '"userId" = $1' in order["plan"]
        assert 'CREATE INDEX CONCURRENTLY IF NOT EXISTS "Order_userId_idx"' in missing["detail"]
        [idle] = found(m, "postgres.idle-in-transaction", "P2")
        assert idle["title"].startswith("Idle in transaction: shop-worker (pid ")  # named by application_name
        assert [row["application_name"] for row in idle["evidence"]] == ["shop-worker"]
        assert {a["title"]: a["status"] for a in m["actions"]} == {
            "Stop 1 runaway backend(s)": "planned",
            "Create index Order_userId_idx": "planned",
        }
        assert not index_exists(sandbox)

        # 2. --allow-writes: the idle session is terminated first, then the index is built CONCURRENTLY
        code, m = run_runbook(RUNBOOK, out, allow_writes=True)
        actions = {a["title"]: a for a in m["actions"]}
        assert actions["Create index Order_userId_idx"]["status"] == "applied"
        assert actions["Create index Order_userId_idx"]["result"] == "created Order_userId_idx"
        assert actions["Stop 1 runaway backend(s)"]["status"] == "applied"
        assert index_exists(sandbox)

        # 3. faults off (the sandbox keeps the index, resets the statistics, replays its workload): PASS
        sandbox.set_fault("missing-index", False)
        sandbox.set_fault("idle-in-transaction", False)
        code, m = run_runbook(RUNBOOK, out)
        assert (code, m["outcome"]) == (0, "PASS"), [
            f["title"] for f in m["findings"] if f["severity"] != "info"
        ]
        assert not m["actions"]
        assert [f["check"] for f in m["findings"]] == CHECKS
        assert {f["status"] for f in m["findings"]} == {"pass"}  # nothing inconclusive either
        titles = [f["title"] for f in m["findings"]]
        assert "pg_stat_statements is enabled" in titles
        assert "No session is idle in a transaction for >= 1 s" in titles
        [cleared] = found(m, "postgres.missing-indexes")
        assert cleared["title"].startswith("No ")  # no suspect, or its plans use an index now


def test_plain_role_without_pg_stat_statements(sandbox, tmp_path):
    """What a Neon user without superuser sees: nothing crashes, and what it cannot see is never a pass."""
    role, db, password = "opsnb_plain_test", "opsnb_nostats_test", secrets.token_urlsafe(12)
    with psycopg.connect(sandbox.admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db)))
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(password))
        )
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(db), sql.Identifier(role)))
    base = sandbox.admin_url.split("@", 1)[1].rsplit("/", 1)[0]
    url = f"postgresql://{role}:{password}@{base}/{db}"
    try:
        with sandbox.faults(idle_in_transaction=True):
            code, m = run_runbook(
                RUNBOOK,
                tmp_path / "out",
                "database_url_env=OPSNB_PLAIN_TEST_URL",
                env={"OPSNB_PLAIN_TEST_URL": url},
            )
        assert (code, m["outcome"]) == (1, "WARN")
        assert [f["check"] for f in m["findings"]] == CHECKS  # every check ran, none crashed
        [stats] = found(m, "postgres.statement-stats")
        assert stats["status"] == "inconclusive"
        assert "CREATE EXTENSION pg_stat_statements" in stats["detail"] and "Neon" in stats["detail"]
        assert found(m, "postgres.slow-statements")[0]["status"] == "inconclusive"
        for check in SESSION_CHECKS:  # the shop-worker is there, but not visible to this role
            [blind] = found(m, check)
            assert (blind["status"], blind["essential"]) == ("inconclusive", True), blind
            assert blind["detail"].startswith("could not see other roles' sessions (")
            assert "grant pg_monitor" in blind["detail"]
        assert found(m, "postgres.connection-usage")[0]["status"] == "pass"  # counting needs no privilege
        assert found(m, "postgres.missing-indexes")[0]["status"] == "pass"  # its own database has no table
        assert not [f for f in m["findings"] if "idle" in f["title"].lower() and f["status"] == "pass"]
    finally:
        with psycopg.connect(sandbox.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db)))
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
