"""JupyterLab on the runbooks, prepared for one environment.

Each runbook is copied with the environment's parameters injected (papermill's
prepare-only mode, nothing executed) into ``outputs/lab/<env>/``, so the
engineer steps through it with the right endpoints; the kernel finds secrets
through ``OPSNB_ENV_FILE``. The committed notebooks stay untouched.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from opsnb.paths import outputs_dir
from opsnb.runner.inspection import scan_runbooks
from opsnb.runner.run import plan_run


def prepare(runbook: str, env: str, dest_dir: Path) -> Path:
    """Write ``runbook`` with ``env``'s parameters injected (not executed) into ``dest_dir``."""
    import logging

    import papermill

    logging.getLogger("papermill").setLevel(logging.ERROR)
    plan = plan_run(runbook, env, {})
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / f"{runbook}.ipynb"
    papermill.execute_notebook(
        str(plan.runbook.path),
        str(dest),
        parameters=plan.parameters,
        prepare_only=True,
        kernel_name="python3",
        progress_bar=False,
    )
    return dest


def kernel_environment(env: str) -> dict[str, str]:
    """Variables a hand-driven kernel needs: the environment name and where its secrets file is."""
    from opsnb.runner.config import load_environment

    environment = load_environment(env)
    extra = {"OPSNB_ENV": env, "OPSNB_RUNBOOK": "interactive"}
    if environment.env_file:
        extra["OPSNB_ENV_FILE"] = str(environment.env_file)
    return extra


def open_lab(env: str) -> int:
    """Prepare every valid runbook for ``env`` and start JupyterLab on them."""
    dest = outputs_dir() / "lab" / env
    runbooks, invalid = scan_runbooks()
    for name, reason in invalid.items():
        # One broken notebook must not keep the engineer out of all the others.
        print(f"opsnb: skipping '{name}': not a valid runbook: {reason}", file=sys.stderr)
    for runbook in runbooks:
        prepare(runbook.name, env, dest)
    print(f"runbooks prepared for '{env}' in {dest}")
    child_env = {**os.environ, **kernel_environment(env)}
    command = [sys.executable, "-m", "jupyter", "lab", f"--notebook-dir={dest}"]
    if os.geteuid() == 0:
        command.append("--allow-root")  # containers and CI machines often run as root
    return subprocess.call(command, env=child_env)
