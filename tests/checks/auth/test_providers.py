"""opsnb.checks.auth.providers: the redirect URIs the runbook says to authorize, and the providers and their
callbackUrl read from a real /api/auth/providers (the test app of auth_app.py)."""

from __future__ import annotations

from checks.auth.auth_app import UNREACHABLE

from opsnb.checks import findings
from opsnb.checks.auth import probes, providers

APP = "https://shop.example.com"


def only() -> findings.Conclusion:
    [conclusion] = findings.all_conclusions()
    return conclusion


def test_expected_redirect_uris() -> None:
    assert providers.expected_redirect_uris(APP) == [
        "https://shop.example.com/api/auth/callback/google",
        "https://www.shop.example.com/api/auth/callback/google",
    ]
    assert providers.expected_redirect_uris("https://www.shop.example.com/", "github") == [
        "https://shop.example.com/api/auth/callback/github",
        "https://www.shop.example.com/api/auth/callback/github",
    ]
    assert providers.expected_redirect_uris("http://127.0.0.1:8123") == [
        "http://127.0.0.1:8123/api/auth/callback/google"
    ]
    assert providers.expected_redirect_uris("http://[::1]:8123") == [
        "http://[::1]:8123/api/auth/callback/google"
    ]


def test_redirect_uri_verdicts() -> None:
    def entry(base: str, pid: str) -> dict:
        return {"type": "oauth", "callbackUrl": f"{base}/api/auth/callback/{pid}"}

    good = {"google": entry(APP, "google"), "github": entry("https://www.shop.example.com", "github")}
    assert all(v.passed for v in providers.redirect_uri_verdicts(good, APP))
    [bad] = providers.redirect_uri_verdicts({"google": entry("http://localhost:3000", "google")}, APP)
    assert (bad.passed, bad.severity) == (False, "P1") and "redirect_uri_mismatch" in bad.detail
    [missing] = providers.redirect_uri_verdicts({"email": {"type": "email"}}, APP)
    assert (missing.passed, missing.severity, missing.finding) == (False, "P2", "has no callbackUrl")


def test_providers_and_their_callbacks_pass_on_a_right_app(app) -> None:
    _, url = app
    answers = probes.ask(url)
    table = providers.check_providers(answers)
    assert (only().check, only().status, only().title) == (
        "auth.providers",
        "pass",
        "The app offers the google provider",
    )
    assert list(table["provider"]) == ["github", "google"]
    assert table.loc[1, "expected (authorize these)"] == f"{url}/api/auth/callback/google"
    findings.clear()
    table = providers.check_redirect_uris(answers)
    assert (only().check, only().status) == ("auth.redirect-uris", "pass")
    assert only().title == "Every provider calls back to this site's redirect URIs"
    assert list(table["verdict"]) == ["PASS", "PASS"]


def test_callbacks_to_another_host_are_redirect_uri_mismatch(app) -> None:
    auth_app, url = app
    auth_app.callback_base = "https://auth.wrong.example"
    table = providers.check_redirect_uris(probes.ask(url))
    found = only()
    assert (found.status, found.severity) == ("fail", "P1")
    assert found.title == "github and google call back outside this site's redirect URIs"
    assert "redirect_uri_mismatch" in found.detail and f"{url}/api/auth/callback/google" in found.detail
    assert list(table["verdict"]) == ["P1", "P1"]


def test_a_missing_required_provider_fails(app) -> None:
    auth_app, url = app
    auth_app.providers = ("github",)
    providers.check_providers(probes.ask(url), required=["google"])
    assert (only().status, only().severity) == ("fail", "P1")
    assert only().title == "The app offers no google provider (it offers: github)"


def test_an_answer_that_is_no_provider_list(app) -> None:
    auth_app, url = app
    auth_app.providers = "<html>404</html>"
    answers = probes.ask(url)
    providers.check_providers(answers)
    assert (only().status, only().title) == ("fail", "/api/auth/providers answers no provider list")
    findings.clear()
    providers.check_redirect_uris(answers)
    assert only().status == "inconclusive" and "lists no provider" in only().detail


def test_an_unreachable_app_is_inconclusive() -> None:
    answers = probes.ask(UNREACHABLE, timeout_s=1)
    providers.check_providers(answers)
    providers.check_redirect_uris(answers)
    assert [(c.check, c.status) for c in findings.all_conclusions()] == [
        ("auth.providers", "inconclusive"),
        ("auth.redirect-uris", "inconclusive"),
    ]
    assert all("could not reach" in c.detail for c in findings.all_conclusions())
