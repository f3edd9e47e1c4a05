"""opsnb.checks.payments.route: the unsigned POST to the app's webhook route, judged by its status and its Date
header, against real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import email.utils

import pytest
from checks.payments.conftest import conclusion

from opsnb.checks.http import Probe
from opsnb.checks.payments import route


def test_a_verifying_app_rejects_the_unsigned_event_and_its_clock_is_in_step(shop_app):
    answer = route.post_unsigned(shop_app())
    table = route.check_route(answer)
    assert table.loc[0, "status"] == 400 and table.loc[0, "url"].endswith("/api/webhooks/stripe")
    found = conclusion("payments.webhook-route")
    assert (found.status, found.title) == (
        "pass",
        "The webhook route rejects an unsigned event (400, signature error)",
    )
    route.check_clock(answer)
    clock = conclusion("payments.clock-skew")
    assert clock.status == "pass" and abs(answer.clock_skew_s) < 3
    assert not clock.essential


@pytest.mark.parametrize(
    "status,body,outcome,word",
    [
        (400, "Bad Request", ("pass", "info"), "(400)"),
        (200, '{"received": true}', ("fail", "P1"), "accepts an unsigned event"),
        (204, "", ("fail", "P1"), "accepts an unsigned event"),
        (308, "", ("fail", "P1"), "redirects"),
        (401, "", ("fail", "P1"), "refuses"),
        (404, "Not Found", ("fail", "P1"), "missing"),
        (405, "Method Not Allowed", ("fail", "P1"), "missing"),
        (500, "Internal Server Error", ("fail", "P1"), "crashes"),
        (418, "teapot", ("warn", "P2"), "HTTP 418"),
    ],
)
def test_route_answers_are_told_apart(shop_app, status, body, outcome, word):
    route.check_route(route.post_unsigned(shop_app(answer=(status, body))))
    found = conclusion("payments.webhook-route")
    assert (found.status, found.severity) == outcome
    assert word in found.title


def test_unreachable_app_is_inconclusive_for_route_and_clock(dead_url):
    answer = route.post_unsigned(dead_url)
    assert answer.probe.status is None
    assert route.check_route(answer) is None and route.check_clock(answer) is None
    for check in ("payments.webhook-route", "payments.clock-skew"):
        found = conclusion(check)
        assert found.status == "inconclusive" and "no answer from POST" in found.detail
    assert conclusion("payments.webhook-route").essential


def answer_with_skew(skew: float | None) -> route.RouteAnswer:
    probe = Probe("POST", "http://app/api/webhooks/stripe", 400, 1.0, True, body="Webhook Error: signature")
    return route.RouteAnswer(probe, skew)


@pytest.mark.parametrize(
    "skew,outcome,word",
    [
        (0.4, ("pass", "info"), "in step with"),
        (-0.4, ("pass", "info"), "in step with"),
        (299, ("pass", "info"), "299 s ahead of"),
        (-120, ("pass", "info"), "120 s behind"),
        (301, ("fail", "P1"), "look expired"),
        (-301, ("warn", "P3"), "behind"),
    ],
)
def test_clock_skew_against_the_tolerance(skew, outcome, word):
    route.check_clock(answer_with_skew(skew))
    found = conclusion("payments.clock-skew")
    assert (found.status, found.severity) == outcome
    assert word in found.title and "-0 s" not in found.title


def test_an_answer_without_a_date_is_inconclusive():
    route.check_clock(answer_with_skew(None))
    found = conclusion("payments.clock-skew")
    assert found.status == "inconclusive" and "no Date header" in found.detail


def test_clock_skew_from_a_date_header():
    assert route.clock_skew_s(email.utils.formatdate(1_700_000_600, usegmt=True), now=1_700_000_000) == 600
    assert route.clock_skew_s(None) is None
    assert route.clock_skew_s("not a date") is None
