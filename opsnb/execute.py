"""Run one notebook through papermill and classify how it ended.

papermill labels only cell errors; a timeout, a dead kernel or a signal must be
classified here (FIELD-NOTES), and success is never inferred from notebook
metadata: only a verdict the notebook recorded counts.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opsnb import scraps

OUTCOMES = ("PASS", "WARN", "FAIL", "ERROR", "TIMEOUT", "KERNEL-DIED", "INTERRUPTED")
EXIT_CODES = {"PASS": 0, "WARN": 1, "FAIL": 2, "ERROR": 4, "TIMEOUT": 4, "KERNEL-DIED": 4, "INTERRUPTED": 4}


class Interrupted(KeyboardInterrupt):
    """The runner received SIGTERM or SIGINT."""


@dataclass
class Execution:
    """What came out of one notebook execution."""

    outcome: str
    nb: Any  # the executed NotebookNode (as far as it got)
    started: float
    ended: float
    error: str = ""
    failed_cell: int | None = None  # index in nb.cells
    scraps: dict[str, Any] = field(default_factory=dict)


class _Progress:
    """Tracks the cell being run; on a terminal, prints '[i/n] elapsed' as it goes."""

    def __init__(self, total: int, show: bool):
        self.total, self.show, self.current, self.start = total, show, None, time.monotonic()

    def cell_started(self, index: int, section: str = "") -> None:
        self.current = index
        if self.show:
            elapsed = time.monotonic() - self.start
            line = f"  cell {index + 1}/{self.total}  {elapsed:5.1f}s  {section}"[:WIDTH]
            sys.stderr.write("\r" + line.ljust(WIDTH))
            sys.stderr.flush()

    def done(self) -> None:
        if self.show:
            sys.stderr.write("\r" + " " * WIDTH + "\r")
            sys.stderr.flush()


WIDTH = 79  # one terminal line


def section_of(nb, index: int) -> str:
    """The heading of the markdown section cell ``index`` belongs to (what the engineer is waiting on)."""
    for cell in reversed(nb.cells[: index + 1]):
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return ""


_progress: _Progress | None = None


def _engine_class():
    """papermill's nbclient engine, telling _Progress which cell starts."""
    from papermill.engines import NBClientEngine

    class OpsnbEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, **kwargs):
            original = nb_man.cell_start

            def cell_start(cell, cell_index=None, **kw):
                if _progress is not None and cell_index is not None:
                    _progress.cell_started(cell_index, section_of(nb_man.nb, cell_index))
                return original(cell, cell_index, **kw)

            nb_man.cell_start = cell_start
            return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)

    return OpsnbEngine


def _kernel_manager_class(runtime_dir: str):
    """A kernel manager on IPC sockets in ``runtime_dir``: no TCP port races (papermill #511)."""
    from jupyter_client.manager import AsyncKernelManager

    class IPCKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.transport = "ipc"
            self.ip = os.path.join(runtime_dir, "kernel")

    return IPCKernelManager


def run_notebook(
    nb,
    *,
    cwd: Path,
    parameters: dict[str, Any],
    cell_timeout_s: int,
    show_progress: bool,
) -> Execution:
    """Execute ``nb`` (a NotebookNode) with ``parameters`` injected; never raises for notebook failures."""
    global _progress
    import papermill
    from papermill.engines import papermill_engines
    from papermill.exceptions import PapermillExecutionError

    logging.getLogger("papermill").setLevel(logging.ERROR)
    papermill_engines.register("opsnb", _engine_class())
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="opsnb-run-") as work:
        os.chmod(work, 0o700)  # the raw (unredacted) notebook lives here until redaction
        out_path = os.path.join(work, "executed.ipynb")
        _progress = _Progress(
            len(nb.cells) + bool(parameters), show_progress
        )  # + the injected-parameters cell
        outcome, error, exc_cell = "ERROR", "", None
        try:
            papermill.execute_notebook(
                nb,
                out_path,
                parameters=parameters,
                engine_name="opsnb",
                kernel_name="python3",
                language="python",
                progress_bar=False,
                cwd=str(cwd),
                execution_timeout=cell_timeout_s,
                start_timeout=60,
                autosave_cell_every=5,
                kernel_manager_class=_kernel_manager_class(work),
            )
            outcome = ""
        except PapermillExecutionError as exc:
            outcome, error = "ERROR", f"{exc.ename}: {exc.evalue}".strip()
            exc_cell = exc.cell_index
        except KeyboardInterrupt:
            outcome, error = "INTERRUPTED", "the run was interrupted (SIGTERM/SIGINT)"
        except Exception as exc:  # nbclient's timeout / dead kernel, kernel start failures
            outcome, error = _classify(exc, cell_timeout_s)
        finally:
            _progress.done()
        current = _progress.current
        executed = _read(out_path) or nb
    ended = time.time()
    found = scraps.read(executed)
    if not outcome:
        recorded = found.get("opsnb_verdict")
        verdict = recorded.get("verdict") if isinstance(recorded, dict) else None
        if verdict in ("PASS", "WARN", "FAIL"):
            outcome = verdict
        else:
            outcome, error = (
                "ERROR",
                "the notebook finished without recording a verdict (opsnb.findings.record())",
            )
    failed = None
    if outcome in ("ERROR", "TIMEOUT", "KERNEL-DIED", "INTERRUPTED"):
        failed = _failed_cell(executed, exc_cell if exc_cell is not None else current)
    return Execution(outcome, executed, started, ended, error, failed, found)


def _classify(exc: Exception, cell_timeout_s: int) -> tuple[str, str]:
    name = type(exc).__name__
    if name == "CellTimeoutError" or isinstance(exc, TimeoutError):
        return "TIMEOUT", f"a cell ran longer than the {cell_timeout_s}s cell timeout"
    if name == "DeadKernelError":
        return "KERNEL-DIED", "the kernel died while running a cell"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return "ERROR", f"{name}: {first}"


def _read(path: str):
    import nbformat

    try:
        return nbformat.read(path, as_version=4)
    except (OSError, ValueError):
        return None


def _failed_cell(nb, hint: int | None) -> int | None:
    """Index of the cell that failed: the one with an error output, else the last one that started."""
    for index, cell in enumerate(nb.cells):
        if any(o.get("output_type") == "error" for o in cell.get("outputs", []) or []):
            return index
    return hint
