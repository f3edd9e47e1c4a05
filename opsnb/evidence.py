"""The evidence bundle of one run: executed notebook, HTML report and JSON manifest.

Every file is scrubbed of secrets before it is written, and written atomically
(temporary file + rename), the manifest last, so that a reader never meets a
half-written bundle.
"""

from __future__ import annotations

import copy
import datetime as _dt
import getpass
import hashlib
import json
import os
import socket
import subprocess
from pathlib import Path
from typing import Any

from opsnb import __version__, report, scraps
from opsnb.execute import EXIT_CODES, Execution
from opsnb.paths import notebooks_dir, project_root
from opsnb.redact import scrub_tree
from opsnb.severity import highest


def stamp(ts: float) -> str:
    """UTC timestamp used in file names, e.g. 20261127T133501Z."""
    return _dt.datetime.fromtimestamp(ts, _dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def iso(ts: float) -> str:
    """UTC ISO-8601 time with seconds."""
    return _dt.datetime.fromtimestamp(ts, _dt.UTC).isoformat(timespec="seconds")


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half of it."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


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

    out_dir.mkdir(parents=True, exist_ok=True)
    base = f"{stamp(execution.started)}_{run_id}"
    nb = scrub_tree(execution.nb, secret_values)
    found = scrub_tree(execution.scraps, secret_values)
    findings = found.get("opsnb_findings") or []
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
        "highest_severity": highest([f.get("severity") for f in findings]),
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
