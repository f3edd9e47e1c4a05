"""opsnb.checks.payments.resend: the gated resend (held back until the app accepts a correctly signed event,
planned only without --allow-writes) against a Stripe-shaped API, and the re-check of the stuck orders on a
real PostgreSQL."""

from __future__ import annotations

import threading

import pandas as pd
import pytest
from checks.payments.conftest import KEY_ENV, SECRET_ENV, conclusion

from opsnb.checks import findings
from opsnb.checks.payments import resend, signing
from opsnb.checks.payments.keys import client

# stripe's HTTPXClient posts form bodies with httpx's deprecated data=bytes; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")

CHECK = "payments.resend-recheck"
APP = "http://app.example.com"
FAILED = pd.DataFrame({"id": ["evt_000", "evt_x"], "type": ["payment_intent.succeeded", "customer.updated"]})
ENDPOINTS = pd.DataFrame(
    [{"id": "we_123", "url": APP + "/api/webhooks/stripe"}, {"id": "we_9", "url": "https://x"}]
)


def posts(fake_stripe) -> list[tuple[str, dict]]:
    return [(path, params) for method, path, params in fake_stripe.requests if method == "POST"]


@pytest.fixture
def headless(monkeypatch):
    """A headless run; ``allow(True)`` gives it --allow-writes."""
    monkeypatch.setenv("OPSNB_HEADLESS", "1")

    def allow(writes: bool) -> None:
        monkeypatch.setenv("OPSNB_ALLOW_WRITES", "1" if writes else "0")

    allow(False)
    return allow


def test_retry_posts_to_the_endpoint_and_reports_each_event(fake_stripe):
    fake_stripe.retryable = {"evt_000"}
    table = resend.resend(client(fake_stripe.url, KEY_ENV), ["evt_000", "evt_gone"], "we_123")
    assert table.to_dict(orient="records")[0] == {"event": "evt_000", "resent": True, "error": ""}
    assert not table.loc[1, "resent"] and "No such event" in table.loc[1, "error"]
    assert posts(fake_stripe)[0] == ("/v1/events/evt_000/retry", {"webhook_endpoint": ["we_123"]})


def test_resend_is_blocked_until_the_signature_check_passes(fake_stripe, shop_app, headless):
    headless(True)
    fake_stripe.retryable = {"evt_000"}
    signing.check_signature(shop_app(app_secret="whsec_rotated_old_value"), SECRET_ENV)
    entry = resend.resend_failed_events(fake_stripe.url, KEY_ENV, FAILED, ENDPOINTS, APP)
    assert entry["status"] == "blocked" and "payments.webhook-signature" in entry["result"]
    assert posts(fake_stripe) == []

    signing.check_signature(shop_app(), SECRET_ENV)  # the secret fixed: the re-run replaces the conclusion
    entry = resend.resend_failed_events(fake_stripe.url, KEY_ENV, FAILED, ENDPOINTS, APP)
    assert (entry["status"], entry["result"]) == ("applied", "1/1 events resent")
    # only the payment event, only to the app's endpoint
    assert posts(fake_stripe) == [("/v1/events/evt_000/retry", {"webhook_endpoint": ["we_123"]})]


def test_resend_reports_events_stripe_refused(fake_stripe, headless):
    headless(True)
    findings.conclude(
        "pass",
        "The app accepts an event signed with the endpoint's secret",
        check_id="payments.webhook-signature",
    )
    failed = pd.DataFrame({"id": ["evt_000", "evt_gone"], "type": ["payment_intent.succeeded"] * 2})
    fake_stripe.retryable = {"evt_000"}
    entry = resend.resend_failed_events(fake_stripe.url, KEY_ENV, failed, None, APP)
    assert entry["status"] == "applied"
    assert entry["result"].startswith("1/2 events resent; not resent: evt_gone: InvalidRequestError")
    assert posts(fake_stripe)[0] == ("/v1/events/evt_000/retry", {})  # no endpoint known: every failing one


def test_resend_is_only_planned_without_allow_writes(fake_stripe, headless):
    findings.conclude(
        "pass",
        "The app accepts an event signed with the endpoint's secret",
        check_id="payments.webhook-signature",
    )
    entry = resend.resend_failed_events(fake_stripe.url, KEY_ENV, FAILED, ENDPOINTS, APP)
    assert entry["status"] == "planned" and "evt_000" in entry["plan"][0] and "evt_x" not in entry["plan"][0]
    assert posts(fake_stripe) == []


def test_nothing_to_resend(fake_stripe, headless):
    headless(True)
    assert resend.resend_failed_events(fake_stripe.url, KEY_ENV, None, ENDPOINTS, APP) is None
    assert resend.resend_failed_events(fake_stripe.url, KEY_ENV, FAILED.iloc[1:], ENDPOINTS, APP) is None
    assert fake_stripe.requests == []


# --------------------------------------------------------------------------- the re-check

STUCK = pd.DataFrame(
    {
        "order_id": ["ord_1", "ord_2", "ord_3"],
        "diagnosis": ["missed webhook", "missed webhook", "awaiting customer"],
    }
)
APPLIED = {"title": "Resend", "status": "applied", "result": "2/2 events resent"}


def test_recheck_waits_for_the_app_to_mark_the_orders_paid(orders_db):
    orders_db.reset(
        [("ord_1", "pending", "pi_1", 60), ("ord_2", "pending", "pi_2", 60), ("ord_3", "pending", "pi_3", 60)]
    )
    later = threading.Timer(0.6, orders_db.set_status, (["ord_1", "ord_2"], "paid"))
    later.start()
    try:
        table = resend.check_resent_orders(orders_db.env, STUCK, APPLIED, timeout_s=10, interval_s=0.1)
    finally:
        later.join()
    found = conclusion(CHECK)
    assert (found.status, found.title) == ("pass", "None of the 2 stuck orders is pending after the resend")
    assert table.to_dict(orient="records") == [
        {"order_id": "ord_1", "status": "paid"},
        {"order_id": "ord_2", "status": "paid"},
    ]


def test_recheck_fails_when_orders_stay_pending(orders_db):
    orders_db.reset([("ord_1", "paid", "pi_1", 60), ("ord_2", "pending", "pi_2", 60)])
    resend.check_resent_orders(orders_db.env, STUCK, APPLIED, timeout_s=0.3, interval_s=0.1)
    found = conclusion(CHECK)
    assert (found.status, found.severity) == ("fail", "P1")
    assert found.title == "1 of 2 stuck orders are still pending 0.3 s after the resend"
    assert found.detail.endswith("still pending: ord_2")


@pytest.mark.parametrize(
    "resent,why",
    [
        (None, "no payment event was resent"),
        ({"status": "blocked", "result": "fix the secret"}, "blocked: fix the secret"),
    ],
)
def test_recheck_without_an_applied_resend_is_inconclusive(orders_db, resent, why):
    resend.check_resent_orders(orders_db.env, STUCK, resent)
    found = conclusion(CHECK)
    assert (found.status, found.title) == (
        "inconclusive",
        "The resend was not applied: 2 stuck orders not re-checked",
    )
    assert found.detail.startswith(why) and not found.essential


def test_recheck_with_nothing_stuck_or_unknown_orders(orders_db):
    resend.check_resent_orders(orders_db.env, STUCK.iloc[2:], APPLIED)
    assert conclusion(CHECK).status == "pass"
    assert resend.check_resent_orders(orders_db.env, None, APPLIED) is None
    assert conclusion(CHECK).status == "inconclusive"
