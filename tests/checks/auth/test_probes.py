"""opsnb.checks.auth.probes: the /api/auth endpoints asked over real HTTP (the test app of auth_app.py), and
the checks judging their answers: endpoints up and fast, the signed-out session's shape, the csrf token."""

from __future__ import annotations

import pytest
from checks.auth.auth_app import UNREACHABLE

from opsnb.checks import findings
from opsnb.checks.auth import probes


def only() -> findings.Conclusion:
    [conclusion] = findings.all_conclusions()
    return conclusion


def test_ask_keeps_status_latency_bodies_and_cookies(app) -> None:
    _, url = app
    answers = probes.ask(url + "/")
    assert answers.app_url == url and not answers.https
    assert list(answers.signed_out) == ["providers", "csrf", "session"]
    table = answers.table()
    assert list(table["endpoint"]) == ["/api/auth/providers", "/api/auth/csrf", "/api/auth/session"]
    assert list(table["status"]) == [200, 200, 200] and table["latency_ms"].gt(0).all()
    assert answers.signed_out["session"].json() is None  # v5's signed-out answer: JSON null
    assert [c.split("=")[0] for c in answers.set_cookies()] == ["authjs.csrf-token", "authjs.callback-url"]
    assert answers.version()[0] == "v5" and answers.unreachable() == ""
    assert answers.with_token is None  # no session_token_env given


def test_a_long_provider_list_is_read_whole(app) -> None:
    auth_app, url = app
    auth_app.providers = tuple(f"provider{i}" for i in range(40))  # several KB, beyond a probe's short body
    assert len(probes.ask(url).signed_out["providers"].json()) == 40


def test_endpoints_that_answer_pass(app) -> None:
    _, url = app
    evidence = probes.check_endpoints(probes.ask(url))
    assert (only().check, only().status, only().title) == (
        "auth.endpoints",
        "pass",
        "The /api/auth endpoints answer HTTP 200",
    )
    assert len(evidence) == 3


def test_a_failing_endpoint_is_p1_and_named(app) -> None:
    auth_app, url = app
    auth_app.statuses = {"session": 500, "csrf": 404}
    probes.check_endpoints(probes.ask(url))
    assert (only().status, only().severity) == ("fail", "P1")
    assert only().title == "/api/auth/csrf answers HTTP 404; /api/auth/session answers HTTP 500"


def test_slow_endpoints_are_p3(app) -> None:
    auth_app, url = app
    auth_app.delay_s = 0.05
    probes.check_endpoints(probes.ask(url), slow_ms=20)
    assert (only().status, only().severity) == ("warn", "P3")
    assert "/api/auth/providers is slow (" in only().title


def test_an_unreachable_app_is_inconclusive_not_a_rejection() -> None:
    answers = probes.ask(UNREACHABLE, timeout_s=1)
    assert answers.unreachable().startswith(f"could not reach {UNREACHABLE}/api/auth/providers: ")
    for check in (probes.check_endpoints, probes.check_signed_out_session, probes.check_csrf_token):
        findings.clear()
        assert check(answers) is None
        found = only()
        assert found.status == "inconclusive" and "could not reach" in found.detail
        assert "HTTP None" not in found.detail
    findings.clear()
    probes.check_endpoints(answers)
    assert findings.verdict() == "WARN"  # an essential blind spot


@pytest.mark.parametrize(
    ("body", "cookies", "status", "title"),
    [
        (None, None, "pass", "Signed out, /api/auth/session answers null as NextAuth v5 does"),
        (
            {},
            ["next-auth.csrf-token=a; Path=/"],
            "pass",
            "Signed out, /api/auth/session answers {} as NextAuth v4 does",
        ),
        ({}, None, "warn", "Signed out, /api/auth/session answers {}, not null (v5)"),
        (
            {"user": {}, "expires": "x"},
            None,
            "warn",
            "Signed out, /api/auth/session answers an object with keys expires, user, not null (v5)",
        ),
        (
            "<html>sign in</html>",
            None,
            "warn",
            "Signed out, /api/auth/session answers something that is not JSON, not null (v5)",
        ),
    ],
)
def test_signed_out_session_shape(app, body, cookies, status: str, title: str) -> None:
    auth_app, url = app
    auth_app.signed_out = body
    if cookies is not None:
        auth_app.csrf_cookies = cookies
    probes.check_signed_out_session(probes.ask(url))
    assert (only().check, only().status, only().title) == ("auth.signed-out-session", status, title)
    assert only().essential is False


def test_csrf_token(app) -> None:
    auth_app, url = app
    probes.check_csrf_token(probes.ask(url))
    assert (only().status, only().title) == ("pass", "/api/auth/csrf hands out a csrfToken")
    findings.clear()
    auth_app.csrf_body = {}
    probes.check_csrf_token(probes.ask(url))
    assert (only().status, only().severity, only().title) == (
        "fail",
        "P1",
        "/api/auth/csrf hands out no csrfToken",
    )
    findings.clear()
    auth_app.statuses = {"csrf": 500}  # judged by auth.endpoints; here there is nothing to read
    probes.check_csrf_token(probes.ask(url))
    assert only().status == "inconclusive" and "HTTP 500 (see auth.endpoints)" in only().detail
