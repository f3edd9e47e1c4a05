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
FD_CANARY = "fd-canary-3b9d"  # printed by the kernel through every fd path; never on the runner's terminal
WRITER_DSN = "postgresql://writer:pw-writer-5e0c1a@db.example/shop"

PARAMS_CELL = """severity: str = "none"  # severity of the one finding: none, P0..P3
ticket: str = "T-1"  # an id that must stay a string
count: int = 1  # how many times
ratio: float = 0.5  # a float
verbose: bool = False  # a flag
token_env: str = "CANARY_TOKEN"  # env var holding the token
"""

NOTEBOOKS = {
    "verdict": [
        "from opsnb.checks import findings\n"
        "if severity != 'none':\n"
        "    status = 'fail' if severity in ('P0', 'P1') else 'warn'\n"
        "    findings.conclude(status, f'planted {severity} finding', severity=severity, check_id='fixture.planted',\n"
        "                      detail=f'ticket={ticket!r} count={count} ratio={ratio} verbose={verbose}')\n"
        "else:\n"
        "    findings.conclude('pass', 'nothing wrong', detail=f'ticket={ticket!r}', check_id='fixture.planted')",
        "findings.record()",
    ],
    "error": [
        "from opsnb.checks import findings\nfindings.conclude('pass', 'looked before the failure', check_id='fixture.before')",
        "raise ValueError('boom: the check blew up')",
        "findings.record()",
    ],
    "timeout": ["import time\ntime.sleep(60)", "from opsnb.checks import findings\nfindings.record()"],
    "kernel-died": [
        "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)",
        "from opsnb.checks import findings\nfindings.record()",
    ],
    "interrupt": [
        "import os, pathlib, time\npathlib.Path(os.environ['MARKER']).write_text('started')\ntime.sleep(60)",
        "from opsnb.checks import findings\nfindings.record()",
    ],
    "no-verdict": ["x = 1"],
    "canary": [
        "from opsnb.checks import findings\nfrom opsnb.checks.secrets import secret\ntoken = secret(token_env)\nprint('token is', token)\nprint('raw', token.reveal())",
        "dsn = f'postgresql://app:{token.reveal()}@db.example:5432/shop'\nprint(dsn)\nother = 'postgresql://app:"
        + CANARY_PASSWORD
        + "@db.example/shop'\nprint(other)",
        "findings.conclude('warn', 'token check', severity='P2', detail=f'dsn={dsn}', check_id='fixture.token')",
        "raise RuntimeError(f'cannot connect with {token.reveal()} via {dsn}')",
    ],
}


# Fixtures a test adds with Workspace.add_notebook (the default set stays the one other tests list).
EXTRA_NOTEBOOKS = {
    "fd-output": [
        "import os, subprocess, sys\n"
        "subprocess.run(['env'])  # the kernel's environment holds CANARY_TOKEN\n"
        f"subprocess.run(['sh', '-c', 'echo {FD_CANARY}-sub-out; echo {FD_CANARY}-sub-err >&2'])\n"
        f"os.system('echo {FD_CANARY}-system')\n"
        f"os.write(1, b'{FD_CANARY}-fd1\\n')\n"
        f"os.write(2, b'{FD_CANARY}-fd2\\n')\n"
        f"print('{FD_CANARY}-print')\n"
        f"print('{FD_CANARY}-stderr', file=sys.stderr)",
        "from opsnb.checks import findings\nfindings.record()",
    ],
    "writer": [
        "import os\nfrom opsnb.checks import findings\n"
        "findings.conclude('pass', 'writer secret', detail=f'held={writer_database_url_env in os.environ}', check_id='fixture.writer')",
        "findings.record()",
    ],
    "sabotage": [  # swaps its own evidence folder for a file (or a symlink to $SABOTAGE_TARGET)
        "import os, pathlib, shutil\n"
        "folder = pathlib.Path(os.environ['OPSNB_OUTPUTS']) / os.environ['OPSNB_RUNBOOK']\n"
        "shutil.rmtree(folder)\n"
        "target = os.environ.get('SABOTAGE_TARGET')\n"
        "folder.symlink_to(target) if target else folder.write_text('not a folder')",
        "from opsnb.checks import findings\nfindings.record()",
    ],
}

# Parameters some fixtures declare besides PARAMS_CELL.
EXTRA_PARAMS = {
    "writer": 'writer_database_url_env: str = "WRITER_DATABASE_URL"  # env var holding the writer DSN\n',
}


def make_notebook(purpose: str, cells: list[str], extra_params: str = "") -> nbformat.NotebookNode:
    """A runbook-shaped notebook: purpose markdown, parameters cell, then ``cells``."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_markdown_cell(f"# Fixture\n{purpose}"),
        nbformat.v4.new_code_cell(PARAMS_CELL + extra_params, metadata={"tags": ["parameters"]}),
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

    def add_notebook(self, name: str) -> None:
        """Add fixture ``name`` of EXTRA_NOTEBOOKS to the notebooks folder."""
        nb = make_notebook(f"Fixture runbook '{name}'.", EXTRA_NOTEBOOKS[name], EXTRA_PARAMS.get(name, ""))
        nbformat.write(nb, self.root / "notebooks" / f"{name}.ipynb")

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

    def work_folders(self) -> list[Path]:
        """The runs' private work folders present under outputs/.work."""
        work = self.outputs / ".work"
        return sorted(work.iterdir()) if work.is_dir() else []

    def tmp_files(self) -> list[Path]:
        """Temporary files of atomic writes left anywhere under outputs/."""
        return [p for p in self.outputs.rglob("*.tmp-*")] if self.outputs.exists() else []


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
    env.pop("WRITER_DATABASE_URL", None)
    return Workspace(tmp_path, env)
