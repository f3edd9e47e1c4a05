"""The log drain's synthetic history follows the faults; the live app's lines and a Vercel rollback stay."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

from opsnb.sandbox import drain

OAUTH_ERROR = "[next-auth][error][OAUTH_CALLBACK_ERROR]"


def _records(files: list[Path]) -> list[dict]:
    return [json.loads(line) for f in files for line in f.read_text().splitlines() if line.strip()]


def _server_errors(records: list[dict], since_ms: int) -> list[dict]:
    return [
        r for r in records if r["timestamp"] >= since_ms and (r["statusCode"] >= 500 or r["statusCode"] == -1)
    ]


def _vercel(sandbox, method: str, path: str) -> httpx.Response:
    return httpx.request(
        method,
        sandbox["SANDBOX_VERCEL_API_BASE"] + path,
        headers={"Authorization": f"Bearer {sandbox['VERCEL_TOKEN']}"},
    )


def test_history_follows_500_burst_and_nextauth_url(sandbox) -> None:
    log_dir = Path(sandbox["SANDBOX_LOG_DIR"])
    project = sandbox["SANDBOX_VERCEL_PROJECT"]
    recent = int((time.time() - 30 * 60) * 1000)
    assert httpx.get(sandbox.app_url + "/api/health").status_code == 200  # at least one live line
    live_before = {p: p.read_bytes() for p in drain.live_files(log_dir)}
    assert any(b'"path": "/api/health"' in b for b in live_before.values())

    try:
        with sandbox.faults(**{"500_burst": True}, nextauth_url=True):
            on = _records(drain.history_files(log_dir))
        assert _server_errors(on, recent), "the burst should be in the last 30 minutes of history"
        assert any(OAUTH_ERROR in r["message"] for r in on)
        previous = _vercel(sandbox, "GET", "/v6/deployments?limit=10").json()["deployments"][1]["uid"]
        assert _vercel(sandbox, "POST", f"/v1/projects/{project}/rollback/{previous}").status_code == 201

        with sandbox.faults(**{"500_burst": False}, nextauth_url=False):
            off = _records(drain.history_files(log_dir))
            assert not _server_errors(off, recent)
            assert not any(OAUTH_ERROR in r["message"] for r in off)
            # same requests at the same times on the same deployments: only the outcomes changed
            key = ("timestamp", "path", "deploymentId", "requestId")
            same = [tuple(r[k] for k in key) for r in on if OAUTH_ERROR not in r["message"]]
            assert [tuple(r[k] for k in key) for r in off] == same
            # the live lines are kept, and the rollback is not undone
            for path, before in live_before.items():
                assert path.read_bytes().startswith(before)
            body = _vercel(sandbox, "GET", f"/v9/projects/{project}").json()
            assert body["targets"]["production"]["id"] == previous
            assert body["lastRollbackTarget"]["toDeploymentId"] == previous
            assert body["lastRollbackTarget"]["requestedAt"] > recent

        # switched on again (the bad deployment live again): the same history as before
        assert _records(drain.history_files(log_dir)) == on
        assert not any(
            r["requestId"] in {x["requestId"] for x in on} for r in _records(drain.live_files(log_dir))
        )
    finally:
        sandbox.set_fault("500-burst", True)
