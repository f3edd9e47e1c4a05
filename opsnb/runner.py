"""One run end to end: validate, execute, write the evidence, update the index.

Validation happens entirely before anything is written or started, so that bad
input (exit 3) leaves no trace; once execution has started, a bundle is always
written, whatever happened.
"""

from __future__ import annotations

import os
import signal
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opsnb.config import Environment, load_environment
from opsnb.errors import UsageError
from opsnb.inspection import Runbook, load_runbook
from opsnb.parameterize import check_secret_references, resolve_parameters, secret_references
from opsnb.paths import notebooks_dir, outputs_dir
from opsnb.redact import secret_values


@dataclass
class RunPlan:
    """Everything a run needs, validated."""

    runbook: Runbook
    env: Environment
    parameters: dict[str, Any]
    secret_refs: dict[str, str]
    incident: str | None
    cell_timeout_s: int
    allow_writes: bool


def plan_run(
    runbook: str,
    env: str,
    cli_params: dict[str, str],
    incident: str | None = None,
    cell_timeout_s: int = 600,
    allow_writes: bool = False,
) -> RunPlan:
    """Load and validate a run; raises UsageError/ConfigError (exit 3) before anything happens."""
    if cell_timeout_s <= 0:
        raise UsageError(f"--timeout must be a positive number of seconds, got {cell_timeout_s}")
    rb = load_runbook(runbook)
    environment = load_environment(env)
    params = resolve_parameters(rb, environment.defaults, environment.runbook_block(runbook), cli_params)
    refs = secret_references(rb, params)
    check_secret_references(
        refs, environment.secrets, str(environment.env_file) if environment.env_file else None
    )
    return RunPlan(rb, environment, params, refs, incident, cell_timeout_s, allow_writes)


def _raise_interrupted(signum, frame):
    from opsnb.execute import Interrupted

    raise Interrupted()


def execute_plan(plan: RunPlan, show_progress: bool) -> dict[str, Any]:
    """Run the notebook and write its bundle; returns the manifest."""
    import nbformat

    from opsnb.evidence import write_bundle
    from opsnb.execute import run_notebook
    from opsnb.index import update_index

    run_id = uuid.uuid4().hex[:10]
    env_values = {**plan.env.secrets}
    os.environ.update(plan.env.secrets)  # the env file wins over the inherited environment
    os.environ.update(
        {
            "OPSNB_RUNBOOK": plan.runbook.name,
            "OPSNB_ENV": plan.env.name,
            "OPSNB_RUN_ID": run_id,
            "OPSNB_HEADLESS": "1",
            "OPSNB_ALLOW_WRITES": "1" if plan.allow_writes else "0",
            "OPSNB_INCIDENT": plan.incident or "",
            "TQDM_DISABLE": "1",
            "PYDEVD_DISABLE_FILE_VALIDATION": "1",
            "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        }
    )
    nb = nbformat.read(plan.runbook.path, as_version=4)
    previous = signal.signal(signal.SIGTERM, _raise_interrupted)
    try:
        execution = run_notebook(
            nb,
            cwd=notebooks_dir(),
            parameters=plan.parameters,
            cell_timeout_s=plan.cell_timeout_s,
            show_progress=show_progress,
        )
    finally:
        # From here on the bundle must be written: a second signal waits until it is.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        names = set(plan.secret_refs.values()) | set(execution.scraps.get("opsnb_secret_names") or [])
        lookup = {**{n: os.environ.get(n, "") for n in names}, **env_values}
        manifest = write_bundle(
            execution,
            out_dir=outputs_dir() / plan.runbook.name,
            run_id=run_id,
            runbook=plan.runbook.name,
            env=plan.env.name,
            incident=plan.incident,
            parameters={**{n: p.default for n, p in plan.runbook.parameters.items()}, **plan.parameters},
            secret_values=secret_values(lookup, names),
        )
        manifest["index_path"] = str(update_index(outputs_dir()))
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    return manifest


def verdict_line(manifest: dict[str, Any]) -> str:
    """The one line cron mails: outcome, runbook, environment, severity, duration, report path."""
    from opsnb.severity import describe

    sev = manifest.get("highest_severity")
    parts = [f"{manifest['outcome']:<7} {manifest['runbook']} [{manifest['env']}]"]
    if sev and sev != "info":
        parts.append(describe(sev))
    if manifest.get("error"):
        parts.append(manifest["error"].splitlines()[0][:200])
    parts.append(f"{manifest['duration_s']:.1f}s")
    parts.append(_relative(Path(manifest["html_path"])))
    return " | ".join(parts)


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def is_terminal() -> bool:
    """True when a person watches (stderr is a TTY), False under cron."""
    return sys.stderr.isatty()
