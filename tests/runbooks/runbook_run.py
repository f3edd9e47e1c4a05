"""Shared helpers of the end-to-end runbook tests: run a runbook on the sandbox, filter its findings, and run
its notebook under nbval."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

OPSNB = str(Path(sys.executable).parent / "opsnb")
VERDICTS = ("PASS", "WARN", "FAIL")


def run_runbook(
    runbook: str,
    out: Path,
    *params: str,
    allow_writes: bool = False,
    env: dict[str, str] | None = None,
    timeout: float = 300,
    terminal: list[str] | None = None,
) -> tuple[int, dict]:
    """`opsnb run RUNBOOK --env sandbox -p k=v …` with its outputs in `out`; (exit code, the run's manifest).

    Asserts that the run wrote exactly one new manifest and that its outcome is a verdict. `env` is added to
    the environment; the run's stdout and stderr are appended to `terminal` when one is given (leak checks).
    """
    cmd = [OPSNB, "run", runbook, "--env", "sandbox", *[a for p in params for a in ("-p", p)]]
    if allow_writes:
        cmd.append("--allow-writes")
    before = set((out / runbook).glob("*.json"))
    proc = subprocess.run(
        cmd,
        env={**os.environ, **(env or {}), "OPSNB_OUTPUTS": str(out)},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if terminal is not None:
        terminal += [proc.stdout, proc.stderr]
    new = sorted(set((out / runbook).glob("*.json")) - before)
    assert len(new) == 1, f"{len(new)} new manifests; exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    manifest = json.loads(new[0].read_text())
    assert manifest["outcome"] in VERDICTS, f"{manifest['outcome']}: {manifest.get('error')}\n{proc.stderr}"
    return proc.returncode, manifest


def found(
    manifest: dict, check: str | None = None, severity: str | None = None, title_prefix: str | None = None
) -> list[dict]:
    """The manifest's findings of that check, severity and title start (None: any), in order."""
    return [
        f
        for f in manifest["findings"]
        if (check is None or f["check"] == check)
        and (severity is None or f["severity"] == severity)
        and (title_prefix is None or f["title"].startswith(title_prefix))
    ]


def run_nbval(runbook: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """The runbook prepared for the sandbox in `tmp_path`, run by `pytest --nbval-lax` in the sandbox's
    kernel environment."""
    from opsnb.runner.lab import kernel_environment, prepare

    copy = prepare(runbook, "sandbox", tmp_path)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider", "-q", str(copy)],
        env={**os.environ, **kernel_environment("sandbox"), "MPLBACKEND": "agg"},
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
