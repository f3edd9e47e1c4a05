"""slow-queries end to end on the sandbox.

With its faults on the runbook WARNs naming "Order"."userId" (missing index, confirmed by EXPLAIN) and the
shop-worker session idle in transaction; with --allow-writes it terminates that session and creates the
index CONCURRENTLY; with the faults off the next run PASSes. A plain role (no superuser, no
pg_read_all_stats) on a database without pg_stat_statements gets a P2 saying how to enable it, info findings
for what it cannot see, and every other check still runs. The notebook also runs under nbval (test_nbval.py).
"""

from __future__ import annotations

import secrets

import psycopg
from psycopg import sql
from runbooks.runbook_run import found, run_runbook

RUNBOOK = "slow-queries"


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
        [missing] = found(m, "missing indexes", "P2")
        assert missing["title"] == 'Missing index on "Order"."userId"'
        assert "Seq Scan" in missing["evidence"]["plan"] and '"userId" = $1' in missing["evidence"]["plan"]
        assert 'CREATE INDEX CONCURRENTLY IF NOT EXISTS "Order_userId_idx"' in missing["detail"]
        [idle] = found(m, "idle in transaction", "P2")
        assert idle["title"].startswith("Idle in transaction: shop-worker (pid ")  # named by application_name
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
        titles = [f["title"] for f in m["findings"]]
        assert "pg_stat_statements is enabled" in titles
        assert "No session idle in transaction for >= 1 s" in titles


def test_plain_role_without_pg_stat_statements(sandbox, tmp_path):
    """What a Neon user without superuser sees: nothing crashes, hidden things are info findings."""
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
        [p2] = found(m, severity="P2")
        assert p2["title"] == "pg_stat_statements is not enabled"
        assert "CREATE EXTENSION pg_stat_statements" in p2["detail"] and "Neon" in p2["detail"]
        [hidden] = found(m, "activity visibility", "info")
        assert "hidden from this role" in hidden["title"]  # the shop-worker is there but not visible to us
        checks = {f["check"] for f in m["findings"]}
        assert {
            "long-running queries",
            "blocked queries",
            "idle in transaction",
            "connections",
            "missing indexes",
        } <= checks
    finally:
        with psycopg.connect(sandbox.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db)))
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
