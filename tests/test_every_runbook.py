"""Every runbook against the sandbox, as `make demo` runs them: each reaches a verdict, and the canary holds.

The sandbox's secrets are random per start, so they are canaries: none of them may appear in any file of
any bundle, in the index, or on the terminal.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from opsnb.runner.inspection import runbook_names

SECRET_NAMES = re.compile(r"KEY|SECRET|TOKEN|PASSWORD")


def canaries(env: dict[str, str]) -> set[str]:
    """Secret values of the sandbox: tokens, keys, and the passwords inside its database URLs."""
    values = {v for k, v in env.items() if SECRET_NAMES.search(k) and v}
    for k, v in env.items():
        if k.endswith("DATABASE_URL"):
            values |= set(re.findall(r"://[^:/@]+:([^@]+)@", v))
    return {v for v in values if len(v) >= 6}


def test_every_runbook_reaches_a_verdict_and_leaks_nothing(sandbox, tmp_path) -> None:
    names = runbook_names()
    assert len(names) >= 1
    env = {**os.environ, "OPSNB_OUTPUTS": str(tmp_path / "outputs")}
    result = subprocess.run(
        [sys.executable, "-m", "opsnb.cli", "run", "--all", "--env", "sandbox", "--incident", "CANARY"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode in (0, 1, 2), result.stdout + result.stderr
    outcomes = {}
    for name in names:
        manifests = list((tmp_path / "outputs" / name).glob("*.json"))
        assert len(manifests) == 1, name
        outcomes[name] = json.loads(manifests[0].read_text())["outcome"]
    assert set(outcomes.values()) <= {"PASS", "WARN", "FAIL"}, outcomes
    secrets = canaries(sandbox.env)
    assert len(secrets) >= 5
    files = [p for p in (tmp_path / "outputs").rglob("*") if p.is_file()]
    for path in files:
        text = path.read_bytes().decode("utf-8", "replace")
        leaked = [s[:4] + "…" for s in secrets if s in text]
        assert not leaked, f"{path.name} contains secrets {leaked}"
    for stream in (result.stdout, result.stderr):
        assert not [s for s in secrets if s in stream]
    assert f"index: {tmp_path / 'outputs' / 'index.html'}" in result.stdout
