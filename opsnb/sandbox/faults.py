"""The planted faults: a registry of what can go wrong in the sandbox shop, and the switch for each.

A fault's state lives in `faults.json`; the shop, Stripe and Vercel stand-ins read that file on every
request, so for many faults flipping the switch is the whole effect and their functions do nothing.
The others change something outside the stand-ins (an index, rows, a process, the Vercel state, the
backups in S3, a sequence).

Adding a fault: write its `set_on`/`set_off` pair (each `(paths, state) -> None`) and add one `Fault(...)`
entry to `REGISTRY` below, naming the runbook that should find it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

from . import drain, s3, seed
from .postgres import port_open
from .processes import Child, wait_for
from .state import Paths, SandboxError, UsageError, has_stat_statements, internal_dsn, url
from .state import dsn as role_dsn
from .store import JsonStore, read_json

Switch = Callable[[Paths, dict], None]

WORKER_MARKER = "opsnb.sandbox.worker"
BAD_NEXTAUTH_URL = "http://localhost:3000"  # what the shop stand-in also serves while nextauth-url is on


def _nothing(paths: Paths, st: dict) -> None:
    """The stand-ins read faults.json themselves: the switch alone does it."""


@dataclass(frozen=True)
class Fault:
    """One plantable fault."""

    name: str
    plants: str  # one line for humans: what is wrong in the shop while it is on
    runbook: str  # the runbook (notebooks/<runbook>.ipynb) that should find it
    set_on: Switch = _nothing
    set_off: Switch = _nothing
    in_logs: bool = False  # its trouble shows in the log drain's synthetic history
    also_found_by: tuple[str, ...] = ()  # other runbooks that find it too

    def apply(self, paths: Paths, st: dict, on: bool) -> None:
        """Make the shop match the switch (faults.json is already written)."""
        (self.set_on if on else self.set_off)(paths, st)


# --- missing-index ----------------------------------------------------------------------------------


def _drop_user_orders_index(paths: Paths, st: dict) -> None:
    """Drop "Order_userId_idx" and run the my-orders workload against the bare table."""
    _user_orders_index(st, missing=True)


def _create_user_orders_index(paths: Paths, st: dict) -> None:
    """Create "Order_userId_idx" and run a lighter workload that uses it."""
    _user_orders_index(st, missing=False)


def _user_orders_index(st: dict, missing: bool) -> None:
    seed.set_missing_index(role_dsn(st, seed.APP_ROLE), missing)
    # Fresh statistics, then the workload: pg_stat_statements shows just the shop's traffic under this index
    seed.reset_stats(internal_dsn(st), stat_statements=has_stat_statements(st))
    users = st["facts"].get("users", 40)
    seed.run_user_orders_workload(role_dsn(st, seed.APP_ROLE), users, calls=300 if missing else 100)


# --- stuck-orders -----------------------------------------------------------------------------------


def _replant_stuck_orders(paths: Paths, st: dict) -> None:
    """The planted orders are pending again and their payment events undelivered once more."""
    from . import stripe_api

    planted = st["facts"]["planted"]
    seed.set_stuck_pending(role_dsn(st, seed.APP_ROLE), planted, pending=True)
    with JsonStore(paths.stripe).update() as state:
        stripe_api.replant_stuck(state, planted)


# Off: the app verifies with the current secret again; the orders stay pending until the runbook's
# resend delivers their events, which is what stripe-webhooks demonstrates.

# --- 500-burst --------------------------------------------------------------------------------------


def _redeploy_bad_build(paths: Paths, st: dict) -> None:
    """Make the bad deployment current again (a runbook may have rolled back)."""
    with JsonStore(paths.vercel).update() as state:
        state["current"] = state["bad"]


# Off: the shop stops throwing at once; the Vercel state (current deployment, rollbacks) is left alone.

# --- idle-in-transaction ----------------------------------------------------------------------------

WORKER = Child(
    "shop-worker",
    WORKER_MARKER,
    command=lambda paths, st: [sys.executable, "-m", WORKER_MARKER, "--state", str(paths.root)],
)


def _start_worker(paths: Paths, st: dict) -> None:
    """Start the shop-worker (unless it runs) and wait until its transaction sits idle."""
    if not WORKER.ensure(paths, st):
        return
    if not wait_for(lambda: _worker_idle(st), 10):
        raise SandboxError("shop-worker did not open its transaction", WORKER.name, WORKER.log(paths))


def _stop_worker(paths: Paths, st: dict) -> None:
    """Stop the shop-worker: its transaction rolls back."""
    WORKER.halt(st)


def _worker_idle(st: dict) -> bool:
    import psycopg

    try:
        with psycopg.connect(internal_dsn(st), connect_timeout=3) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
                "AND state = 'idle in transaction'",
                (seed.WORKER_APP_NAME,),
            ).fetchone()
            return row[0] > 0
    except psycopg.Error:
        return False


# --- nextauth-url -----------------------------------------------------------------------------------
# Both ways the switch is the whole effect: the shop serves BAD_NEXTAUTH_URL, sandbox.env's NEXTAUTH_URL
# follows it (envfile.py), and the drain's history shows the failed callbacks (in_logs).

# --- backup-truncated, backups-stopped --------------------------------------------------------------
# Both rearrange the nightly backups in S3, and each one's layout depends on the other's switch (both on:
# the last backup before they stopped is the truncated one), so every switch of either lays out both from
# faults.json, which is already written (s3.arrange_backups). moto keeps objects in memory only: after every
# upload of fresh backups provision.py calls replant_backups.


def arrange_backups(paths: Paths, st: dict) -> None:
    """Make the nightly backups in S3 match the backup-truncated and backups-stopped switches."""
    if not wait_for(lambda: port_open(st["ports"]["s3"]), 10):
        raise SandboxError("s3 (moto) is not listening", "s3", paths.logs / "s3.log")
    saved = read_json(paths.faults, {}) or {}
    client = s3.client(
        url(st, "s3"), st["secrets"]["aws_access_key_id"], st["secrets"]["aws_secret_access_key"]
    )
    s3.arrange_backups(
        client, truncated=bool(saved.get("backup-truncated")), stopped=bool(saved.get("backups-stopped"))
    )


replant_backups = arrange_backups  # after an upload: the same layout, laid over fresh objects

# --- sequence-near-max ------------------------------------------------------------------------------
# The shop's own ids are text (Prisma cuid), so the fault brings its integer sequence along: an invoice
# numbering table whose identity column is an integer, the type that runs out at 2 147 483 647.

INVOICE_TABLE = "InvoiceNumber"
NEAR_MAX = 2_000_000_000  # 93 % of integer's maximum: past PgHero's 90 %
RESTED = 1_042  # a few invoices issued: far from any maximum


def _exhaust_invoice_numbers(paths: Paths, st: dict) -> None:
    """Create "InvoiceNumber" (unless it exists) and move its id sequence to NEAR_MAX."""
    _invoice_sequence(st, NEAR_MAX, create=True)


def _rewind_invoice_numbers(paths: Paths, st: dict) -> None:
    """Move the id sequence of "InvoiceNumber" back to a low value; the table stays."""
    _invoice_sequence(st, RESTED, create=False)


def _invoice_sequence(st: dict, value: int, create: bool) -> None:
    import psycopg
    from psycopg import sql

    table = sql.Identifier(INVOICE_TABLE)
    # the admin's housekeeping DSN: stays out of pg_stat_statements, so slow-queries sees only the shop
    with psycopg.connect(internal_dsn(st), autocommit=True) as conn:
        if create:
            conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} ("
                    '"id" integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, '
                    '"orderId" text NOT NULL, '
                    '"issuedAt" timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP)'
                ).format(table)
            )
            # owned by the app like every shop table (its identity sequence follows)
            conn.execute(sql.SQL("ALTER TABLE {} OWNER TO {}").format(table, sql.Identifier(seed.APP_ROLE)))
            # analyzed once, so db-maintenance's vacuum check has nothing to say about a new table
            conn.execute(sql.SQL("ANALYZE {}").format(table))
        elif conn.execute("SELECT to_regclass(%s)", (f'public."{INVOICE_TABLE}"',)).fetchone()[0] is None:
            return  # never planted: no sequence to rewind
        conn.execute(
            "SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)", (f'public."{INVOICE_TABLE}"', value)
        )


# --- the registry -----------------------------------------------------------------------------------

REGISTRY: dict[str, Fault] = {
    fault.name: fault
    for fault in (
        Fault(
            "missing-index",
            'no index on "Order"."userId": the my-orders query scans the table',
            "slow-queries",
            set_on=_drop_user_orders_index,
            set_off=_create_user_orders_index,
        ),
        Fault(
            "stuck-orders",
            "webhooks checked with a rotated-out secret: paid orders stay pending",
            "stripe-webhooks",
            set_on=_replant_stuck_orders,
        ),
        Fault(
            "500-burst",
            "a deployment that throws on a null price: 3 in 10 checkouts fail",
            "500-triage",
            set_on=_redeploy_bad_build,
            in_logs=True,
        ),
        Fault(
            "idle-in-transaction",
            "a worker holding a row lock in an idle transaction",
            "slow-queries",
            set_on=_start_worker,
            set_off=_stop_worker,
        ),
        Fault(
            "nextauth-url",
            f"NEXTAUTH_URL is {BAD_NEXTAUTH_URL}: sign-in callbacks go astray",
            "auth-debug",
            in_logs=True,
        ),
        Fault(
            "backup-truncated",
            "the newest nightly backup is a truncated custom dump (its checksum matches): it does not restore",
            "restore-test",
            set_on=arrange_backups,
            set_off=arrange_backups,
        ),
        Fault(
            "backups-stopped",
            f"no nightly backup for the last {s3.STOPPED_FOR_H / 24:g} days: the latest is 3 nights old",
            "restore-test",
            set_on=arrange_backups,
            set_off=arrange_backups,
            also_found_by=("backup",),  # its inventory judges the newest backup's age
        ),
        Fault(
            "sequence-near-max",
            f'the integer id sequence of "{INVOICE_TABLE}" is at {NEAR_MAX:,} (93 % of its maximum)',
            "db-maintenance",
            set_on=_exhaust_invoice_numbers,
            set_off=_rewind_invoice_numbers,
        ),
    )
}
FAULTS = tuple(REGISTRY)


def get(name: str) -> Fault:
    """The registered fault called name; UsageError listing the registered ones otherwise."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise UsageError(f"unknown fault {name!r} (registered: {', '.join(REGISTRY)})") from None


def for_runbook(runbook: str) -> list[Fault]:
    """The faults a runbook should find, in registry order."""
    return [fault for fault in REGISTRY.values() if runbook in (fault.runbook, *fault.also_found_by)]


def demonstrating_runbooks() -> list[str]:
    """The runbooks that some registered fault is planted for, sorted."""
    return sorted({name for fault in REGISTRY.values() for name in (fault.runbook, *fault.also_found_by)})


def planted_note(runbook: str) -> str:
    """`← planted: name (what it plants), …` for a runbook; empty when no fault is planted for it."""
    found = ", ".join(f"{fault.name} ({fault.plants})" for fault in for_runbook(runbook))
    return f"← planted: {found}" if found else ""


def parse(spec: str | None) -> dict[str, bool] | None:
    """`all` | `none` | `a,b` → {fault: on} for every registered fault; None stays None."""
    if spec is None:
        return None
    spec = spec.strip()
    if spec == "all":
        return dict.fromkeys(REGISTRY, True)
    if spec in ("none", ""):
        return dict.fromkeys(REGISTRY, False)
    chosen = [s.strip() for s in spec.split(",") if s.strip()]
    unknown = [c for c in chosen if c not in REGISTRY]
    if unknown:
        raise UsageError(f"unknown fault {', '.join(unknown)} (choose from {', '.join(REGISTRY)}, all, none)")
    return {name: name in chosen for name in REGISTRY}


def states(paths: Paths) -> dict[str, bool]:
    """On/off of every registered fault (a fault missing from faults.json is off)."""
    saved = read_json(paths.faults, {}) or {}
    return {name: bool(saved.get(name)) for name in REGISTRY}


def switch(paths: Paths, st: dict, name: str, on: bool) -> None:
    """Record the switch in faults.json, then make the shop match it."""
    fault = get(name)
    with JsonStore(paths.faults, default={}).update() as saved:
        saved[name] = on
    fault.apply(paths, st, on)
    if fault.in_logs:
        rewrite_history(paths, st, states(paths))


def ensure_worker(paths: Paths, st: dict) -> None:
    """Keep the shop-worker in line with its fault: restarted when it died, stopped when the fault is off."""
    REGISTRY["idle-in-transaction"].apply(paths, st, states(paths)["idle-in-transaction"])


def rewrite_history(paths: Paths, st: dict, faults: dict[str, bool]) -> None:
    """(Re)write the drain's synthetic history for `faults`: same seed, deployments and times as at seeding.

    Only the history files are replaced; lines the live app appended and the Vercel state (current
    deployment, rollbacks) are left alone.
    """
    history = st.get("history")
    vercel_state = read_json(paths.vercel)
    if not history or not vercel_state:  # seeded by an older version: `opsnb sandbox reset` to get one
        return
    drain.history(
        paths.drain,
        now=history["now"],
        project_id=vercel_state["project"]["id"],
        deployments=vercel_state["deployments"],
        bad_deployment=vercel_state["bad"],
        faults=faults,
        webhook_failures=history["webhook_failures"],
    )
