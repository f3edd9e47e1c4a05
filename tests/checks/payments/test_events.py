"""opsnb.checks.payments.events: the Stripe side through the official SDK against a Stripe-shaped API on
127.0.0.1: webhook endpoints, undelivered events, declines; an unreachable API or a refused key is inconclusive."""

from __future__ import annotations

import pandas as pd
import pytest
from checks.payments.conftest import KEY, KEY_ENV, conclusion, payment_event
from matplotlib.figure import Figure

from opsnb.checks.payments import events
from opsnb.checks.payments.keys import client

# stripe's HTTPXClient posts form bodies with httpx's deprecated data=bytes; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")

APP = "https://shop.example.com"
HANDLED = ["payment_intent.succeeded", "payment_intent.payment_failed"]
GOOD = {
    "id": "we_1",
    "object": "webhook_endpoint",
    "url": APP + "/api/webhooks/stripe",
    "status": "enabled",
    "livemode": False,
    "enabled_events": [*HANDLED, "charge.refunded"],
    "api_version": "2024-06-20",
}


def test_events_pages_and_filters(fake_stripe):
    fake_stripe.events = [
        payment_event(
            i,
            "payment_intent.payment_failed" if i % 2 else "payment_intent.succeeded",
            "insufficient_funds" if i % 2 else None,
        )
        for i in range(150)
    ]
    api = client(fake_stripe.url, KEY_ENV)
    df = events.events(
        api, since=1_700_000_000, until=1_700_009_999, delivery_success=False, types=["a", "b"]
    )
    assert df.empty  # the fake filters by type: none is "a" or "b"
    df = events.events(api, since=1_700_000_000, until=1_700_009_999, delivery_success=False)
    assert len(df) == 150  # two pages through auto-paging
    assert df.loc[1, "decline_code"] == "insufficient_funds" and df.loc[0, "order_id"] == "ord_0"
    first = fake_stripe.requests[0][2]
    assert first["created[gte]"] == ["1700000000"] and first["created[lte]"] == ["1700009999"]
    assert first["delivery_success"] == ["false"] and first["limit"] == ["100"]
    assert first["types[0]"] == ["a"] and first["types[1]"] == ["b"]
    assert fake_stripe.requests[2][2]["starting_after"] == ["evt_099"]
    assert len(events.events(api, since=0, limit=5)) == 5


# --------------------------------------------------------------------------- Investigation 4: endpoints


def endpoints_check(fake_stripe, endpoints, app_url=APP):
    fake_stripe.endpoints = endpoints
    table = events.check_endpoints(fake_stripe.url, KEY_ENV, app_url, HANDLED)
    return table, conclusion("payments.webhook-endpoints")


def test_an_enabled_subscribed_endpoint_at_the_route_passes(fake_stripe):
    table, found = endpoints_check(fake_stripe, [GOOD], APP + "/")
    assert found.status == "pass" and found.detail == "we_1"
    assert list(table["problems"]) == [""]


def test_a_wildcard_subscription_counts(fake_stripe):
    _, found = endpoints_check(fake_stripe, [{**GOOD, "enabled_events": ["*"]}])
    assert found.status == "pass"


def test_a_trailing_slash_is_a_redirect_stripe_does_not_follow(fake_stripe):
    table, found = endpoints_check(fake_stripe, [{**GOOD, "url": GOOD["url"] + "/"}])
    assert (found.status, found.severity) == ("fail", "P1")
    assert (
        "differs from the app's route" in found.title and "Stripe does not follow redirects" in found.detail
    )


def test_no_endpoint_at_the_route(fake_stripe):
    _, found = endpoints_check(fake_stripe, [{**GOOD, "url": "https://old.example.com/hook"}])
    assert (found.status, found.title) == ("fail", "No webhook endpoint points at the app's route")
    assert "old.example.com" in found.detail
    _, found = endpoints_check(fake_stripe, [])
    assert "endpoints: none" in found.detail


def test_several_problems_of_one_endpoint_are_one_conclusion(fake_stripe):
    bad = {**GOOD, "status": "disabled", "enabled_events": ["charge.refunded"], "livemode": True}
    other_app = {**GOOD, "id": "we_2", "url": "https://blog.example.com/hook", "status": "disabled"}
    table, found = endpoints_check(fake_stripe, [bad, other_app])
    assert (found.status, found.severity) == ("fail", "P1")
    assert found.title.startswith("Webhook endpoint we_1 is disabled")
    for words in (
        "not subscribed to payment_intent.succeeded, payment_intent.payment_failed",
        "test vs live mismatch",
    ):
        assert words in found.title
    assert list(table["problems"])[1] == ""  # another application's endpoint is not judged


# --------------------------------------------------------------------------- Investigation 1: deliveries


def test_undelivered_payment_events_fail(fake_stripe):
    fake_stripe.events = [
        payment_event(1, "payment_intent.succeeded"),
        payment_event(2, "checkout.session.completed"),
        payment_event(3, "customer.updated"),
    ]
    failed = events.check_deliveries(fake_stripe.url, KEY_ENV, 24)
    found = conclusion("payments.webhook-deliveries")
    assert (found.status, found.severity) == ("fail", "P1")
    assert found.title == "2 payment events were not delivered to the app"
    assert "evt_001, evt_002" in found.detail and "also 1 other events" in found.detail
    assert list(failed["id"]) == ["evt_001", "evt_002", "evt_003"]
    assert fake_stripe.requests[0][2]["delivery_success"] == ["false"]


def test_undelivered_other_events_warn_and_none_pass(fake_stripe):
    fake_stripe.events = [payment_event(3, "customer.updated")]
    events.check_deliveries(fake_stripe.url, KEY_ENV, 24)
    found = conclusion("payments.webhook-deliveries")
    assert (found.status, found.severity) == ("warn", "P2") and "evt_003 (customer.updated)" in found.detail
    fake_stripe.events = []
    assert events.check_deliveries(fake_stripe.url, KEY_ENV, 6).empty
    found = conclusion("payments.webhook-deliveries")
    assert (found.status, found.title) == (
        "pass",
        "No event of the last 6 h is waiting on a webhook delivery",
    )


# --------------------------------------------------------------------------- payment intent fails: declines


def test_declines_are_counted_by_code_and_charted(fake_stripe):
    fake_stripe.events = [
        payment_event(1, "payment_intent.payment_failed", "insufficient_funds"),
        payment_event(2, "payment_intent.payment_failed", "insufficient_funds"),
        payment_event(3, "payment_intent.payment_failed", "authentication_required"),
        payment_event(4, "payment_intent.succeeded"),
    ]
    figure = events.check_declines(fake_stripe.url, KEY_ENV, 24)
    assert isinstance(figure, Figure)
    found = conclusion("payments.declines")
    assert (found.status, found.title) == ("pass", "3 failed payments in the last 24 h")
    assert (
        found.detail.startswith("insufficient_funds: 2, authentication_required: 1")
        and "3D Secure" in found.detail
    )
    assert not found.essential
    assert fake_stripe.requests[0][2]["types[0]"] == ["payment_intent.payment_failed"]


def test_decline_counts():
    df = pd.DataFrame({"decline_code": ["insufficient_funds", None, "insufficient_funds", "generic_decline"]})
    assert events.decline_counts(df).to_dict(orient="records") == [
        {"decline_code": "insufficient_funds", "payments": 2},
        {"decline_code": "unknown", "payments": 1},
        {"decline_code": "generic_decline", "payments": 1},
    ]
    assert list(events.decline_counts(pd.DataFrame(columns=["decline_code"])).columns) == [
        "decline_code",
        "payments",
    ]


# --------------------------------------------------------------------------- could not look

STRIPE_CHECKS = {
    "payments.webhook-endpoints": lambda base: events.check_endpoints(base, KEY_ENV, APP, HANDLED),
    "payments.webhook-deliveries": lambda base: events.check_deliveries(base, KEY_ENV, 24),
    "payments.declines": lambda base: events.check_declines(base, KEY_ENV, 24),
}


@pytest.mark.parametrize("check", STRIPE_CHECKS)
def test_an_unreachable_stripe_api_is_inconclusive(dead_url, check):
    assert STRIPE_CHECKS[check](dead_url) is None
    found = conclusion(check)
    assert found.status == "inconclusive" and found.detail.startswith("APIConnectionError")
    assert "stripe_api_base" in found.detail  # the hint


@pytest.mark.parametrize("check", STRIPE_CHECKS)
def test_a_refused_key_is_inconclusive_and_never_shown(fake_stripe, monkeypatch, check):
    wrong = "sk_test_wrongkey_0123456789abcdef"
    monkeypatch.setenv(KEY_ENV, wrong)
    assert STRIPE_CHECKS[check](fake_stripe.url) is None
    found = conclusion(check)
    assert found.status == "inconclusive" and found.detail.startswith("AuthenticationError")
    assert wrong not in found.detail and KEY not in found.detail
