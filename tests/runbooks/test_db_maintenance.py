"""db-maintenance end to end on the sandbox.

The runbook produces its daily/weekly/monthly tables and a verdict: the archive candidates (orders older than
2 years) are counted, and the archive is NOT offered because "OrderItem" references "Order" with ON DELETE
CASCADE (the runbook's own SQL would silently delete their items). A role without privileges on the shop's
tables gets info findings instead of a crash. The notebook also runs under nbval (test_nbval.py).
"""

from __future__ import annotations

import json
import secrets

import psycopg
from psycopg import sql
from runbooks.runbook_run import found, run_runbook

RUNBOOK = "db-maintenance"
CHECKS = {
    "pg_stat_statements",
    "unused indexes",
    "duplicate indexes",
    "invalid indexes",
    "cache hit rate",
    "vacuum and analyze",
    "dead tuples",
    "wraparound",
    "sequences",
    "archive candidates",
}


def test_tables_verdict_and_archive_candidates(sandbox, tmp_path):
    with psycopg.connect(sandbox.admin_url) as conn:
        old = conn.execute(
            """SELECT count(*) FROM "Order" WHERE "createdAt" < now() - interval '2 years'"""
        ).fetchone()[0]
    assert old > 0
    out = tmp_path / "out"
    code, m = run_runbook(RUNBOOK, out, allow_writes=True)  # even allowed, the cascading archive is refused
    assert {f["check"] for f in m["findings"]} >= CHECKS
    assert m["outcome"] == "WARN" and code == 1
    [cand] = found(m, "archive candidates", "info")
    assert cand["title"].startswith(f'{old} "Order" row(s) older than 2 years')
    [refused] = found(m, "archive candidates", "P3")
    assert refused["title"] == 'Archive of "Order" not offered: it would cascade to "OrderItem"'
    assert not m["actions"]
    with psycopg.connect(sandbox.admin_url) as conn:  # nothing was archived
        assert conn.execute('SELECT count(*) FROM "OrderArchive"').fetchone()[0] == 0
    [executed] = [name for name in m["files"] if name.endswith(".ipynb")]
    nb = json.loads((out / RUNBOOK / executed).read_text())
    tables = [
        o
        for c in nb["cells"]
        if c["cell_type"] == "code"
        for o in c.get("outputs", [])
        if "text/html" in o.get("data", {})
    ]
    assert len(tables) >= 12  # sizes, connections, statements, index and maintenance tables
    assert any("OrderItem" in "".join(o["data"]["text/html"]) for o in tables)


def test_role_without_table_privileges(sandbox, tmp_path):
    role, password = "opsnb_plain_maint", secrets.token_urlsafe(12)
    with psycopg.connect(sandbox.admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(password))
        )
    host, dbname = sandbox.admin_url.split("@", 1)[1].rsplit("/", 1)
    try:
        code, m = run_runbook(
            RUNBOOK,
            tmp_path / "out",
            "database_url_env=OPSNB_PLAIN_MAINT_URL",
            env={"OPSNB_PLAIN_MAINT_URL": f"postgresql://{role}:{password}@{host}/{dbname}"},
        )
        assert code in (0, 1, 2)
        [refused] = [f for f in m["findings"] if f["title"] == "Could not check archive candidates"]
        assert refused["severity"] == "info" and "permission denied" in refused["detail"]
    finally:
        with psycopg.connect(sandbox.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
