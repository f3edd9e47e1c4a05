"""The evidence bundle of one run: executed notebook, HTML report and JSON manifest.

Every file is scrubbed of secrets before it is written, and written atomically
(temporary file + rename), the manifest last, so that a reader never meets a
half-written bundle. Evidence is written only below outputs/ and never through a
symbolic link. Each run also has a private work folder, outputs/.work/<host>_<pid>_<run id>/,
for what must not be kept (the raw notebook); a later run removes what a killed one left.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as _dt
import getpass
import hashlib
import json
import os
import re
import shutil
import socket
import stat
import subprocess
from pathlib import Path
from typing import Any

from opsnb import __version__
from opsnb.checks import scraps
from opsnb.checks.severity import highest
from opsnb.errors import OpsnbError
from opsnb.liveness import pid_alive
from opsnb.paths import notebooks_dir, project_root
from opsnb.runner import report
from opsnb.runner.execute import EXIT_CODES, Execution
from opsnb.runner.redact import scrub_tree


def stamp(ts: float) -> str:
    """UTC timestamp used in file names, e.g. 20261127T133501Z."""
    return _dt.datetime.fromtimestamp(ts, _dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def iso(ts: float) -> str:
    """UTC ISO-8601 time with seconds."""
    return _dt.datetime.fromtimestamp(ts, _dt.UTC).isoformat(timespec="seconds")


class EvidenceError(OpsnbError):
    """The evidence of a run could not be written: one line, exit 4."""

    exit_code = 4


class RefusedPath(OSError):
    """A path below outputs/ that evidence must not be written through (a symlink, not a folder)."""


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half of it.

    Never through a symlink: the folder is opened without following one, the temporary
    file is created exclusively, and the rename replaces a symlink at ``path`` itself
    rather than the file it points to. On failure the temporary file is removed.
    """
    dir_fd = open_folder(path.parent)
    tmp = f".{path.name}.tmp-{os.getpid()}-{os.urandom(4).hex()}"
    try:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(tmp, flags, 0o666, dir_fd=dir_fd)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dir_fd)
            raise
        with contextlib.suppress(OSError):  # the rename itself survives a crash; not all filesystems allow it
            os.fsync(dir_fd)
    except OSError as exc:  # name the whole path, not the dir_fd-relative one
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
    finally:
        os.close(dir_fd)


def open_folder(path: Path) -> int:
    """A file descriptor of the folder ``path``; RefusedPath when it is a symlink or not a folder."""
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        _refuse_unless_folder(path)
        raise OSError(exc.errno, exc.strerror, str(path)) from exc


def ensure_folder(path: Path, mode: int = 0o777) -> Path:
    """Create the folder ``path`` (its parent must exist); RefusedPath when a symlink or a file is there."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, mode)
    _refuse_unless_folder(path)
    return path


def _refuse_unless_folder(path: Path) -> None:
    try:
        st = os.lstat(path)
    except OSError:  # missing, or its parent is not a folder: the caller's own error says so
        return
    if stat.S_ISLNK(st.st_mode):
        raise RefusedPath(f"{path} is a symbolic link; evidence is never written through one")
    if not stat.S_ISDIR(st.st_mode):
        raise RefusedPath(f"{path} is not a folder")


def describe_failure(exc: BaseException) -> str:
    """One line saying why writing failed: 'outputs/x: No space left on device'."""
    if isinstance(exc, RefusedPath):
        return str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


# --- the run's private work folder -------------------------------------------------------------

WORK_FOLDER = ".work"
_WORK_NAME = re.compile(r"^(?P<host>.+)_(?P<pid>[0-9]+)_(?P<run>[0-9a-f]+)$")


def _host() -> str:
    """This machine's name, as a file-name-safe token."""
    return re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname()) or "localhost"


def work_folder_name(run_id: str, pid: int | None = None) -> str:
    """The name of a run's work folder: its host and process, so a later run can tell if it died."""
    return f"{_host()}_{os.getpid() if pid is None else pid}_{run_id}"


def prepare_outputs(outputs: Path, runbook: str, run_id: str) -> Path:
    """Make sure the run's evidence can go to ``outputs/<runbook>/``; create and return its work folder.

    Leftover work folders of runs that died are removed first. OSError/RefusedPath
    when a folder cannot be created or is a symlink.
    """
    outputs.mkdir(parents=True, exist_ok=True)
    ensure_folder(outputs)
    ensure_folder(outputs / runbook)
    work_root = _private_folder(outputs / WORK_FOLDER)
    remove_leftover_work(work_root)
    work = work_root / work_folder_name(run_id)
    os.mkdir(work, 0o700)
    os.chmod(work, 0o700)
    return work


def _private_folder(path: Path) -> Path:
    """``path`` as a folder of ours that only we can enter (mode 0700)."""
    ensure_folder(path, 0o700)
    st = os.lstat(path)
    if st.st_uid != os.getuid():
        raise RefusedPath(f"{path} belongs to another user")
    if stat.S_IMODE(st.st_mode) != 0o700:
        os.chmod(path, 0o700)
    return path


def remove_leftover_work(work_root: Path) -> list[Path]:
    """Remove the work folders of runs on this host whose process is gone; returns what was removed.

    A runner killed with SIGKILL cannot clean up after itself, and its folder holds
    the raw, unredacted notebook.
    """
    removed = []
    host = _host()
    for entry in os.scandir(work_root):
        match = _WORK_NAME.match(entry.name)
        if not match or match["host"] != host or not entry.is_dir(follow_symlinks=False):
            continue
        if pid_alive(int(match["pid"])):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(Path(entry.path))
    return removed


def remove_work_folder(work: Path) -> None:
    """Remove a run's work folder (and the raw notebook in it)."""
    shutil.rmtree(work, ignore_errors=True)


def notebooks_commit() -> str | None:
    """The git commit of the notebooks folder, with '+dirty' when it has local changes."""
    root = project_root()
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
        )
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--", str(notebooks_dir())],
            capture_output=True,
            text=True,
            timeout=5,
        )
        return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def write_bundle(
    execution: Execution,
    *,
    out_dir: Path,
    run_id: str,
    runbook: str,
    env: str,
    incident: str | None,
    parameters: dict[str, Any],
    secret_values: set[str],
) -> dict[str, Any]:
    """Redact and write the three files of a run; returns the manifest (already written)."""
    import nbformat

    ensure_folder(out_dir)
    base = f"{stamp(execution.started)}_{run_id}"
    nb = scrub_tree(execution.nb, secret_values)
    found = scrub_tree(execution.scraps, secret_values)
    findings = scraps.conclusions(found)  # an ERROR run keeps what it concluded before the failure
    manifest: dict[str, Any] = {
        "run_id": run_id,
        "runbook": runbook,
        "env": env,
        "incident": incident,
        "parameters": scrub_tree(parameters, secret_values),
        "user": getpass.getuser(),
        "host": socket.gethostname(),
        "started_at": iso(execution.started),
        "ended_at": iso(execution.ended),
        "duration_s": round(execution.ended - execution.started, 3),
        "outcome": execution.outcome,
        "exit_code": EXIT_CODES[execution.outcome],
        "highest_severity": highest(
            [f.get("severity") for f in findings if f.get("status", "fail") in ("warn", "fail")]
        ),
        "targets": scraps.targets(found),
        "findings": findings,
        "actions": found.get("opsnb_actions") or [],
        "error": scrub_tree(execution.error, secret_values),
        "failed_cell": execution.failed_cell,
        "opsnb_version": __version__,
        "notebooks_commit": notebooks_commit(),
        "files": {},
    }
    ipynb_path = out_dir / f"{base}.ipynb"
    html_path = out_dir / f"{base}.html"
    ipynb_bytes = nbformat.writes(nb).encode("utf-8")
    for_html = copy.deepcopy(nb)
    scraps.strip(for_html)
    html_bytes = scrub_tree(report.render(manifest, for_html), secret_values).encode("utf-8")
    write_atomic(ipynb_path, ipynb_bytes)
    write_atomic(html_path, html_bytes)
    manifest["files"] = {
        ipynb_path.name: hashlib.sha256(ipynb_bytes).hexdigest(),
        html_path.name: hashlib.sha256(html_bytes).hexdigest(),
    }
    write_atomic(out_dir / f"{base}.json", (json.dumps(manifest, indent=2) + "\n").encode("utf-8"))
    manifest["html_path"] = str(html_path)
    return manifest
