"""Every runbook's notebook runs under nbval on the sandbox; restore-test's leaves no scratch database."""

from __future__ import annotations

import psycopg
import pytest
from runbooks.runbook_run import run_nbval

from opsnb.runner.inspection import runbook_names


@pytest.mark.parametrize("runbook", runbook_names())
def test_notebook_runs_under_nbval(sandbox, tmp_path, runbook):
    proc = run_nbval(runbook, tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout
    if runbook == "restore-test":  # the scratch database it restores into is dropped again
        with psycopg.connect(sandbox.admin_url, autocommit=True) as conn:
            left = conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE 'opsnb_restore_%'"
            ).fetchall()
        assert left == []
