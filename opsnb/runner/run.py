"""One run end to end: validate, execute, write the evidence, update the index.

Validation happens entirely before anything is written or started, so that bad
input (exit 3) leaves no trace; once execution has started, a bundle is always
written, whatever happened, or the run ends with one line and exit 4 saying why
it could not be.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opsnb.errors import ConfigError, UsageError
from opsnb.paths import notebooks_dir, outputs_dir
from opsnb.runner.config import Environment, load_environment
from opsnb.runner.execute import Execution, StopSignals, stop_signals
from opsnb.runner.inspection import Runbook, load_runbook
from opsnb.runner.parameterize import check_secret_references, resolve_parameters, secret_references
from opsnb.runner.redact import secret_values


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
    _check_writer_variables_are_own(refs)
    # A writer secret is needed only when writes are allowed; without --allow-writes it is withheld anyway.
    needed = {p: var for p, var in refs.items() if allow_writes or not is_writer_reference(p)}
    check_secret_references(
        needed, environment.secrets, str(environment.env_file) if environment.env_file else None
    )
    return RunPlan(rb, environment, params, refs, incident, cell_timeout_s, allow_writes)


def is_writer_reference(name: str) -> bool:
    """True when parameter ``name`` names a write-only secret (``writer_…_env``).

    Only a run with --allow-writes may hold such a secret: the kernel of any other run
    never gets the variable, whether it comes from the environment or the env file.
    """
    return name.startswith("writer_") and name.endswith("_env")


def _check_writer_variables_are_own(refs: Mapping[str, str]) -> None:
    """ConfigError when a writer parameter names the same variable as a reader one (it could not be withheld)."""
    readers = {var: p for p, var in refs.items() if not is_writer_reference(p)}
    for param, var in refs.items():
        if is_writer_reference(param) and var in readers:
            raise ConfigError(
                f"parameters '{param}' and '{readers[var]}' both name ${var}: "
                "the writer secret needs a variable of its own"
            )


def writer_variables(plan: RunPlan) -> set[str]:
    """The variables that hold the run's writer secrets."""
    return {var for param, var in plan.secret_refs.items() if is_writer_reference(param)}


def kernel_environment(plan: RunPlan, run_id: str) -> dict[str, str]:
    """The kernel's whole environment: ours, the env file's secrets and the run's OPSNB_* facts.

    Built as a dict handed to the kernel, so that the runner's own os.environ never
    holds a secret. Writer secrets are left out unless the run allows writes.
    """
    env = {**os.environ, **plan.env.secrets}  # the env file wins over the inherited environment
    env.update(
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
    # The kernel's secret() falls back to reading $OPSNB_ENV_FILE itself: an inherited one could hand it
    # another environment's secrets, or the writer secret withheld below. The env file is already in env.
    env.pop("OPSNB_ENV_FILE", None)
    if not plan.allow_writes:
        for var in writer_variables(plan):
            env.pop(var, None)
    return env


def execute_plan(plan: RunPlan, show_progress: bool, stop: StopSignals | None = None) -> dict[str, Any]:
    """Run the notebook and write its bundle; returns the manifest.

    ``stop`` decides how SIGTERM/SIGINT are answered (see StopSignals); without one, a
    guard is installed for this run only. EvidenceError (exit 4, one line) when the
    evidence cannot be written: then the notebook does not run, or its outcome is named.
    """
    import nbformat

    from opsnb.runner.evidence import EvidenceError, describe_failure, prepare_outputs, remove_work_folder
    from opsnb.runner.execute import run_notebook

    run_id = uuid.uuid4().hex[:10]
    outputs = outputs_dir().resolve()  # an outputs/ that is itself a symlink is the operator's choice
    with ExitStack() as stack:
        if stop is None:
            stop = stack.enter_context(stop_signals(keep_after_stop=False))
        try:
            work = prepare_outputs(outputs, plan.runbook.name, run_id)
        except Exception as exc:  # checked before the kernel starts: a run must not act without evidence
            reason = describe_failure(exc)
            raise EvidenceError(
                f"could not write the evidence: {reason} (the notebook was not run)"
            ) from None
        stack.callback(remove_work_folder, work)
        nb = nbformat.read(plan.runbook.path, as_version=4)
        execution = run_notebook(
            nb,
            cwd=notebooks_dir(),
            work_dir=work,
            kernel_env=kernel_environment(plan, run_id),
            parameters=plan.parameters,
            cell_timeout_s=plan.cell_timeout_s,
            show_progress=show_progress,
            stop=stop,
        )
        return _write_evidence(plan, execution, outputs, run_id)


def _write_evidence(plan: RunPlan, execution: Execution, outputs: Path, run_id: str) -> dict[str, Any]:
    """Write the bundle and the index; EvidenceError (one line, exit 4) on any failure."""
    from opsnb.runner.evidence import EvidenceError, describe_failure, write_bundle
    from opsnb.runner.index import update_index
    from opsnb.runner.redact import scrub_tree

    names = set(plan.secret_refs.values()) | set(execution.scraps.get("opsnb_secret_names") or [])
    # Writer secrets the kernel never got are scrubbed too: defence in depth.
    known = {**os.environ, **plan.env.secrets}
    values = secret_values({**{n: known.get(n, "") for n in names}, **plan.env.secrets}, names)
    ended = f"the run of {plan.runbook.name} [{plan.env.name}] ended {execution.outcome}"
    try:
        manifest = write_bundle(
            execution,
            out_dir=outputs / plan.runbook.name,
            run_id=run_id,
            runbook=plan.runbook.name,
            env=plan.env.name,
            incident=plan.incident,
            parameters={**{n: p.default for n, p in plan.runbook.parameters.items()}, **plan.parameters},
            secret_values=values,
        )
    except Exception as exc:
        reason = scrub_tree(describe_failure(exc), values)
        raise EvidenceError(f"could not write the evidence: {reason} ({ended})") from None
    try:
        manifest["index_path"] = str(update_index(outputs))
    except Exception as exc:
        reason = scrub_tree(describe_failure(exc), values)
        written = _relative(Path(manifest["html_path"]))
        raise EvidenceError(
            f"could not write the evidence: {reason} ({ended}; its report {written} was written)"
        ) from None
    return manifest


def verdict_line(manifest: dict[str, Any]) -> str:
    """The one line cron mails: outcome, runbook, environment, severity, what is wrong (the top conclusion,
    "and N more"), the actions applied, duration and the report's path."""
    from opsnb.checks.severity import describe

    sev = manifest.get("highest_severity")
    parts = [f"{manifest['outcome']:<7} {manifest['runbook']} [{manifest['env']}]"]
    if sev and sev != "info":
        parts.append(describe(sev))
    if manifest.get("error"):
        parts.append(manifest["error"].splitlines()[0][:200])
    top = top_conclusions(manifest.get("findings") or [])
    if top:
        more = f" (and {len(top) - 1} more)" if len(top) > 1 else ""
        parts.append(_one_line(top[0].get("title", ""), 160) + more)
    applied = [a for a in manifest.get("actions") or [] if a.get("status") in ("applied", "failed")]
    if applied:
        titles = "; ".join(f"{a.get('title')} ({a.get('status')})" for a in applied)
        parts.append(f"{len(applied)} action(s): " + _one_line(titles, 200))
    parts.append(f"{manifest['duration_s']:.1f}s")
    parts.append(_relative(Path(manifest["html_path"])))
    return " | ".join(parts)


_STATUS_RANK = {"fail": 0, "warn": 1, "inconclusive": 2}


def top_conclusions(conclusions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The conclusions that are not passes, most serious first (fail, warn, then essential blind spots; by
    severity). A non-essential check that could not look (an optional step left unconfigured) is no news."""
    from opsnb.checks.severity import ORDER

    def rank(c: dict[str, Any]) -> tuple[int, int]:
        sev = c.get("severity")
        return _STATUS_RANK.get(c.get("status", ""), 3), ORDER.index(sev) if sev in ORDER else len(ORDER)

    problems = [
        c
        for c in conclusions
        if c.get("status") in ("fail", "warn")
        or (c.get("status") == "inconclusive" and c.get("essential", True))
    ]
    return sorted(problems, key=rank)


def _one_line(text: str, limit: int) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _relative(path: Path) -> str:
    """``path`` relative to the current folder when it lies below it, else absolute (never a bare
    'outputs/…' that only makes sense from somewhere else)."""
    cwd = Path.cwd()
    if cwd != Path(cwd.anchor) and path.is_relative_to(cwd):
        return str(path.relative_to(cwd))
    return str(path.resolve())


def is_terminal() -> bool:
    """True when a person watches (stderr is a TTY), False under cron."""
    return sys.stderr.isatty()
