"""Benchmark: `opsnb run` end to end vs the papermill CLI on the same notebook and parameters.

Alternates the two commands for several rounds and prints the median of each and
their ratio (goal ≤ 1.10). Both include interpreter start, imports, kernel start
and writing the executed notebook; opsnb also validates, redacts and writes the
HTML report, the manifest and the index.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
BIN = Path(sys.executable).parent


def notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Bench\nA trivial runbook."),
        nbformat.v4.new_code_cell(
            'limit: int = 3  # rows\nticket: str = "x"  # id', metadata={"tags": ["parameters"]}
        ),
        nbformat.v4.new_code_cell("total = sum(range(limit))\nprint(total, ticket)"),
        nbformat.v4.new_code_cell(
            "from opsnb.checks import findings\nfindings.conclude('pass', 'bench ran', check_id='bench.ran')\nfindings.record()"
        ),
    ]
    return nb


def timed(cmd: list[str], env: dict) -> float:
    start = time.perf_counter()
    result = subprocess.run(cmd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed ({result.returncode}): {result.stderr.strip()[-300:]}")
    return elapsed


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "notebooks").mkdir()
        (root / "parameters").mkdir()
        nbformat.write(notebook(), root / "notebooks" / "bench.ipynb")
        (root / "parameters" / "bench.yaml").write_text("defaults: {}\n")
        env = {
            **os.environ,
            "OPSNB_NOTEBOOKS": str(root / "notebooks"),
            "OPSNB_PARAMETERS": str(root / "parameters"),
            "OPSNB_OUTPUTS": str(root / "outputs"),
            "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        }
        opsnb = [str(BIN / "opsnb"), "run", "bench", "--env", "bench", "-p", "limit=5", "-p", "ticket=00123"]
        papermill = [
            str(BIN / "papermill"),
            str(root / "notebooks" / "bench.ipynb"),
            str(root / "pm.ipynb"),
            "-k",
            "python3",
            "-p",
            "limit",
            "5",
            "-r",
            "ticket",
            "00123",
            "--cwd",
            str(root / "notebooks"),
            "--no-progress-bar",
        ]
        timed(opsnb, env), timed(papermill, env)  # warm the file cache
        ours, theirs = [], []
        for _ in range(ROUNDS):
            ours.append(timed(opsnb, env))
            theirs.append(timed(papermill, env))
        a, b = statistics.median(ours), statistics.median(theirs)
        print(f"opsnb run      median {a:.3f}s  ({', '.join(f'{t:.2f}' for t in ours)})")
        print(f"papermill CLI  median {b:.3f}s  ({', '.join(f'{t:.2f}' for t in theirs)})")
        print(f"ratio opsnb/papermill = {a / b:.3f}  (goal <= 1.10, {ROUNDS} rounds, alternating)")


if __name__ == "__main__":
    main()
