"""db-maintenance end to end on the sandbox.

The runbook produces its daily/weekly/monthly tables and a verdict: the archive candidates (orders older than
2 years) are counted, and the archive is NOT offered because "OrderItem" references "Order" with ON DELETE
CASCADE (the runbook's own SQL would silently delete their items). A role without privileges on the shop's
tables gets info findings instead of a crash. The notebook also runs under nbval.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import psycopg
from psycopg import sql

RUNBOOK = "db-maintenance"
OPSNB = str(Path(sys.executable).parent / "opsnb")
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


def run(out: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, dict, Path]:
    proc = subprocess.run(
        [OPSNB, "run", RUNBOOK, "--env", "sandbox", *args],
        env={**os.environ, "OPSNB_OUTPUTS": str(out), **(env or {})},
        capture_output=True,
        text=True,
        timeout=240,
    )
    manifests = sorted((out / RUNBOOK).glob("*.json"), key=lambda p: p.stat().st_mtime)
    assert manifests, f"no manifest; exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    manifest = json.loads(manifests[-1].read_text())
    assert manifest["outcome"] in ("PASS", "WARN", "FAIL"), (
        f"{manifest['outcome']}: {manifest.get('error')}\n{proc.stderr}"
    )
    return proc.returncode, manifest, manifests[-1].with_suffix(".ipynb")


def test_tables_verdict_and_archive_candidates(sandbox, tmp_path):
    with psycopg.connect(sandbox.admin_url) as conn:
        old = conn.execute(
            """SELECT count(*) FROM "Order" WHERE "createdAt" < now() - interval '2 years'"""
        ).fetchone()[0]
    assert old > 0
    code, m, executed = run(
        tmp_path / "out", "--allow-writes"
    )  # even allowed, the cascading archive is refused
    assert {f["check"] for f in m["findings"]} >= CHECKS
    assert m["outcome"] == "WARN" and code == 1
    [cand] = [f for f in m["findings"] if f["check"] == "archive candidates" and f["severity"] == "info"]
    assert cand["title"].startswith(f'{old} "Order" row(s) older than 2 years')
    [refused] = [f for f in m["findings"] if f["check"] == "archive candidates" and f["severity"] == "P3"]
    assert refused["title"] == 'Archive of "Order" not offered: it would cascade to "OrderItem"'
    assert not m["actions"]
    with psycopg.connect(sandbox.admin_url) as conn:  # nothing was archived
        assert conn.execute('SELECT count(*) FROM "OrderArchive"').fetchone()[0] == 0
    nb = json.loads(executed.read_text())
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
        code, m, _ = run(
            tmp_path / "out",
            "-p",
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


def test_notebook_runs_under_nbval(sandbox, tmp_path):
    from opsnb.lab import kernel_environment, prepare

    copy = prepare(RUNBOOK, "sandbox", tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider", "-q", str(copy)],
        env={**os.environ, **kernel_environment("sandbox")},
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
