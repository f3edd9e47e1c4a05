"""``outputs/index.html``: every run, newest first, colored by outcome; rewritten atomically.

Only real files below outputs/ count: symlinks (to manifests or folders elsewhere) and
hidden folders such as the runs' private ``.work`` are never read or listed.
"""

from __future__ import annotations

import contextlib
import fcntl
import html
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from opsnb.runner.evidence import RefusedPath, ensure_folder, write_atomic
from opsnb.runner.report import CSS

# Rows tinted by outcome, so a wall of runs reads at a glance.
ROW_CSS = (
    ".row-PASS td{background:#eef7ef}.row-WARN td{background:#fdf5e6}.row-FAIL td{background:#fbeceb}"
    ".row-ERROR td,.row-TIMEOUT td,.row-KERNEL-DIED td,.row-INTERRUPTED td{background:#f3edf8}"
)


def load_manifests(outputs: Path) -> list[dict]:
    """Every run manifest under ``outputs`` (unreadable ones skipped), newest first."""
    runs = []
    for path in _manifest_paths(outputs):
        try:
            manifest = json.loads(_read_regular_file(path))
        except (OSError, ValueError):
            continue
        if isinstance(manifest, dict) and "run_id" in manifest:
            manifest["_html"] = f"{path.parent.name}/{path.stem}.html"
            runs.append(manifest)
    return sorted(runs, key=lambda m: (m.get("started_at", ""), m.get("run_id", "")), reverse=True)


def _manifest_paths(outputs: Path) -> Iterator[Path]:
    """``outputs/<runbook>/*.json``, skipping hidden names and anything reached through a symlink."""
    for folder in _entries(outputs):
        if folder.is_dir(follow_symlinks=False):
            for entry in _entries(Path(folder.path)):
                if entry.name.endswith(".json") and entry.is_file(follow_symlinks=False):
                    yield Path(entry.path)


def _entries(folder: Path) -> list[os.DirEntry]:
    """The visible entries of ``folder``; none when it cannot be read."""
    try:
        with os.scandir(folder) as it:
            return [e for e in it if not e.name.startswith(".")]
    except OSError:
        return []


def _read_regular_file(path: Path) -> str:
    """The text of ``path``; OSError when it is a symlink (swapped in since it was listed) or not a file."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise OSError(f"{path} is not a regular file")
        return fh.read().decode("utf-8")


def render_index(runs: list[dict]) -> str:
    """The index page for ``runs``."""
    e = html.escape
    rows = []
    for m in runs:
        rows.append(
            f"<tr><td>{e(m.get('started_at', ''))}</td><td>{e(m.get('runbook', ''))}</td><td>{e(m.get('env', ''))}</td>"
            f'<td><span class="badge {e(m.get("outcome", ""))}">{e(m.get("outcome", ""))}</span></td>'
            f"<td>{e(str(m.get('highest_severity') or '-'))}</td><td>{e(str(m.get('incident') or '-'))}</td>"
            f'<td>{float(m.get("duration_s", 0)):.1f}s</td><td><a href="{e(m["_html"])}">report</a></td></tr>'
        )
    table = "".join(rows) or '<tr><td colspan="8">no runs yet</td></tr>'
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>opsnb runs</title>'
        f"<style>{CSS}{ROW_CSS}</style></head><body><main><h1>opsnb runs</h1>"
        "<table><tr><th>started (UTC)</th><th>runbook</th><th>env</th><th>outcome</th><th>severity</th>"
        f"<th>incident</th><th>duration</th><th></th></tr>{table}</table></main></body></html>\n"
    )


def update_index(outputs: Path) -> Path:
    """Rewrite ``outputs/index.html`` from the manifests, under a lock shared by concurrent runs."""
    outputs.mkdir(parents=True, exist_ok=True)
    ensure_folder(outputs)
    with _locked(outputs / ".index.lock"):
        path = outputs / "index.html"
        write_atomic(path, render_index(load_manifests(outputs)).encode("utf-8"))
    return path


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path``, created if missing.

    Opened without O_TRUNC and never through a symlink: a symlink planted there would
    otherwise make every run truncate the file it points to.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        if os.path.islink(path):
            raise RefusedPath(f"{path} is a symbolic link; refusing to open it") from exc
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise RefusedPath(f"{path} is not a regular file")
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
