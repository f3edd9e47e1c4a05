"""stripe-webhooks end to end on the sandbox: with the stuck-orders fault on (the app verifies with a rotated-out
secret) the runbook FAILs listing the stuck orders and the failing deliveries and holds the resend back; with the
secret fixed and --allow-writes it resends, the orders are paid, and a re-run PASSes (that without --allow-writes
the resend is only planned is covered in tests/checks/payments/test_resend.py). An unreachable Stripe API makes
every Stripe-side check inconclusive and keeps the others. The Stripe key and webhook secret never appear in
outputs or on the terminal."""

from __future__ import annotations

import json
import os
import socket
import subprocess

import psycopg
import pytest
from runbooks.runbook_run import OPSNB, found, run_runbook

RUNBOOK = "stripe-webhooks"
PAYMENT_EVENTS = {"payment_intent.succeeded", "checkout.session.completed"}
# The runbook's order: the symptom, Investigation 1-4, the solutions, the re-check after the resend.
RUNBOOK_ORDER = [
    "payments.stuck-orders",
    "payments.webhook-deliveries",
    "payments.webhook-logs",
    "payments.webhook-route",
    "payments.clock-skew",
    "payments.webhook-endpoints",
    "payments.webhook-signature",
    "payments.key-mode",
    "payments.declines",
    "payments.resend-recheck",
]
STRIPE_SIDE = [
    "payments.stuck-orders",
    "payments.webhook-deliveries",
    "payments.webhook-endpoints",
    "payments.declines",
]


def stuck_orders(sandbox) -> list[str]:
    """The orders the sandbox planted as paid-in-Stripe-but-pending (its own record, not the runbook's)."""
    state = json.loads((sandbox.state_dir / "state.json").read_text())
    return sorted(o["id"] for o in state["facts"]["planted"] if o["kind"] == "stuck")


def undelivered_events(sandbox) -> list[str]:
    """Payment events the Stripe stand-in still has pending for the endpoint."""
    state = json.loads((sandbox.state_dir / "stripe.json").read_text())
    return sorted(
        e["id"]
        for e in state["events"]
        if e.get("_endpoint") and e["pending_webhooks"] > 0 and e["type"] in PAYMENT_EVENTS
    )


def order_statuses(sandbox, ids: list[str]) -> dict[str, str]:
    with psycopg.connect(sandbox.admin_url, autocommit=True) as conn:
        rows = conn.execute('SELECT "id", "status" FROM "Order" WHERE "id" = ANY(%s)', (ids,)).fetchall()
    return dict(rows)


def test_fails_on_stuck_orders_then_passes_after_fix_and_resend(sandbox, tmp_path):
    out, terminal = tmp_path / "out", []
    stuck = stuck_orders(sandbox)
    assert len(stuck) == 12
    with sandbox.faults(stuck_orders=True):
        pending_events = undelivered_events(sandbox)
        assert len(pending_events) == 2 * len(stuck)

        # 1. Fault on: FAIL, the stuck orders and the failing deliveries listed, the cause named, no resend.
        code, m = run_runbook(RUNBOOK, out, terminal=terminal)
        assert code == 2 and m["outcome"] == "FAIL"
        assert [f["check"] for f in m["findings"]] == RUNBOOK_ORDER
        (missed,) = found(m, "payments.stuck-orders", "P1")
        assert "missed webhook" in missed["title"]
        assert (
            sorted(r["order_id"] for r in missed["evidence"] if r["diagnosis"] == "missed webhook") == stuck
        )
        (deliveries,) = found(m, "payments.webhook-deliveries", "P1")
        assert deliveries["title"] == f"{len(pending_events)} payment events were not delivered to the app"
        assert (
            sorted(e["id"] for e in deliveries["evidence"] if e["type"] in PAYMENT_EVENTS) == pending_events
        )
        (cause,) = found(m, "payments.webhook-signature", "P1")
        assert "wrong webhook secret" in cause["title"]
        assert "No signatures found matching" in cause["detail"]
        (logged,) = found(m, "payments.webhook-logs", "P2")
        assert logged["title"] == "The app rejected its latest webhook request (HTTP 400)"
        assert "Webhook signature verification failed" in logged["detail"]
        assert found(m, "payments.webhook-route", "info") and found(m, "payments.webhook-endpoints", "info")
        assert found(m, "payments.key-mode", "info")
        assert found(m, "payments.declines", "info")[0]["title"].startswith("8 failed payments")
        (recheck,) = found(m, "payments.resend-recheck")
        assert recheck["status"] == "inconclusive" and recheck["title"].startswith(
            "The resend was not applied"
        )
        (act,) = m["actions"]
        assert act["status"] == "blocked"
        assert set(order_statuses(sandbox, stuck).values()) == {"pending"}

        sandbox.set_fault("stuck-orders", False)

        # 2. Secret fixed (fault off) and --allow-writes: the failed events are resent, the app marks the
        #    orders paid, the re-check sees it.
        assert undelivered_events(sandbox) == pending_events
        code, m = run_runbook(RUNBOOK, out, allow_writes=True, terminal=terminal)
        assert not found(m, "payments.webhook-signature", "P1")
        assert found(m, "payments.webhook-signature", "info")
        assert code == 2, "the run that mitigates still reports what it found"
        (act,) = m["actions"]
        assert (
            act["status"] == "applied"
            and act["result"] == f"{len(pending_events)}/{len(pending_events)} events resent"
        )
        (recheck,) = found(m, "payments.resend-recheck", "info")
        assert recheck["status"] == "pass"
        assert recheck["title"] == f"None of the {len(stuck)} stuck orders is pending after the resend"
        assert set(order_statuses(sandbox, stuck).values()) == {"paid"}
        assert undelivered_events(sandbox) == []

        # 3. Re-run: PASS.
        code, m = run_runbook(RUNBOOK, out, terminal=terminal)
        assert code == 0 and m["outcome"] == "PASS", [
            f["title"] for f in m["findings"] if f["severity"] != "info"
        ]
        assert {f["status"] for f in m["findings"]} == {"pass"}
        assert found(m, "payments.stuck-orders", "info") and found(m, "payments.webhook-deliveries", "info")
        assert m["actions"] == []

    # Canary: the key and the webhook secret appear in no artifact and nowhere on the terminal.
    canaries = {name: sandbox.env[name] for name in ("STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET")}
    assert all(len(v) >= 16 for v in canaries.values())
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) >= 9  # 3 runs x (ipynb, html, json) + index
    for path in files:
        text = path.read_bytes().decode("utf-8", errors="replace")
        for name, value in canaries.items():
            assert value not in text, f"{name} leaked into {path}"
    for text in terminal:
        for name, value in canaries.items():
            assert value not in text, f"{name} leaked on the terminal"


def dead_port() -> int:
    """A 127.0.0.1 port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_stripe_api_is_inconclusive_not_a_crash(sandbox, tmp_path):
    """Every check that asks Stripe could not look (inconclusive, essential ones make the run at least WARN);
    the run still finishes and keeps what it saw of the app itself."""
    with sandbox.faults(stuck_orders=True):
        code, m = run_runbook(RUNBOOK, tmp_path / "out", f"stripe_api_base=http://127.0.0.1:{dead_port()}")
    assert code == 2 and m["outcome"] == "FAIL", "the wrong webhook secret is still found"
    assert [f["check"] for f in m["findings"]] == RUNBOOK_ORDER
    by_check = {f["check"]: f for f in m["findings"]}
    for check in STRIPE_SIDE:
        assert by_check[check]["status"] == "inconclusive", by_check[check]
        assert "APIConnectionError" in by_check[check]["detail"]
    assert by_check["payments.webhook-route"]["status"] == "pass"
    assert "wrong webhook secret" in by_check["payments.webhook-signature"]["title"]
    assert by_check["payments.resend-recheck"]["status"] == "inconclusive"
    assert m["actions"] == []  # nothing to resend: the undelivered events could not be read


def test_rejects_bad_parameters(sandbox, tmp_path):
    env = {**os.environ, "OPSNB_OUTPUTS": str(tmp_path)}
    for bad in ("pending_minutes=soon", "window_hourz=3"):
        proc = subprocess.run(
            [OPSNB, "run", RUNBOOK, "--env", "sandbox", "-p", bad],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 3, (bad, proc.stdout, proc.stderr)
        assert bad.split("=")[0] in proc.stdout + proc.stderr
    assert not (tmp_path / RUNBOOK).exists()


@pytest.mark.parametrize("name", ["STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET"])
def test_sandbox_secrets_are_distinctive(sandbox, name):
    """The canary check above is only meaningful if the values are long and unlike ordinary text."""
    value = sandbox.env[name]
    assert len(value) >= 16 and value.strip() == value
    assert value.startswith({"STRIPE_SECRET_KEY": "sk_test_", "STRIPE_WEBHOOK_SECRET": "whsec_"}[name])
