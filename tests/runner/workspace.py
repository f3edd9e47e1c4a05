"""Fixtures for driving the runner end to end on small fixture notebooks."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

CANARY = "canary-Zq7x-4f1b9e2d-SECRET"
CANARY_PASSWORD = "pw-canary-8c1e77aa"

PARAMS_CELL = """severity: str = "none"  # severity of the one finding: none, P0..P3
ticket: str = "T-1"  # an id that must stay a string
count: int = 1  # how many times
ratio: float = 0.5  # a float
verbose: bool = False  # a flag
token_env: str = "CANARY_TOKEN"  # env var holding the token
"""

NOTEBOOKS = {
    "verdict": [
        "from opsnb import findings\n"
        "if severity != 'none':\n"
        "    findings.add(severity, f'planted {severity} finding', f'ticket={ticket!r} count={count} ratio={ratio} verbose={verbose}')\n"
        "else:\n"
        "    findings.ok('nothing wrong', f'ticket={ticket!r}')",
        "findings.record()",
    ],
    "error": [
        "from opsnb import findings",
        "raise ValueError('boom: the check blew up')",
        "findings.record()",
    ],
    "timeout": ["import time\ntime.sleep(60)", "from opsnb import findings\nfindings.record()"],
    "kernel-died": [
        "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)",
        "from opsnb import findings\nfindings.record()",
    ],
    "interrupt": [
        "import os, pathlib, time\npathlib.Path(os.environ['MARKER']).write_text('started')\ntime.sleep(60)",
        "from opsnb import findings\nfindings.record()",
    ],
    "no-verdict": ["x = 1"],
    "canary": [
        "from opsnb import findings\nfrom opsnb.secrets import secret\ntoken = secret(token_env)\nprint('token is', token)\nprint('raw', token.reveal())",
        "dsn = f'postgresql://app:{token.reveal()}@db.example:5432/shop'\nprint(dsn)\nother = 'postgresql://app:"
        + CANARY_PASSWORD
        + "@db.example/shop'\nprint(other)",
        "findings.add('P2', 'token check', f'dsn={dsn}')",
        "raise RuntimeError(f'cannot connect with {token.reveal()} via {dsn}')",
    ],
}


def make_notebook(purpose: str, cells: list[str]) -> nbformat.NotebookNode:
    """A runbook-shaped notebook: purpose markdown, parameters cell, then ``cells``."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_markdown_cell(f"# Fixture\n{purpose}"),
        nbformat.v4.new_code_cell(PARAMS_CELL, metadata={"tags": ["parameters"]}),
        *[nbformat.v4.new_code_cell(src) for src in cells],
    ]
    return nb


@dataclass
class Workspace:
    """A private notebooks/parameters/outputs tree and a way to call the CLI on it."""

    root: Path
    env: dict[str, str]

    @property
    def outputs(self) -> Path:
        return self.root / "outputs"

    def run(self, *args: str, timeout: float = 120, **popen) -> subprocess.CompletedProcess:
        """`opsnb ARGS` in a subprocess; stdout/stderr captured as text."""
        return subprocess.run(
            [sys.executable, "-m", "opsnb.cli", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            **popen,
        )

    def popen(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "opsnb.cli", *args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            stdin=subprocess.DEVNULL,
        )

    def bundles(self, runbook: str) -> list[Path]:
        """Manifest paths written for ``runbook``."""
        return sorted((self.outputs / runbook).glob("*.json"))

    def all_files(self) -> list[Path]:
        return [p for p in self.outputs.rglob("*") if p.is_file()] if self.outputs.exists() else []


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    nbdir, pdir = tmp_path / "notebooks", tmp_path / "parameters"
    nbdir.mkdir()
    pdir.mkdir()
    for name, cells in NOTEBOOKS.items():
        nbformat.write(make_notebook(f"Fixture runbook '{name}'.", cells), nbdir / f"{name}.ipynb")
    env_file = tmp_path / "test.env"
    env_file.write_text(f"CANARY_TOKEN={CANARY}\nAPP_URL=http://127.0.0.1:9\n")
    env_file.chmod(0o600)
    (pdir / "test.yaml").write_text(
        f"env_file: {env_file}\ndefaults:\n  ticket: 00123\n  unrelated: ignored by runbooks that do not declare it\n"
        "runbooks:\n  verdict:\n    count: 2\n"
    )
    env = {
        **os.environ,
        "OPSNB_NOTEBOOKS": str(nbdir),
        "OPSNB_PARAMETERS": str(pdir),
        "OPSNB_OUTPUTS": str(tmp_path / "outputs"),
        "MARKER": str(tmp_path / "marker"),
    }
    env.pop("CANARY_TOKEN", None)
    return Workspace(tmp_path, env)
