"""Run one notebook through papermill and classify how it ended.

papermill labels only cell errors; a timeout, a dead kernel or a signal must be
classified here (FIELD-NOTES), and success is never inferred from notebook
metadata: only a verdict the notebook recorded counts.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from opsnb.checks import scraps

OUTCOMES = ("PASS", "WARN", "FAIL", "ERROR", "TIMEOUT", "KERNEL-DIED", "INTERRUPTED")
EXIT_CODES = {"PASS": 0, "WARN": 1, "FAIL": 2, "ERROR": 4, "TIMEOUT": 4, "KERNEL-DIED": 4, "INTERRUPTED": 4}


INTERRUPTED_MESSAGE = "the run was interrupted (SIGTERM/SIGINT)"


class Interrupted(KeyboardInterrupt):
    """The runner received SIGTERM or SIGINT."""


class StopSignals:
    """How runs answer SIGTERM and SIGINT.

    Only while armed (the notebook is executing) does a signal interrupt, and only the
    first one: the kernel shutdown that follows must not be broken by a second signal.
    Any other signal is only noted in ``requested``, so that a bundle being written is
    always completed and the caller can stop before starting another run.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.requested = False
        self._armed = False
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        """Take over SIGTERM and SIGINT (only possible in the main thread; elsewhere a no-op)."""
        if self._previous or not _in_main_thread():
            return
        for signum in self.SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)

    def restore(self) -> None:
        """Give SIGTERM and SIGINT back to the handlers they had before install()."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def ignore(self) -> None:
        """Ignore SIGTERM and SIGINT from now on, up to the process's exit.

        SIG_IGN, unlike a Python handler, survives interpreter shutdown, which resets
        Python handlers to the default (killing the process with 143 on a late signal).
        """
        if self._previous:
            for signum in self.SIGNALS:
                signal.signal(signum, signal.SIG_IGN)

    def arm(self) -> None:
        """Let the next signal interrupt; raises Interrupted at once if one came already."""
        self._armed = True
        # Armed first, checked second: a signal landing in between raises from the handler instead.
        if self.requested and self._armed:
            self._armed = False
            raise Interrupted()

    def disarm(self) -> None:
        """From now on signals are only noted."""
        self._armed = False

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True
        if self._armed:
            self._armed = False
            raise Interrupted()


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def stop_signals(*, keep_after_stop: bool = True) -> Iterator[StopSignals]:
    """A StopSignals installed for the block.

    With ``keep_after_stop``, once a signal arrived the signals stay ignored after the
    block: the process is on its way out, and a late SIGTERM must not turn its exit
    code into 143.
    """
    guard = StopSignals()
    guard.install()
    try:
        yield guard
    finally:
        if keep_after_stop and guard.requested:
            guard.ignore()
        else:
            guard.restore()


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


def _kernel_manager_class(sockets_dir: str, connection_file: str, env: Mapping[str, str], output: IO):
    """A kernel manager for one run.

    IPC sockets in ``sockets_dir``: no TCP port races (papermill #511). The kernel gets
    ``env`` as its whole environment, so the runner's own os.environ never holds a
    secret, and writes its stdout/stderr (subprocesses, os.write, its own log lines and
    tracebacks) to ``output``: nothing from the kernel reaches the runner's terminal,
    which under cron is mailed unscrubbed. ipykernel still forwards that fd output into
    the notebook, which is scrubbed before it is written.
    """
    from jupyter_client.manager import AsyncKernelManager

    class RunKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.transport = "ipc"
            self.ip = os.path.join(sockets_dir, "kernel")
            self.connection_file = connection_file

        async def _async_pre_start_kernel(self, **kw):
            # Set here rather than at launch: the provisioner still applies the kernelspec's env on top
            # of ours, and jupyter_client keeps these arguments for a restart (jupyter_client 8).
            kw["env"] = dict(env)
            kw["stdout"] = output
            kw["stderr"] = output
            return await super()._async_pre_start_kernel(**kw)

    return RunKernelManager


def _open_private(path: Path) -> IO:
    """A new file only we can read (it may hold unscrubbed kernel output); never through a symlink."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
    return os.fdopen(os.open(path, flags, 0o600), "ab", buffering=0)


@contextlib.contextmanager
def _library_logs_to(path: Path) -> Iterator[None]:
    """Log records and warnings of papermill, nbclient and jupyter_client go to ``path``, not the terminal.

    Without a handler, Python prints them on stderr ("Kernel died while waiting for
    execute reply."): the terminal gets the verdict line and nothing else.
    """
    handler = logging.FileHandler(path, delay=True, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    logging.captureWarnings(True)
    try:
        yield
    finally:
        logging.captureWarnings(False)
        root.removeHandler(handler)
        handler.close()


def run_notebook(
    nb,
    *,
    cwd: Path,
    work_dir: Path,
    kernel_env: Mapping[str, str],
    parameters: dict[str, Any],
    cell_timeout_s: int,
    show_progress: bool,
    stop: StopSignals | None = None,
) -> Execution:
    """Execute ``nb`` (a NotebookNode) with ``parameters`` injected; never raises for notebook failures.

    ``work_dir`` is the run's private folder: the raw (unredacted) executed notebook and
    the kernel's output live there. ``kernel_env`` is the kernel's whole environment.
    While the notebook executes, a signal noted by ``stop`` interrupts it.
    """
    global _progress
    stop = stop or StopSignals()  # never installed: arming it changes nothing
    started = time.time()
    out_path = work_dir / "executed.ipynb"
    _progress = _Progress(len(nb.cells) + bool(parameters), show_progress)  # + the injected-parameters cell
    # AF_UNIX socket paths are limited to about 100 bytes and outputs/ may sit deep: sockets go to a
    # short private temp folder, which holds nothing secret.
    sockets_dir = tempfile.mkdtemp(prefix="opsnb-")
    try:
        outcome, error, exc_cell = _execute(
            nb,
            out_path,
            cwd=cwd,
            work_dir=work_dir,
            sockets_dir=sockets_dir,
            kernel_env=kernel_env,
            parameters=parameters,
            cell_timeout_s=cell_timeout_s,
            stop=stop,
        )
    except KeyboardInterrupt:  # the one interruption landed between two steps of _execute's own handling
        outcome, error, exc_cell = "INTERRUPTED", INTERRUPTED_MESSAGE, None
    finally:
        stop.disarm()
        _progress.done()
        shutil.rmtree(sockets_dir, ignore_errors=True)
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
                "the notebook finished without recording a verdict (opsnb.checks.findings.record())",
            )
    failed = None
    if outcome in ("ERROR", "TIMEOUT", "KERNEL-DIED", "INTERRUPTED"):
        failed = _failed_cell(executed, exc_cell if exc_cell is not None else current)
    return Execution(outcome, executed, started, ended, error, failed, found)


def _execute(
    nb,
    out_path: Path,
    *,
    cwd: Path,
    work_dir: Path,
    sockets_dir: str,
    kernel_env: Mapping[str, str],
    parameters: dict[str, Any],
    cell_timeout_s: int,
    stop: StopSignals,
) -> tuple[str, str, int | None]:
    """papermill's execution, classified: ("", "", None) when every cell ran, else (outcome, error, cell)."""
    import papermill
    from papermill.engines import papermill_engines
    from papermill.exceptions import PapermillExecutionError

    logging.getLogger("papermill").setLevel(logging.ERROR)
    papermill_engines.register("opsnb", _engine_class())
    try:
        with (
            _open_private(work_dir / "kernel.log") as kernel_output,
            _library_logs_to(work_dir / "runner.log"),
        ):
            manager = _kernel_manager_class(
                sockets_dir, str(work_dir / "kernel.json"), kernel_env, kernel_output
            )
            stop.arm()
            try:
                papermill.execute_notebook(
                    nb,
                    str(out_path),
                    parameters=parameters,
                    engine_name="opsnb",
                    kernel_name="python3",
                    language="python",
                    progress_bar=False,
                    cwd=str(cwd),
                    execution_timeout=cell_timeout_s,
                    start_timeout=60,
                    autosave_cell_every=5,
                    kernel_manager_class=manager,
                )
            finally:
                stop.disarm()
        return "", "", None
    except PapermillExecutionError as exc:
        return "ERROR", f"{exc.ename}: {exc.evalue}".strip(), exc.cell_index
    except KeyboardInterrupt:
        return "INTERRUPTED", INTERRUPTED_MESSAGE, None
    except Exception as exc:  # nbclient's timeout / dead kernel, kernel start failures
        return (*_classify(exc, cell_timeout_s), None)


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
