"""The Stripe side, through the API the Dashboard shows: webhook endpoints (runbook Investigation 4), events
whose delivery failed (Investigation 1) and payment failures by decline code (Solution "Payment intent fails").

One function per API call (a paged list); each check builds its own client from the key's variable name, so
an unreachable API makes every one of them inconclusive on its own (the SDK's errors propagate).
"""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import stripe

from opsnb.checks.findings import check, conclude
from opsnb.checks.payments.keys import client, key_mode, plain
from opsnb.checks.payments.route import webhook_url
from opsnb.checks.secrets import secret

if TYPE_CHECKING:  # pandas and matplotlib stay lazy imports (kernel start time)
    import pandas as pd
    from matplotlib.figure import Figure

# Events whose loss leaves an order wrong (the app marks orders paid on these).
PAYMENT_EVENTS = ("payment_intent.succeeded", "checkout.session.completed", "charge.succeeded")
ENDPOINT_COLUMNS = ["id", "url", "status", "livemode", "enabled_events", "api_version"]
EVENT_COLUMNS = [
    "id",
    "type",
    "created",
    "livemode",
    "pending_webhooks",
    "object_id",
    "order_id",
    "amount",
    "decline_code",
]
API_HINT = "check that this machine reaches stripe_api_base and that the key named by stripe_key_env "
ENDPOINTS_HINT = API_HINT + "may read webhook endpoints (restricted key: Webhook Endpoints read)"
EVENTS_HINT = API_HINT + "may read events (restricted key: Events read)"


def webhook_endpoints(api: stripe.StripeClient, limit: int = 100) -> pd.DataFrame:
    """Every webhook endpoint of the account: id, url, status, livemode, enabled_events, api_version."""
    import pandas as pd

    rows = []
    for item in api.v1.webhook_endpoints.list(params={"limit": min(limit, 100)}).auto_paging_iter():
        ep = plain(item)
        rows.append(
            {
                **{c: ep.get(c) for c in ENDPOINT_COLUMNS},
                "enabled_events": list(ep.get("enabled_events") or []),
            }
        )
        if len(rows) >= limit:
            break
    return pd.DataFrame(rows, columns=ENDPOINT_COLUMNS)


def events(
    api: stripe.StripeClient,
    since: int,
    until: int | None = None,
    delivery_success: bool | None = None,
    types: Sequence[str] | None = None,
    limit: int = 1000,
) -> pd.DataFrame:
    """Events created in [since, until] (one paged list call), flattened with their PaymentIntent's facts."""
    import pandas as pd

    params: dict[str, Any] = {"limit": 100, "created": {"gte": int(since)}}
    if until is not None:
        params["created"]["lte"] = int(until)
    if delivery_success is not None:
        params["delivery_success"] = delivery_success
    if types:
        params["types"] = list(types)[:20]  # the API takes at most 20
    rows = []
    for item in api.v1.events.list(params=params).auto_paging_iter():
        rows.append(_event_row(plain(item)))
        if len(rows) >= limit:
            break
    return pd.DataFrame(rows, columns=EVENT_COLUMNS)


def _event_row(ev: dict[str, Any]) -> dict[str, Any]:
    """One event as a row: its type and delivery state, and the facts of the object it carries."""
    obj = (ev.get("data") or {}).get("object") or {}
    error = obj.get("last_payment_error") or {}
    created = ev.get("created")
    return {
        "id": ev.get("id"),
        "type": ev.get("type"),
        "created": _dt.datetime.fromtimestamp(int(created), _dt.UTC) if created else None,
        "livemode": ev.get("livemode"),
        "pending_webhooks": ev.get("pending_webhooks"),
        "object_id": obj.get("id"),
        "order_id": (obj.get("metadata") or {}).get("orderId"),
        "amount": obj.get("amount"),
        "decline_code": error.get("decline_code") or error.get("code"),
    }


def _same_url(a: str | None, b: str) -> bool:
    """Equal but for case and a trailing slash (which still means a redirect Stripe does not follow)."""
    return (a or "").strip().rstrip("/").lower() == b.strip().rstrip("/").lower()


def endpoint_problems(
    endpoint: dict[str, Any], want_url: str, handled_events: Sequence[str], mode: str
) -> list[str]:
    """What is wrong with one endpoint for the app, as phrases ('is disabled', …); [] when it serves it."""
    if endpoint.get("url") != want_url:
        if _same_url(endpoint.get("url"), want_url):
            return ["has a URL that differs from the app's route by case or a trailing slash (a redirect)"]
        return []  # another application's endpoint: not ours to judge
    problems = []
    if endpoint.get("status") != "enabled":
        problems.append(f"is {endpoint.get('status')}")
    subscribed = set(endpoint.get("enabled_events") or [])
    missing = [e for e in handled_events if e not in subscribed] if "*" not in subscribed else []
    if missing:
        problems.append("is not subscribed to " + ", ".join(missing))
    ep_mode = "live" if endpoint.get("livemode") else "test"
    if mode in ("test", "live") and endpoint.get("livemode") is not None and ep_mode != mode:
        problems.append(f"is a {ep_mode}-mode endpoint for a {mode}-mode key (test vs live mismatch)")
    return problems


@check("payments.webhook-endpoints", hint=ENDPOINTS_HINT)
def check_endpoints(
    stripe_api_base: str, stripe_key_env: str, app_url: str, handled_events: Sequence[str]
) -> pd.DataFrame:
    """Dashboard > Webhooks through the API: an enabled endpoint at exactly the app's route, subscribed to
    every event type the app handles, of the key's mode. Evidence: every endpoint with its problems."""
    table = webhook_endpoints(client(stripe_api_base, stripe_key_env))
    mode = key_mode(secret(stripe_key_env))
    want = webhook_url(app_url)
    table["problems"] = [
        "; ".join(endpoint_problems(ep, want, handled_events, mode)) for ep in table.to_dict(orient="records")
    ]
    at_route = table[table["url"] == want]
    bad = table[table["problems"] != ""]
    if at_route.empty and bad.empty:
        urls = ", ".join(str(u) for u in table["url"]) or "none"
        return conclude(
            "fail",
            "No webhook endpoint points at the app's route",
            severity="P1",
            detail=f"expected {want}; endpoints: {urls}. Add one in Dashboard > Webhooks.",
            evidence=table,
        )
    if bad.empty:
        return conclude(
            "pass",
            "A webhook endpoint is enabled at the app's route with the events the app handles",
            detail=", ".join(at_route["id"]),
            evidence=table,
        )
    first = bad.iloc[0]
    title = (
        f"Webhook endpoint {first['id']} {first['problems']}"
        if len(bad) == 1
        else f"{len(bad)} webhook endpoints for the app's route have problems"
    )
    detail = "; ".join(f"{r.id} {r.problems}" for r in bad.itertuples())
    if at_route.empty:
        detail += f". No endpoint points at exactly {want}; Stripe does not follow redirects."
    return conclude("fail", title, severity="P1", detail=detail, evidence=table)


@check("payments.webhook-deliveries", hint=EVENTS_HINT)
def check_deliveries(stripe_api_base: str, stripe_key_env: str, window_hours: float = 24) -> pd.DataFrame:
    """Dashboard > Events through the API: events of the window whose webhook delivery is still pending or
    failed every attempt (``delivery_success=false``). A payment event here is an order the app never heard
    about. Evidence (and return value, for the resend): those events."""
    since = int(time.time() - window_hours * 3600)
    failed = events(client(stripe_api_base, stripe_key_env), since, delivery_success=False)
    is_payment = failed["type"].isin(PAYMENT_EVENTS)
    payment, other = failed[is_payment], failed[~is_payment]
    window = f"the last {window_hours:g} h"
    if not payment.empty:
        detail = f"pending or failed every attempt in {window}: " + ", ".join(payment["id"].head(20))
        if not other.empty:
            detail += f"; also {len(other)} other events undelivered"
        return conclude(
            "fail",
            f"{len(payment)} payment events were not delivered to the app",
            severity="P1",
            detail=detail,
            evidence=failed,
        )
    if not other.empty:
        return conclude(
            "warn",
            f"{len(other)} events (no payment events) were not delivered to the app",
            severity="P2",
            detail=", ".join(f"{r.id} ({r.type})" for r in other.head(20).itertuples()),
            evidence=failed,
        )
    return conclude("pass", f"No event of {window} is waiting on a webhook delivery", evidence=failed)


def decline_counts(failed_payments: pd.DataFrame) -> pd.DataFrame:
    """payment_intent.payment_failed events counted by decline code, most frequent first."""
    import pandas as pd

    if failed_payments.empty:
        return pd.DataFrame(columns=["decline_code", "payments"])
    codes = failed_payments["decline_code"].fillna("unknown")
    return codes.value_counts().rename_axis("decline_code").reset_index(name="payments")


def decline_chart(counts: pd.DataFrame, window_hours: float) -> Figure:
    """A horizontal bar chart of failed payments by decline code."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(6, 2.6))
    if counts.empty:
        ax.text(0.5, 0.5, "no failed payments", ha="center", va="center", transform=ax.transAxes)
    else:
        ax.barh(counts["decline_code"][::-1], counts["payments"][::-1], color="#c0392b")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("failed payments")
    ax.set_title(f"Payment failures by decline code, last {window_hours:g} h")
    fig.tight_layout()
    plt.close(fig)  # shown once, as the cell's result
    return fig


@check("payments.declines", essential=False, hint=EVENTS_HINT)
def check_declines(stripe_api_base: str, stripe_key_env: str, window_hours: float = 24) -> Figure:
    """Solution "Payment intent fails" (insufficient funds, card declined, 3D Secure required): the window's
    payment failures by decline code, as a bar chart; the counts are in the detail."""
    since = int(time.time() - window_hours * 3600)
    failed = events(client(stripe_api_base, stripe_key_env), since, types=["payment_intent.payment_failed"])
    counts = decline_counts(failed)
    detail = ", ".join(f"{r.decline_code}: {r.payments}" for r in counts.itertuples()) or "none"
    if "authentication_required" in set(counts["decline_code"]):
        # 3D Secure was asked for: the checkout must confirm the PaymentIntent client-side to pass it.
        detail += "; authentication_required means 3D Secure: the checkout must confirm client-side"
    # Declines are the customers' banks answering: evidence of the window, not an outage.
    return conclude(
        "pass",
        f"{int(counts['payments'].sum())} failed payments in the last {window_hours:g} h",
        detail=detail,
        evidence=decline_chart(counts, window_hours),
    )
