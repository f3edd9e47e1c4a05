"""The mitigation: resend the payment events Stripe could not deliver (what `stripe events resend evt_…
--webhook-endpoint we_…` does), as a gated action, then re-check the orders they should have paid."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import stripe

from opsnb.checks import context, findings
from opsnb.checks.actions import action
from opsnb.checks.findings import CouldNotLook, check, conclude
from opsnb.checks.payments.events import PAYMENT_EVENTS
from opsnb.checks.payments.keys import client, error_line
from opsnb.checks.payments.orders import MISSED, order_statuses
from opsnb.checks.payments.route import webhook_url
from opsnb.checks.payments.signing import check_signature
from opsnb.checks.postgres import connect

if TYPE_CHECKING:  # pandas stays a lazy import (kernel start time)
    import pandas as pd

RECHECK_TIMEOUT_S = 15.0  # the app handles a resent event within a second; Stripe's own retry takes minutes


def retry_event(api: stripe.StripeClient, event_id: str, endpoint_id: str | None = None) -> dict[str, Any]:
    """POST /v1/events/{id}/retry: one redelivery of one event (to one endpoint, or to every failing one)."""
    params = {"webhook_endpoint": endpoint_id} if endpoint_id else {}
    try:
        api.raw_request("post", f"/v1/events/{event_id}/retry", **params)
    except stripe.StripeError as exc:  # one event's failure must not stop the others' resend
        return {"event": event_id, "resent": False, "error": error_line(exc)}
    return {"event": event_id, "resent": True, "error": ""}


def resend(
    api: stripe.StripeClient, event_ids: Sequence[str], endpoint_id: str | None = None
) -> pd.DataFrame:
    """Resend each event; what Stripe answered: event, resent, error."""
    import pandas as pd

    rows = [retry_event(api, e, endpoint_id) for e in event_ids]
    return pd.DataFrame(rows, columns=["event", "resent", "error"])


def signature_accepted() -> bool:
    """True when this run's payments.webhook-signature check passed: the app accepts Stripe's signatures."""
    return any(c.check == check_signature.check_id and c.status == "pass" for c in findings.all_conclusions())


def app_endpoint_id(endpoints: pd.DataFrame | None, app_url: str) -> str | None:
    """The id of the webhook endpoint at the app's route (None: let Stripe retry every failing endpoint)."""
    if endpoints is None or endpoints.empty:
        return None
    ours = endpoints[endpoints["url"] == webhook_url(app_url)]
    return str(ours["id"].iloc[0]) if not ours.empty else None


def resend_failed_events(
    stripe_api_base: str,
    stripe_key_env: str,
    failed: pd.DataFrame | None,
    endpoints: pd.DataFrame | None,
    app_url: str,
) -> dict[str, Any] | None:
    """Gated action: resend the undelivered payment events (``failed``, from check_deliveries) to the app's
    endpoint (from check_endpoints). Returns the action's entry; None when there is nothing to resend.

    Held back (recorded as blocked, not offered) until payments.webhook-signature passes: while the app
    rejects a correctly signed event, a resend would only fail again.
    """
    if failed is None:
        print("Nothing to resend: the undelivered events could not be read (payments.webhook-deliveries).")
        return None
    ids = [str(e) for e in failed.loc[failed["type"].isin(PAYMENT_EVENTS), "id"]]
    if not ids:
        print("Nothing to resend: no payment event is waiting on a webhook delivery.")
        return None
    endpoint_id = app_endpoint_id(endpoints, app_url)
    title = f"Resend {len(ids)} undelivered payment events to the app"
    plan = [
        f"POST /v1/events/{{id}}/retry (webhook_endpoint={endpoint_id or 'every failing endpoint'}) for: "
        + ", ".join(ids),
        "then re-check the stuck orders (next cell)",
    ]
    if not signature_accepted():
        entry = {
            "title": title,
            "plan": plan,
            "environment": context.environment(),
            "status": "blocked",
            "result": "the app does not accept a correctly signed event yet (payments.webhook-signature): fix "
            "STRIPE_WEBHOOK_SECRET in the app first, then re-run",
        }
        findings.note_action(entry)
        print(f"Action: {title}\n  blocked: {entry['result']}")
        return entry

    def apply() -> str:
        table = resend(client(stripe_api_base, stripe_key_env), ids, endpoint_id)
        result = f"{int(table['resent'].sum())}/{len(table)} events resent"
        refused = table[~table["resent"]]
        if not refused.empty:
            result += "; not resent: " + "; ".join(
                f"{r.event}: {r.error}" for r in refused.head(10).itertuples()
            )
        return result

    return action(title, plan, apply)


@check("payments.resend-recheck", essential=False, hint="re-run payments.stuck-orders once it can look")
def check_resent_orders(
    database_url_env: str,
    stuck: pd.DataFrame | None,
    resent: dict[str, Any] | None,
    timeout_s: float = RECHECK_TIMEOUT_S,
    interval_s: float = 0.5,
) -> pd.DataFrame:
    """The orders found stuck with a missed webhook (``stuck``, from check_stuck_orders), read again after
    the resend (``resent``, its action entry) until none is pending or ``timeout_s`` passes."""
    import pandas as pd

    if stuck is None:
        raise CouldNotLook("the stuck orders could not be read (payments.stuck-orders is inconclusive)")
    ids = [str(i) for i in stuck.loc[stuck["diagnosis"] == MISSED, "order_id"]]
    if not ids:
        empty = pd.DataFrame(columns=["order_id", "status"])
        return conclude(
            "pass", "No order was stuck with a missed webhook: nothing to re-check", evidence=empty
        )
    if not resent or resent.get("status") != "applied":
        why = f"{resent['status']}: {resent.get('result') or ''}" if resent else "no payment event was resent"
        return conclude(
            "inconclusive",
            f"The resend was not applied: {len(ids)} stuck orders not re-checked",
            detail=f"{why}. Apply the resend (in JupyterLab: its button), then re-run this cell.",
        )
    with connect(database_url_env) as db:
        deadline = time.monotonic() + timeout_s
        now = order_statuses(db, ids)
        while (now["status"] == "pending").any() and time.monotonic() < deadline:
            time.sleep(interval_s)
            now = order_statuses(db, ids)
    pending = now[now["status"] == "pending"]
    statuses = ", ".join(f"{s}: {n}" for s, n in now["status"].value_counts().items())
    if pending.empty:
        return conclude(
            "pass",
            f"None of the {len(ids)} stuck orders is pending after the resend",
            detail=statuses,
            evidence=now,
        )
    return conclude(
        "fail",
        f"{len(pending)} of {len(ids)} stuck orders are still pending {timeout_s:g} s after the resend",
        severity="P1",
        detail=f"{statuses}; still pending: " + ", ".join(pending["order_id"].astype(str)),
        evidence=now,
    )
