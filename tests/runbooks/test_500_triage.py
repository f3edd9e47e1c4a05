"""500-triage end to end on the sandbox.

With the 500-burst fault on, the runbook FAILs (P1 alert rule) naming the deployment that started the burst and
the top error signature, counts planted garbage log lines, and — with --allow-writes — rolls production back to
the previous READY deployment; the re-run shows recovery and PASSes. With the fault off it PASSes. The notebook
also runs under nbval (tests/runbooks/test_nbval.py)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from runbooks.runbook_run import found, run_runbook

RUNBOOK = "500-triage"
PRICE_ERROR = "TypeError: Cannot read properties of undefined (reading 'price')"
GARBAGE = b'{"id": "cut", "timestamp": 17\n\xff\xfe\x00\x01\x02\n\n[1, 2]\n'  # truncated, binary, empty, not an object


def vercel_state(sandbox) -> dict:
    return json.loads((sandbox.state_dir / "vercel.json").read_text())


def test_burst_fails_rollback_recovers_fault_off_passes(sandbox, tmp_path):
    out = tmp_path / "out"
    garbage = Path(sandbox["SANDBOX_LOG_DIR"]) / "vercel-zz-garbage.ndjson"
    try:
        sandbox.set_fault("500-burst", True)  # also makes the bad deployment live again
        state = vercel_state(sandbox)
        bad, previous = state["bad"], state["deployments"][1]["uid"]
        assert state["current"] == bad
        garbage.write_bytes(GARBAGE)

        # fault on: FAIL naming the deployment and the top signature; rollback applied
        code, m = run_runbook(RUNBOOK, out, allow_writes=True)
        assert code == 2 and m["outcome"] == "FAIL"
        [alert] = found(m, "triage.error-rate", "P1")
        assert alert["status"] == "fail" and alert["title"].startswith("Error rate ")
        assert (
            bad in alert["detail"] and PRICE_ERROR in alert["detail"] and "top signature" in alert["detail"]
        )
        [routes] = found(m, "triage.routes", "P1")
        assert "/api/products" in routes["title"], "probes of /api/products should catch the live 500s"
        assert found(m, "triage.health", "info") and not found(m, "triage.health", "P0")
        [logs] = found(m, "triage.logs")
        assert logs["status"] == "pass" and "4 garbage lines skipped" in logs["title"]
        assert "binary 1" in logs["detail"] and "empty 1" in logs["detail"]
        [top] = found(m, "triage.top-signatures")
        assert top["title"].startswith("Top error signature: ") and PRICE_ERROR in top["title"]
        [cause2] = found(m, "triage.unhandled-exceptions")
        assert PRICE_ERROR in cause2["title"]
        assert "computeTotal (app/api/checkout/route.js)" in cause2["detail"]
        assert "formatPrice (app/api/products/route.js)" in cause2["detail"]
        [sentry] = found(m, "triage.sentry")  # Sentry's stand-in agrees; info because the P1 already fired
        assert (
            sentry["severity"] == "info" and "SHOP-42" in sentry["detail"] and PRICE_ERROR in sentry["detail"]
        )
        assert found(m, "triage.database-reachable", "info") and found(m, "triage.env-vars", "info")
        assert not [f for f in m["findings"] if f["status"] == "inconclusive"], m["findings"]
        [action] = m["actions"]
        assert action["status"] == "applied" and previous in action["title"]
        assert vercel_state(sandbox)["current"] == previous

        # re-run after the rollback: recovery
        code, m = run_runbook(RUNBOOK, out)
        assert code == 0 and m["outcome"] == "PASS", m["findings"]
        assert "instant rollback" in found(m, "triage.deployments")[0]["detail"]
        [rate] = found(m, "triage.error-rate", "info")
        assert "earlier errors outside the judged window" in rate["detail"] and bad in rate["detail"]
        assert not m["actions"]
        assert found(m, "triage.sentry", "info", "No unresolved Sentry error issue"), (
            "issue last seen before the rollback"
        )

        # fault off (the bad deployment live again, but healthy): PASS on what the live app serves. The
        # deployment goes live again through the Vercel API, so the runbook knows since when; the drain's
        # history has no burst any more, and the live 500s of the first run stay as earlier errors.
        project = sandbox["SANDBOX_VERCEL_PROJECT"]
        r = httpx.post(
            f"{sandbox['SANDBOX_VERCEL_API_BASE']}/v1/projects/{project}/rollback/{bad}",
            headers={"Authorization": f"Bearer {sandbox['VERCEL_TOKEN']}"},
        )
        assert r.status_code == 201 and vercel_state(sandbox)["current"] == bad
        sandbox.set_fault("500-burst", False)
        code, m = run_runbook(RUNBOOK, out)
        assert code == 0 and m["outcome"] == "PASS", m["findings"]
        assert found(m, "triage.health", "info") and found(m, "triage.routes", "info")
        assert found(m, "triage.sentry", "info", "No unresolved Sentry error issue")
        [rate] = found(m, "triage.error-rate", "info")
        assert f"since {bad} went live (instant rollback)" in rate["detail"]
        assert "earlier error" in rate["detail"] and "outside the judged window" in rate["detail"]
        assert not [f for f in m["findings"] if f["status"] == "inconclusive"], m["findings"]
    finally:
        garbage.unlink(missing_ok=True)
        sandbox.set_fault("500-burst", True)
