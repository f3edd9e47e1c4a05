"""`opsnb sandbox up|down|status|reset|fault` — the embedded sandbox's command line.

Exit codes: 0 ok · 1 status found a component not healthy (or nothing running) · 3 usage error ·
4 a component failed to start (the message names it and its log).
"""

from __future__ import annotations

import argparse
import os
import sys

from . import faults, manager

EXIT_OK, EXIT_UNHEALTHY, EXIT_USAGE, EXIT_COMPONENT = 0, 1, 3, 4


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so usage errors become exit code 3 with one line."""

    def error(self, message: str):  # type: ignore[override]
        raise manager.UsageError(f"{self.prog}: {message}")


def _scale(value: str) -> int:
    try:
        number = int(value.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if number < 100:
        raise argparse.ArgumentTypeError("must be at least 100")
    return number


def _fault_list() -> str:
    """One line per registered fault: name, what it plants, the runbook that should find it."""
    return "\n".join(
        f"  {fault.name:<20} {fault.plants} (→ {fault.runbook})" for fault in faults.REGISTRY.values()
    )


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree for `opsnb sandbox`."""
    parser = _Parser(
        prog="opsnb sandbox",
        description="A throwaway shop (PostgreSQL, app, Stripe, Vercel, S3) "
        "with planted trouble, on this machine. State: $OPSNB_SANDBOX_DIR or <project>/.sandbox.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    p = sub.add_parser(
        "up",
        help="start the sandbox (idempotent; heals dead components)",
        description="Start PostgreSQL, the shop/Stripe/Vercel stand-ins and S3; seed the shop; "
        "write sandbox.env. Running it again only restarts what died.",
    )
    p.add_argument(
        "--scale",
        type=_scale,
        default=None,
        help=f"number of orders to seed (default {manager.DEFAULT_SCALE:,}; only for a fresh sandbox)",
    )
    p.add_argument(
        "--faults",
        default=None,
        metavar="all|none|a,b",
        help=f"faults to plant (default for a fresh sandbox: all). Names: {', '.join(faults.FAULTS)}",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p = sub.add_parser(
        "down",
        help="stop everything the sandbox started and remove its data",
        description="Stop the sandbox's processes; delete its data unless --keep.",
    )
    p.add_argument(
        "--keep", action="store_true", help="keep the data (database, state, secrets) for the next up"
    )
    p = sub.add_parser(
        "status",
        help="show each component (port, pid, health); detects stale state",
        description="Exit 0 when every component is healthy, 1 otherwise.",
    )
    p.add_argument("--json", action="store_true", help="print the status as JSON")
    sub.add_parser(
        "reset",
        help="re-seed the running sandbox and plant its faults again",
        description="Fresh data, Stripe/Vercel state, log history and backups; processes keep running.",
    )
    p = sub.add_parser(
        "fault",
        help="switch a planted fault on or off (no restart needed)",
        description="Switch a planted fault; the shop follows at once. Faults (→ the runbook that finds it):\n"
        + _fault_list(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("name", choices=faults.FAULTS, metavar="NAME", help=", ".join(faults.FAULTS))
    p.add_argument("state", choices=("on", "off"), metavar="on|off")
    return parser


def _print_up(result: dict) -> None:
    root = result["state_dir"]
    rel_env = (
        os.path.relpath(result["env_file"])
        if not os.path.relpath(result["env_file"]).startswith("..")
        else result["env_file"]
    )
    what = f"started {', '.join(result['started'])}" if result["started"] else "already running"
    print(f"sandbox up in {result['seconds']} s ({what}; scale {result['scale']:,} orders; state {root})")
    print(manager.describe(result["components"]))
    on = [f for f, v in result["faults"].items() if v]
    print(f"faults on: {', '.join(on) if on else 'none'}")
    print(f"env file: {rel_env}  (load it: set -a; . {rel_env}; set +a)")
    for note in result.get("notes", []):
        print(note)


def main(argv: list[str] | None = None) -> int:
    """Entry point for `opsnb sandbox ...`; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return EXIT_USAGE
        if args.command == "up":
            result = manager.up(scale=args.scale, faults=manager.parse_faults(args.faults))
            if args.json:
                print(manager.dumps(result))
            else:
                _print_up(result)
            return EXIT_OK
        if args.command == "down":
            stopped = manager.down(keep=args.keep)
            kept = "data kept" if args.keep else "data removed"
            print(
                f"sandbox down: stopped {', '.join(stopped) if stopped else 'nothing (not running)'}; {kept}"
            )
            return EXIT_OK
        if args.command == "status":
            rows = manager.status()
            if args.json:
                print(manager.dumps(rows))
            elif not rows:
                print(f"sandbox is not up (state: {manager.state_dir()})")
            else:
                print(manager.describe(rows))
                on = [f for f, v in manager.faults().items() if v]
                print(f"faults on: {', '.join(on) if on else 'none'}")
                for note in manager.notes():
                    print(note)
                for r in rows:
                    if r["health"] in ("stale", "unhealthy"):
                        print(
                            f"{r['name']}: {r['health']}: {r['detail']}; `opsnb sandbox up` restarts it (log: {r['log']})"
                        )
            ok = bool(rows) and all(r["health"] in ("healthy", "running") for r in rows)
            return EXIT_OK if ok else EXIT_UNHEALTHY
        if args.command == "reset":
            result = manager.reset()
            print(manager.describe(result["components"]))
            on = [f for f, v in result["faults"].items() if v]
            print(f"sandbox reset: data re-seeded; faults on: {', '.join(on) if on else 'none'}")
            return EXIT_OK
        if args.command == "fault":
            states = manager.set_fault(args.name, args.state == "on")
            on = [f for f, v in states.items() if v]
            plants = faults.get(args.name).plants
            print(f"fault {args.name} {args.state} ({plants}); faults on: {', '.join(on) if on else 'none'}")
            return EXIT_OK
    except manager.UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except manager.SandboxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_COMPONENT
    except SystemExit as exc:  # --help
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_USAGE
    except PermissionError as exc:
        print(f"error: permission denied: {exc.filename or exc}", file=sys.stderr)
        return EXIT_COMPONENT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
