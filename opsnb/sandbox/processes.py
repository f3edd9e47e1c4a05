"""The sandbox's child processes: start one unless it runs, tell whether it runs, stop it; plus the two
waiting helpers (`wait_for`, `http_get`) the lifecycle polls with.

A pid alone is not proof: a pid saved in state.json may have been reused by an unrelated process, so
each child is recognised by a marker in its command line as well.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from opsnb.liveness import pid_alive

from .postgres import free_port, port_open
from .state import Paths, save

PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder that holds this opsnb package


@dataclass(frozen=True)
class Child:
    """A Python process the sandbox starts and stops (PostgreSQL is managed by pg_ctl instead)."""

    name: str  # key in state["pids"]; its output goes to logs/<name>.log
    marker: str  # part of its command line
    command: Callable[[Paths, dict], list[str]]
    ports: tuple[str, ...] = ()  # names of the ports it listens on (state["ports"])
    prepare: Callable[[Paths, dict], None] | None = None  # runs just before the start

    def log(self, paths: Paths) -> Path:
        """Where its stdout and stderr go."""
        return paths.logs / f"{self.name}.log"

    def running(self, st: dict) -> bool:
        """True when the pid saved for it runs and is still this child."""
        return alive(st["pids"].get(self.name), self.marker)

    def ensure(self, paths: Paths, st: dict) -> bool:
        """Start it unless it runs; returns True when it was started now."""
        if self.running(st):
            return False
        for port_name in self.ports:
            if port_open(st["ports"][port_name]):  # another process took it while we were down
                st["ports"][port_name] = free_port()
        if self.prepare:
            self.prepare(paths, st)
        st["pids"][self.name] = spawn(self.command(paths, st), self.log(paths))
        save(paths, st)
        return True

    def halt(self, st: dict) -> bool:
        """Stop it and forget its pid; returns True when it was running."""
        pid = st["pids"].pop(self.name, None)
        was_running = alive(pid, self.marker)
        stop(pid, self.marker)
        return was_running


def alive(pid: int | None, marker: str | None = None) -> bool:
    """True when pid runs (not a zombie) and its command line contains marker."""
    if not pid:
        return False
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)  # reap our own dead children, or they stay zombies
    if not pid_alive(pid):
        return False
    proc = Path(f"/proc/{pid}")
    if proc.exists():
        try:
            if (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                return False
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if marker and marker not in cmdline:
                return False
        except (OSError, IndexError):
            return False
    return True


def spawn(cmd: list[str], log_path: Path) -> int:
    """Start cmd in its own session (so `stop` takes its children too), output appended to log_path."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    root = str(PACKAGE_ROOT)
    # `python -m opsnb.sandbox.…` must find this very package, whatever the caller's working folder.
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            cwd=root,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
    return proc.pid


def stop(pid: int | None, marker: str, timeout: float = 5) -> None:
    """SIGTERM the process group of pid, SIGKILL it if it is still there after timeout."""
    if not alive(pid, marker):
        return
    assert pid is not None
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        if wait_for(lambda: not alive(pid, marker), timeout, interval=0.05):
            return


def http_get(url: str, headers: dict[str, str] | None = None, timeout: float = 3) -> tuple[int, str]:
    """(status, first 2000 characters of the body); status 0 and the error text when nothing answered."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read(2000).decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(2000).decode(errors="replace")
    except (urllib.error.URLError, OSError) as exc:
        return 0, str(exc)


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    """Poll predicate until it holds or timeout seconds passed; returns its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
