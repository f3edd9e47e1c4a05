"""The runner drives fixture notebooks through every outcome, each with its exit code and a full bundle."""

from __future__ import annotations

import hashlib
import json
import re
import signal
import time
from pathlib import Path

import pytest
from runner.workspace import CANARY, CANARY_PASSWORD, Workspace

EXIT = {"PASS": 0, "WARN": 1, "FAIL": 2, "ERROR": 4, "TIMEOUT": 4, "KERNEL-DIED": 4, "INTERRUPTED": 4}


def only_the_verdict_line(stdout: str, stderr: str, outcome: str) -> None:
    """The terminal got the verdict line and nothing else: no kernel output, no library log line."""
    assert stderr == "", stderr
    lines = stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith(outcome), stdout


def check_bundle(ws: Workspace, runbook: str, outcome: str) -> dict:
    """Exactly one complete bundle for ``runbook`` with ``outcome``; returns its manifest."""
    manifests = ws.bundles(runbook)
    assert len(manifests) == 1, manifests
    manifest = json.loads(manifests[0].read_text())
    assert manifest["outcome"] == outcome
    assert manifest["exit_code"] == EXIT[outcome]
    for name, digest in manifest["files"].items():
        path = manifests[0].parent / name
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    assert {Path(n).suffix for n in manifest["files"]} == {".ipynb", ".html"}
    for key in (
        "run_id",
        "runbook",
        "env",
        "user",
        "host",
        "started_at",
        "ended_at",
        "duration_s",
        "opsnb_version",
    ):
        assert manifest[key] not in (None, ""), key
    index = (ws.outputs / "index.html").read_text()
    assert manifest["run_id"] in index or Path(next(iter(manifest["files"]))).stem in index
    html = (manifests[0].with_suffix(".html")).read_text()
    assert f'badge {outcome}"' in html
    return manifest


@pytest.mark.parametrize(
    "severity,outcome",
    [("none", "PASS"), ("P2", "WARN"), ("P1", "FAIL")],  # P0/P3 mapping: test_severity.py
)
def test_verdicts(workspace: Workspace, severity: str, outcome: str) -> None:
    result = workspace.run(
        "run", "verdict", "--env", "test", "-p", f"severity={severity}", "--incident", "INC-7"
    )
    assert result.returncode == EXIT[outcome], result.stderr
    manifest = check_bundle(workspace, "verdict", outcome)
    assert manifest["incident"] == "INC-7"
    # defaults < runbook block < -p, typed by the declared types; '00123' stays a string
    assert manifest["parameters"]["ticket"] == "00123"
    assert manifest["parameters"]["count"] == 2
    assert result.stdout.splitlines()[0].startswith(outcome)
    if severity != "none":
        assert manifest["highest_severity"] == severity
        assert "ticket='00123' count=2" in manifest["findings"][0]["detail"]


def test_error_cell(workspace: Workspace) -> None:
    result = workspace.run("run", "error", "--env", "test")
    assert result.returncode == 4
    only_the_verdict_line(result.stdout, result.stderr, "ERROR")
    manifest = check_bundle(workspace, "error", "ERROR")
    assert "boom: the check blew up" in manifest["error"]
    # what was concluded before the failing cell is kept in the manifest and the report
    assert [(f["check"], f["status"]) for f in manifest["findings"]] == [("fixture.before", "pass")]
    html = workspace.bundles("error")[0].with_suffix(".html").read_text()
    assert f'href="#cell-{manifest["failed_cell"]}"' in html
    assert "looked before the failure" in html.split('id="cell-')[0]  # in the header's conclusions
    assert "An Exception was encountered" not in html  # papermill's banner: our failure box says it once
    assert f'id="cell-{manifest["failed_cell"]}"' in html
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout


def test_timeout(workspace: Workspace) -> None:
    result = workspace.run("run", "timeout", "--env", "test", "--timeout", "2")
    assert result.returncode == 4
    manifest = check_bundle(workspace, "timeout", "TIMEOUT")
    assert manifest["failed_cell"] is not None
    assert "2s" in manifest["error"]
    # nbclient's "Timeout waiting for execute reply" and the kernel's ZMQ traceback stay off the terminal
    only_the_verdict_line(result.stdout, result.stderr, "TIMEOUT")


def test_kernel_died(workspace: Workspace) -> None:
    result = workspace.run("run", "kernel-died", "--env", "test")
    assert result.returncode == 4
    check_bundle(workspace, "kernel-died", "KERNEL-DIED")
    only_the_verdict_line(result.stdout, result.stderr, "KERNEL-DIED")  # no "Kernel died while waiting…"


def test_no_verdict_is_an_error(workspace: Workspace) -> None:
    result = workspace.run("run", "no-verdict", "--env", "test")
    assert result.returncode == 4
    manifest = check_bundle(workspace, "no-verdict", "ERROR")
    assert "without recording a verdict" in manifest["error"]


def test_interrupted_still_writes_bundle(workspace: Workspace) -> None:
    proc = workspace.popen("run", "interrupt", "--env", "test")
    marker = Path(workspace.env["MARKER"])
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert marker.exists(), "the long cell never started"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 4, err
    manifest = check_bundle(workspace, "interrupt", "INTERRUPTED")
    assert manifest["failed_cell"] is not None
    only_the_verdict_line(out, err, "INTERRUPTED")  # no [IPKernelApp] lines, no ZMQ traceback
    assert workspace.work_folders() == []


def test_canary_secret_never_written_or_printed(workspace: Workspace) -> None:
    result = workspace.run("run", "canary", "--env", "test")
    assert result.returncode == 4
    files = workspace.all_files()
    assert any(p.suffix == ".html" for p in files)
    for path in files:
        text = path.read_bytes().decode("utf-8", "replace")
        assert CANARY not in text, path
        assert CANARY_PASSWORD not in text, path
    for stream in (result.stdout, result.stderr):
        assert CANARY not in stream and CANARY_PASSWORD not in stream
    manifest = json.loads(workspace.bundles("canary")[0].read_text())
    assert "***" in manifest["error"]  # the message is there, the secret is not


def test_concurrent_runs_of_same_notebook(workspace: Workspace) -> None:
    procs = [workspace.popen("run", "verdict", "--env", "test") for _ in range(2)]
    for proc in procs:
        proc.communicate(timeout=120)
        assert proc.returncode == 0
    manifests = [json.loads(p.read_text()) for p in workspace.bundles("verdict")]
    assert len(manifests) == 2
    assert len({m["run_id"] for m in manifests}) == 2
    for m in manifests:
        assert all((workspace.outputs / "verdict" / name).exists() for name in m["files"])
    index = (workspace.outputs / "index.html").read_text()
    assert len(set(re.findall(r'href="verdict/[^"]+\.html"', index))) == 2  # the board links the latest again
