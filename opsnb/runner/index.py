"""``outputs/index.html``: the latest state per runbook × environment, then every run grouped by incident,
newest first, colored by outcome; rewritten atomically.

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
    ".acted{font-weight:600;color:#b3261e;white-space:nowrap}"
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


def render_index(runs: list[dict], now: float | None = None) -> str:
    """The index page: a board with the latest outcome per runbook × environment, then the runs grouped by
    incident (runs without one last), newest first. One static file, no script."""
    import time

    now = time.time() if now is None else now
    board = _board(runs, now)
    groups: dict[str, list[dict]] = {}
    for m in runs:  # runs come newest first, so groups do too
        groups.setdefault(str(m.get("incident") or ""), []).append(m)
    ordered = [k for k in groups if k] + ([""] if "" in groups else [])
    sections = "".join(_group(name, groups[name]) for name in ordered) or '<p class="muted">no runs yet</p>'
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>opsnb runs</title>'
        f"<style>{CSS}{ROW_CSS}</style></head><body><main><h1>opsnb runs</h1>"
        f"<h2>Latest per runbook and environment</h2>{board}{sections}</main></body></html>\n"
    )


def _board(runs: list[dict], now: float) -> str:
    """Latest run per (runbook, env) with its age: what is true now."""
    latest: dict[tuple[str, str], dict] = {}
    for m in runs:
        latest.setdefault((str(m.get("runbook", "")), str(m.get("env", ""))), m)
    if not latest:
        return '<p class="muted">no runs yet</p>'
    rows = []
    for (runbook, env), m in sorted(latest.items()):
        rows.append(
            f'<tr class="row-{_e(m.get("outcome", ""))}"><td>{_e(runbook)}</td><td>{_e(env)}</td>'
            f"<td>{_badge(m)}</td><td>{_e(_age(m.get('started_at', ''), now))}</td>"
            f"<td>{_e(_top(m))}</td><td>{_links(m)}</td></tr>"
        )
    head = "<tr><th>runbook</th><th>env</th><th>outcome</th><th>age</th><th>top conclusion</th><th></th></tr>"
    return f"<table>{head}{''.join(rows)}</table>"


def _group(incident: str, runs: list[dict]) -> str:
    title = f"Incident {_e(incident)}" if incident else "Runs without an incident"
    rows = []
    for m in runs:
        acted = [a for a in m.get("actions") or [] if a.get("status") in ("applied", "failed")]
        marker = f' <span class="acted">⚑ {len(acted)} action(s) applied</span>' if acted else ""
        rows.append(
            f'<tr class="row-{_e(m.get("outcome", ""))}"><td>{_e(m.get("started_at", ""))}</td>'
            f"<td>{_e(m.get('runbook', ''))}</td><td>{_e(m.get('env', ''))}</td><td>{_badge(m)}{marker}</td>"
            f"<td>{_e(str(m.get('highest_severity') or '-'))}</td><td>{_e(_top(m))}</td>"
            f"<td>{float(m.get('duration_s', 0)):.1f}s</td><td>{_links(m)}</td></tr>"
        )
    head = (
        "<tr><th>started (UTC)</th><th>runbook</th><th>env</th><th>outcome</th><th>severity</th>"
        "<th>top conclusion</th><th>duration</th><th></th></tr>"
    )
    return f"<h2>{title}</h2><table>{head}{''.join(rows)}</table>"


def _e(value: object) -> str:
    return html.escape(str(value))


def _badge(m: dict) -> str:
    outcome = _e(m.get("outcome", ""))
    return f'<span class="badge {outcome}">{outcome}</span>'


def _top(m: dict) -> str:
    from opsnb.runner.run import top_conclusions

    top = top_conclusions(m.get("findings") or [])
    if not top:
        return m.get("error", "") or ""
    more = f" (and {len(top) - 1} more)" if len(top) > 1 else ""
    return str(top[0].get("title", "")) + more


def _links(m: dict) -> str:
    base = m["_html"].removesuffix(".html")
    return " ".join(f'<a href="{_e(base)}.{ext}">{ext}</a>' for ext in ("html", "json", "ipynb"))


def _age(started_at: str, now: float) -> str:
    """'5 min ago' style age of an ISO time; '' when unreadable."""
    import datetime as dt

    try:
        seconds = now - dt.datetime.fromisoformat(started_at).timestamp()
    except (TypeError, ValueError):
        return ""
    if seconds < 90:
        return f"{max(seconds, 0):.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 129600:
        return f"{seconds / 3600:.1f} h ago"
    return f"{seconds / 86400:.1f} d ago"


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
