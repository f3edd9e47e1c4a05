"""db-maintenance end to end on the sandbox.

The runbook produces its daily/weekly/monthly tables and a verdict, one conclusion per check in the runbook's
order: the archive candidates (orders older than 2 years) are counted, and the archive is NOT offered because
"OrderItem" references "Order" with ON DELETE CASCADE (the runbook's own SQL would silently delete their
items): a P3. A role without privileges on the shop's tables gets inconclusive conclusions saying why instead
of a crash, and the run WARNs. The notebook also runs under nbval (test_nbval.py).
"""

from __future__ import annotations

import json
import secrets

import psycopg
from psycopg import sql
from runbooks.runbook_run import found, run_runbook

RUNBOOK = "db-maintenance"
# the checks, in the order the runbook reaches them (daily, weekly, monthly)
CHECKS = [
    "safety.read-only-role",
    "postgres.connection-usage",
    "postgres.replication-slots",
    "postgres.replication-lag",
    "postgres.old-snapshots",
    "postgres.prepared-transactions",
    "postgres.deadlocks",
    "postgres.statement-stats",
    "postgres.slow-statements",
    "postgres.unused-indexes",
    "postgres.duplicate-indexes",
    "postgres.invalid-indexes",
    "postgres.invalid-constraints",
    "postgres.cache-hit-rate",
    "postgres.temp-files",
    "postgres.vacuum-analyze",
    "postgres.dead-tuples",
    "postgres.wraparound",
    "postgres.autovacuum-freeze",
    "postgres.sequences",
    "postgres.archive-candidates",
    "postgres.settings",
]


def dbname_of(url: str) -> str:
    return url.rsplit("/", 1)[-1].split("?", 1)[0]


def test_tables_verdict_and_archive_candidates(sandbox, tmp_path):
    with psycopg.connect(sandbox.admin_url) as conn:
        old = conn.execute(
            """SELECT count(*) FROM "Order" WHERE "createdAt" < now() - interval '2 years'"""
        ).fetchone()[0]
    assert old > 0
    out = tmp_path / "out"
    code, m = run_runbook(RUNBOOK, out, allow_writes=True)  # even allowed, the cascading archive is refused
    assert [f["check"] for f in m["findings"]] == CHECKS
    assert m["outcome"] == "WARN" and code == 1
    [refused] = found(m, "postgres.archive-candidates", "P3")
    assert refused["status"] == "warn"
    assert refused["title"].startswith(f'{old} "Order" row(s) older than 2 years (')
    assert refused["title"].endswith(
        'cannot be archived as the runbook says: deleting them cascades to "OrderItem"'
    )
    assert refused["evidence"][0]["rows"] == old and refused["evidence"][0]["cascades_to"] == '"OrderItem"'
    assert not m["actions"]
    [target] = [t for t in m["targets"] if t["kind"] == "postgres"]  # which server was judged, no password
    assert target["database"] == dbname_of(sandbox.admin_url) and target["role"] and target["server_version"]
    assert "password" not in target
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
        assert (code, m["outcome"]) == (1, "WARN")  # blind spots, never a clean PASS
        assert [f["check"] for f in m["findings"]] == CHECKS  # every check ran, none crashed
        [refused] = found(m, "postgres.archive-candidates")
        assert (refused["status"], refused["title"]) == (
            "inconclusive",
            "Could not check postgres.archive-candidates",
        )
        assert "permission denied" in refused["detail"]
        [stats] = found(m, "postgres.statement-stats")  # other roles' statement texts are hidden from it
        assert stats["status"] == "inconclusive" and "grant pg_monitor" in stats["detail"]
    finally:
        with psycopg.connect(sandbox.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
