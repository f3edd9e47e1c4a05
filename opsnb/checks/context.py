"""What the kernel knows about the run it is part of (set by the runner as OPSNB_* variables)."""

from __future__ import annotations

import os


def runbook() -> str:
    """Name of the runbook being run ('interactive' in a plain JupyterLab session)."""
    return os.environ.get("OPSNB_RUNBOOK", "interactive")


def environment() -> str:
    """Name of the target environment (parameters/<env>.yaml)."""
    return os.environ.get("OPSNB_ENV", "unknown")


def run_id() -> str:
    """Unique id of this run ('interactive' outside the runner)."""
    return os.environ.get("OPSNB_RUN_ID", "interactive")


def headless() -> bool:
    """True when the runner (papermill) executes the notebook: nobody can click a button."""
    return os.environ.get("OPSNB_HEADLESS") == "1"


def allow_writes() -> bool:
    """True when the run was started with --allow-writes."""
    return os.environ.get("OPSNB_ALLOW_WRITES") == "1"


def ipython_shell():
    """The IPython shell this code runs in, or None (a plain interpreter, a unit test without a kernel)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def note_target(kind: str, **identity: object) -> None:
    """Record what this run looked at (e.g. kind 'postgres' with host, port, database, role, server version;
    never a password) so the evidence says which server it judged."""
    from opsnb.checks import scraps

    key = ":".join(str(identity.get(k, "")) for k in ("host", "port", "database", "role"))
    try:
        scraps.glue(f"{scraps.TARGET_PREFIX}{kind}:{key}", {"kind": kind, **identity})
    except Exception:  # outside a kernel there is no notebook to record it in
        pass
