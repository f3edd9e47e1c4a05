"""``outputs/index.html``: every run, newest first, colored by outcome; rewritten atomically."""

from __future__ import annotations

import fcntl
import html
import json
from pathlib import Path

from opsnb.evidence import write_atomic
from opsnb.report import CSS

# Rows tinted by outcome, so a wall of runs reads at a glance.
ROW_CSS = (
    ".row-PASS td{background:#eef7ef}.row-WARN td{background:#fdf5e6}.row-FAIL td{background:#fbeceb}"
    ".row-ERROR td,.row-TIMEOUT td,.row-KERNEL-DIED td,.row-INTERRUPTED td{background:#f3edf8}"
)


def load_manifests(outputs: Path) -> list[dict]:
    """Every run manifest under ``outputs`` (unreadable ones skipped), newest first."""
    runs = []
    for path in outputs.glob("*/*.json"):
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(manifest, dict) and "run_id" in manifest:
            manifest["_html"] = f"{path.parent.name}/{path.stem}.html"
            runs.append(manifest)
    return sorted(runs, key=lambda m: (m.get("started_at", ""), m.get("run_id", "")), reverse=True)


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
    with open(outputs / ".index.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = outputs / "index.html"
        write_atomic(path, render_index(load_manifests(outputs)).encode("utf-8"))
    return path
