"""The ``opsnb`` command: list, show, run, sandbox, demo, lab.

Exit codes (cron alerts on them): 0 PASS, 1 WARN, 2 FAIL, 3 usage or config
error (nothing ran), 4 ERROR / TIMEOUT / KERNEL-DIED / INTERRUPTED.
"""

from __future__ import annotations

import argparse
import os
import sys

from opsnb.errors import OpsnbError, UsageError

EXIT_USAGE = 3


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit code 3."""

    def error(self, message: str):
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    p = _Parser(prog="opsnb", description="The shop's operations runbook as executable notebooks.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.add_parser(
        "list",
        help="runbooks and their purpose",
        description="List the runbooks with their one-line purpose. A notebook that is not a valid "
        "runbook is listed as '(invalid: reason)'; the others are still listed and the exit code is 0.",
    )
    show = sub.add_parser(
        "show", help="a runbook's parameters", description="Show a runbook's parameters: type, default, help."
    )
    show.add_argument("runbook")
    run = sub.add_parser(
        "run",
        help="run a runbook and write its evidence",
        description="Run a runbook headless and write its evidence bundle under outputs/. "
        "Exit: 0 PASS, 1 WARN, 2 FAIL, 3 usage/config error, 4 ERROR/TIMEOUT/KERNEL-DIED/INTERRUPTED.",
    )
    run.add_argument("runbook", nargs="?", help="runbook name (see `opsnb list`)")
    run.add_argument(
        "--all",
        action="store_true",
        help="run every runbook configured for the environment, one after the other (invalid notebooks and "
        "runbooks the environment does not configure are skipped with a note)",
    )
    run.add_argument(
        "--tag",
        action="append",
        default=[],
        metavar="TAG",
        help="with --all: only runbooks carrying this tag (repeatable; `opsnb list` shows the tags)",
    )
    run.add_argument(
        "--env",
        default=os.environ.get("OPSNB_ENV", "sandbox"),
        help="environment: parameters/<ENV>.yaml (default: sandbox)",
    )
    run.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set a parameter (repeatable)",
    )
    run.add_argument("--incident", help="incident id recorded in the evidence")
    run.add_argument(
        "--timeout", type=int, default=600, metavar="S", help="per-cell timeout in seconds (default 600)"
    )
    run.add_argument(
        "--allow-writes", action="store_true", help="let gated actions apply (default: plan only)"
    )
    sub.add_parser("sandbox", help="the embedded shop: up, down, status, reset, fault", add_help=False)
    demo = sub.add_parser(
        "demo",
        help="sandbox up, run every runbook, print where the evidence is",
        description="Start the sandbox with its planted trouble, run every runbook against it and print the index path.",
    )
    demo.add_argument("--scale", type=int, default=None, help="orders in the sandbox shop")
    lab = sub.add_parser(
        "lab",
        help="open JupyterLab on the runbooks for an environment",
        description="Open JupyterLab with the runbooks prepared for an environment.",
    )
    lab.add_argument("--env", default="sandbox")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        code = _dispatch(argv)
        sys.stdout.flush()  # inside the try: a reader that left surfaces here, not at interpreter exit
        return code
    except OpsnbError as exc:
        print(f"opsnb: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("opsnb: interrupted", file=sys.stderr)
        return 4
    except BrokenPipeError:  # `opsnb … | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as exc:  # a bug still ends in one line and exit 4 for cron, never a traceback and exit 1
        if os.environ.get("OPSNB_DEBUG"):
            raise
        from opsnb.checks.secrets import scrub

        lines = str(exc).strip().splitlines()
        detail = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
        print(f"opsnb: internal error: {scrub(detail)} (OPSNB_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 4


def _dispatch(argv: list[str]) -> int:
    if argv[:1] == ["sandbox"]:
        from opsnb.sandbox.cli import main as sandbox_main

        return sandbox_main(argv[1:])
    args = build_parser().parse_args(argv)
    if args.command is None:
        build_parser().print_help()
        return EXIT_USAGE
    return COMMANDS[args.command](args)


def cmd_list(args) -> int:
    """Each runbook with its purpose; an invalid notebook with its reason. Exit 0: the list printed."""
    from opsnb.runner.inspection import scan_runbooks

    runbooks, invalid = scan_runbooks()
    rows = {rb.name: rb.purpose + (f"  [{', '.join(rb.tags)}]" if rb.tags else "") for rb in runbooks}
    rows.update({name: f"(invalid: {reason})" for name, reason in invalid.items()})
    for name in sorted(rows):
        print(f"{name:<20} {rows[name]}")
    return 0


def cmd_show(args) -> int:
    from opsnb.runner.inspection import load_runbook

    rb = load_runbook(args.runbook)
    print(f"{rb.name}: {rb.purpose}")
    for p in rb.parameters.values():
        default = "(required)" if p.required else repr(p.default)
        print(f"  {p.name:<24} {p.type:<12} {default:<28} {p.help}")
    return 0


def cmd_run(args) -> int:
    from opsnb.runner.parameterize import parse_cli_assignments
    from opsnb.runner.run import execute_plan, is_terminal, plan_run, stop_signals, verdict_line

    if args.all == bool(args.runbook):
        raise UsageError("run: give one RUNBOOK or --all")
    cli_params = parse_cli_assignments(args.param)
    if args.all and cli_params:
        raise UsageError("run --all: -p applies to one runbook; put shared values in the parameters file")
    if args.tag and not args.all:
        raise UsageError("run: --tag selects runbooks for --all")
    if args.all:
        plans = _configured_plans(_valid_runbook_names(args.tag), args, plan_run)
    else:
        plans = [plan_run(args.runbook, args.env, cli_params, args.incident, args.timeout, args.allow_writes)]
    worst = 0
    # From here on SIGTERM/SIGINT stop the notebook once, then are only noted: the bundle is always
    # written and the exit code stays the run's (never 143).
    with stop_signals() as stop:
        for done, plan in enumerate(plans, start=1):
            manifest = execute_plan(plan, show_progress=is_terminal(), stop=stop)
            print(verdict_line(manifest), flush=True)
            worst = max(worst, manifest["exit_code"])
            if manifest["outcome"] == "INTERRUPTED" or stop.requested:
                if done < len(plans):
                    not_run = ", ".join(p.runbook.name for p in plans[done:])
                    print(f"opsnb: interrupted; not run: {not_run}", file=sys.stderr)
                    worst = max(worst, 4)
                break
        if plans and (args.all or is_terminal()):  # under cron: only the verdict line
            print(f"index: {manifest['index_path']}")
    return worst


def _valid_runbook_names(tags: list[str] | None = None) -> list[str]:
    """Names of the valid runbooks (carrying one of ``tags`` when given), for --all; each invalid notebook
    gets a one-line note on stderr."""
    from opsnb.paths import notebooks_dir
    from opsnb.runner.inspection import scan_runbooks

    runbooks, invalid = scan_runbooks()
    for name, reason in invalid.items():
        # One broken notebook must not stop the nightly run of all the others.
        print(f"opsnb: skipping '{name}': not a valid runbook: {reason}", file=sys.stderr)
    if tags:
        known = sorted({t for rb in runbooks for t in rb.tags})
        runbooks = [rb for rb in runbooks if set(rb.tags) & set(tags)]
        if not runbooks:
            raise UsageError(
                f"run --all --tag {' '.join(tags)}: no runbook carries it; tags: {', '.join(known)}"
            )
    if not runbooks:
        raise UsageError(f"run --all: no valid runbook in {notebooks_dir()}")
    return [rb.name for rb in runbooks]


def _configured_plans(names: list[str], args, plan_run) -> list:
    """Plans of the runbooks the environment configures; the others are named on stderr, not fatal: an
    environment that only holds a database URL still runs its database runbooks."""
    from opsnb.runner.config import load_environment

    load_environment(args.env)  # an unknown or broken environment stops everything (exit 3)
    plans, skipped = [], []
    for name in names:
        try:
            plans.append(plan_run(name, args.env, {}, args.incident, args.timeout, args.allow_writes))
        except UsageError as exc:
            skipped.append(name)
            print(f"opsnb: not configured for {args.env}: {name}: {exc}", file=sys.stderr)
    if not plans:
        raise UsageError(f"run --all --env {args.env}: no runbook is configured ({', '.join(skipped)})")
    return plans


def cmd_demo(args) -> int:
    from opsnb.sandbox.cli import main as sandbox_main
    from opsnb.sandbox.faults import demonstrating_runbooks, planted_note

    print("opsnb demo: starting the sandbox with its planted trouble…", flush=True)
    up = ["up", "--faults", "all"] + (["--scale", str(args.scale)] if args.scale else [])
    code = sandbox_main(up)
    if code != 0:
        return code
    print("Planted in the shop, and the runbook that should find it:")
    for runbook in demonstrating_runbooks():
        print(f"  {runbook:<16} {planted_note(runbook)}", flush=True)
    run_args = argparse.Namespace(
        runbook=None, all=True, env="sandbox", param=[], incident="DEMO", timeout=600, allow_writes=False
    )
    code = cmd_run(run_args)
    if code >= 3:
        print("Some runbook could not finish: see its report above.")
        return code
    print(
        "Every runbook ran to a verdict. Open the index above in a browser; `opsnb sandbox down` stops the shop."
    )
    return 0


def cmd_lab(args) -> int:
    from opsnb.runner.lab import open_lab

    return open_lab(args.env)


COMMANDS = {"list": cmd_list, "show": cmd_show, "run": cmd_run, "demo": cmd_demo, "lab": cmd_lab}

if __name__ == "__main__":
    sys.exit(main())
