"""The database side (the runbook's symptom: orders stuck in "pending"): pending orders, each with what
Stripe says about its PaymentIntent. Succeeded in Stripe but pending in the database is a missed webhook.

The database is read through the reader role (``opsnb.checks.postgres.connect``); nothing here writes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import stripe

from opsnb.checks.findings import check, conclude
from opsnb.checks.payments.keys import client, error_line, plain
from opsnb.checks.postgres import connect

if TYPE_CHECKING:  # pandas stays a lazy import (kernel start time)
    import pandas as pd

    from opsnb.checks.postgres import Database

# A PaymentIntent's webhook normally lands within seconds; Stripe's first retry comes within minutes.
PENDING_MINUTES = 15
# Diagnoses of a pending order.
MISSED = "missed webhook"  # Stripe says succeeded: the app never marked it paid
MISMATCH = "test/live mismatch"  # the PaymentIntent exists only in the other mode
NOT_FOUND = "not in Stripe"  # Stripe has no such PaymentIntent
NO_INTENT = "no PaymentIntent"  # the order has no PaymentIntent id
NO_LOOKUP = {"stripe_status": None, "livemode": None, "error": ""}
PENDING_ORDERS_SQL = """
SELECT "id" AS order_id, "userId" AS user_id, "total", "stripePaymentIntentId" AS payment_intent,
       "createdAt" AS created_at, round(extract(epoch FROM (now() - "createdAt")) / 60)::int AS age_minutes
  FROM "Order"
 WHERE "status" = 'pending' AND "createdAt" < now() - make_interval(mins => %s)
 ORDER BY "createdAt"
 LIMIT %s
"""
ORDER_STATUS_SQL = 'SELECT "id" AS order_id, "status" FROM "Order" WHERE "id" = ANY(%s) ORDER BY "id"'
HINT = (
    "check that database_url_env names a reachable reader role (pg_read_all_data), and that the key named by "
    "stripe_key_env reaches stripe_api_base and may read PaymentIntents"
)


def pending_orders(db: Database, older_than_minutes: int = PENDING_MINUTES, limit: int = 200) -> pd.DataFrame:
    """Orders still "pending" after ``older_than_minutes`` (oldest first), with their PaymentIntent id."""
    return db.query(PENDING_ORDERS_SQL, (int(older_than_minutes), int(limit)))


def order_statuses(db: Database, order_ids: list[str]) -> pd.DataFrame:
    """The current status of these orders: order_id, status."""
    return db.query(ORDER_STATUS_SQL, (order_ids,))


def payment_intent(api: stripe.StripeClient, intent_id: str) -> dict[str, Any]:
    """One PaymentIntent's status and mode; when Stripe has no such PaymentIntent, its error instead.

    Only "no such object" is an answer about the order; any other error (network, key, permission,
    rate limit) means Stripe could not be asked and propagates.
    """
    try:
        pi = plain(api.v1.payment_intents.retrieve(intent_id))
    except stripe.InvalidRequestError as exc:
        return {"stripe_status": None, "livemode": None, "error": error_line(exc)}
    return {"stripe_status": pi.get("status"), "livemode": pi.get("livemode"), "error": ""}


def diagnose_order(stripe_status: str | None, error: str) -> str:
    """Why one order is still pending, from its PaymentIntent's status in Stripe (or Stripe's error)."""
    if not stripe_status:
        if "similar object exists in" in error:  # Stripe's words when the id exists in the other mode
            return MISMATCH
        return NOT_FOUND if error else NO_INTENT
    if stripe_status == "succeeded":
        return MISSED
    if stripe_status in ("processing", "requires_capture"):
        return "payment in progress"
    if stripe_status == "canceled":
        return "abandoned (canceled)"
    return "awaiting customer"  # requires_payment_method / requires_action / requires_confirmation


def stuck_orders(
    database_url_env: str,
    stripe_api_base: str,
    stripe_key_env: str,
    older_than_minutes: int = PENDING_MINUTES,
    max_lookups: int = 100,
) -> pd.DataFrame:
    """The oldest ``max_lookups`` orders pending for more than ``older_than_minutes``, each with its
    PaymentIntent's status in Stripe and a diagnosis."""
    import pandas as pd

    with connect(database_url_env) as db:
        orders = pending_orders(db, older_than_minutes, limit=max_lookups)
    api = client(stripe_api_base, stripe_key_env) if not orders.empty else None
    rows = []
    for order in orders.to_dict(orient="records"):
        intent_id = order["payment_intent"] if isinstance(order["payment_intent"], str) else None  # NULL: NaN
        found = payment_intent(api, intent_id) if intent_id else NO_LOOKUP
        rows.append({**order, **found, "diagnosis": diagnose_order(found["stripe_status"], found["error"])})
    columns = [*orders.columns, "stripe_status", "livemode", "diagnosis", "error"]
    return pd.DataFrame(rows, columns=columns)


@check("payments.stuck-orders", hint=HINT)
def check_stuck_orders(
    database_url_env: str,
    stripe_api_base: str,
    stripe_key_env: str,
    older_than_minutes: int = PENDING_MINUTES,
    max_lookups: int = 100,
) -> pd.DataFrame:
    """Orders stuck in "pending" and why: a missed webhook (P1), a test/live mismatch (P1), a PaymentIntent
    Stripe does not know (P2); the rest wait on the customer or the bank (not a webhook problem)."""
    table = stuck_orders(database_url_env, stripe_api_base, stripe_key_env, older_than_minutes, max_lookups)
    since = f"for more than {older_than_minutes} min"
    if table.empty:
        return conclude("pass", f"No order has been pending {since}", evidence=table)
    counts = table["diagnosis"].value_counts()
    detail = ", ".join(f"{n} {diagnosis}" for diagnosis, n in counts.items())
    if len(table) >= max_lookups:
        detail += f" (the oldest {max_lookups} pending orders looked up)"

    def ids(diagnosis: str) -> str:
        return ", ".join(table.loc[table["diagnosis"] == diagnosis, "order_id"].astype(str))

    if counts.get(MISSED, 0) or counts.get(MISMATCH, 0):
        if counts.get(MISSED, 0):
            title = (
                f"{counts[MISSED]} orders stuck in pending although Stripe says succeeded (missed webhook)"
            )
        else:
            title = f"{counts[MISMATCH]} pending orders' PaymentIntents exist only in the other mode (test vs live mismatch)"
        detail += "; " + "; ".join(f"{d}: {ids(d)}" for d in (MISSED, MISMATCH) if counts.get(d, 0))
        return conclude("fail", title, severity="P1", detail=detail, evidence=table)
    unknown = table[table["diagnosis"].isin((NOT_FOUND, NO_INTENT))]
    if not unknown.empty:
        detail += "; " + "; ".join(
            f"{r.order_id}: {r.error or NO_INTENT}" for r in unknown.head(10).itertuples()
        )
        return conclude(
            "warn",
            f"{len(unknown)} pending orders have no PaymentIntent Stripe knows",
            severity="P2",
            detail=detail,
            evidence=table,
        )
    return conclude(
        "pass",
        f"{len(table)} order(s) pending {since}, all waiting on the customer or the bank",
        detail=detail + "; not a webhook problem",
        evidence=table,
    )
