"""opsnb.checks.auth.cookies: the runbook's cookie config on crafted Set-Cookie headers, then the two checks
on the headers a real app (the test app of auth_app.py) sends."""

from __future__ import annotations

import pytest
from checks.auth.auth_app import UNREACHABLE

from opsnb.checks import findings
from opsnb.checks.auth import cookies, probes

GOOD_HTTPS = {
    "session": "__Secure-next-auth.session-token=abc; Path=/; Expires=Wed, 01 Jan 2031 00:00:00 GMT; HttpOnly; "
    "Secure; SameSite=Lax",
    "csrf": "__Host-next-auth.csrf-token=t%7Ch; Path=/; HttpOnly; Secure; SameSite=Lax",
    "callback": "__Secure-next-auth.callback-url=https%3A%2F%2Fshop.example.com; Path=/; HttpOnly; Secure; SameSite=Lax",
}


def broken(header: str, https: bool = True) -> dict[str, str]:
    """{rule: severity} of the rules the cookie breaks."""
    return {
        v.rule: v.severity
        for v in cookies.cookie_rules(cookies.parse_set_cookie(header), https)
        if not v.passed
    }


def only() -> findings.Conclusion:
    [conclusion] = findings.all_conclusions()
    return conclusion


# -- parsing and naming ---------------------------------------------------------------------------------------


def test_parse_set_cookie() -> None:
    c = cookies.parse_set_cookie(
        "__Host-authjs.csrf-token=v=1; path=/; SECURE; httponly; samesite=Strict; Domain=x.com"
    )
    assert (c.name, c.secure, c.http_only, c.same_site, c.path, c.domain) == (
        "__Host-authjs.csrf-token",
        True,
        True,
        "strict",
        "/",
        "x.com",
    )
    assert c.value_bytes == 3


def test_a_later_header_replaces_an_earlier_one() -> None:
    [c] = cookies.parse_set_cookies(["a=1; Path=/api", "a=; Max-Age=0; Path=/"])
    assert (c.path, c.max_age, c.value_bytes) == ("/", "0", 0)


def test_cookie_roles_and_expected_names() -> None:
    assert cookies.cookie_role("__Secure-next-auth.session-token.1") == "session-token"
    assert cookies.cookie_role("authjs.pkce.code_verifier") == "pkce.code_verifier"
    assert cookies.cookie_role("theme") is None
    assert cookies.expected_cookie_name("session-token", "v4", True) == "__Secure-next-auth.session-token"
    assert cookies.expected_cookie_name("csrf-token", "v5", True) == "__Host-authjs.csrf-token"
    assert cookies.expected_cookie_name("session-token", "v5", False) == "authjs.session-token"


# -- the rules ------------------------------------------------------------------------------------------------


def test_runbook_cookie_config_passes_on_https() -> None:
    for header in GOOD_HTTPS.values():
        assert broken(header) == {}, header


def test_unrelated_cookie_is_ignored() -> None:
    assert cookies.cookie_rules(cookies.parse_set_cookie("theme=dark"), True) == []


def test_missing_secure_on_https() -> None:
    assert broken("next-auth.session-token=a; Path=/; HttpOnly; SameSite=Lax") == {
        "Secure on https": "P2",
        "__Secure- prefix on https": "P2",
    }


def test_secure_cookie_on_http_is_dropped_by_browsers() -> None:
    header = "next-auth.csrf-token=a; Path=/; HttpOnly; Secure; SameSite=Lax"
    assert broken(header, https=False) == {"no Secure on http": "P1"}
    assert broken(header.replace(" Secure;", ""), https=False) == {}


def test_prefix_on_http_is_rejected() -> None:
    got = broken("__Secure-next-auth.session-token=a; Path=/; HttpOnly; Secure; SameSite=Lax", https=False)
    assert got == {"no Secure on http": "P1", "no prefix on http": "P1"}


def test_missing_httponly() -> None:
    assert broken(GOOD_HTTPS["session"].replace(" HttpOnly;", "")) == {"HttpOnly": "P2"}
    assert broken(GOOD_HTTPS["callback"].replace(" HttpOnly;", "")) == {"HttpOnly": "P3"}


@pytest.mark.parametrize(
    ("same_site", "severity"), [("", "P3"), ("; SameSite=Strict", "P2"), ("; SameSite=None", "P3")]
)
def test_samesite_must_be_lax(same_site: str, severity: str) -> None:
    assert broken(GOOD_HTTPS["session"].replace("; SameSite=Lax", same_site)) == {"SameSite=Lax": severity}


def test_samesite_none_without_secure_is_rejected() -> None:
    assert broken("next-auth.session-token=a; Path=/; HttpOnly; SameSite=None", https=False) == {
        "SameSite=Lax": "P1"
    }


def test_path_must_be_root() -> None:
    assert broken(GOOD_HTTPS["session"].replace("Path=/;", "Path=/api/auth;")) == {"Path=/": "P1"}
    assert broken(GOOD_HTTPS["session"].replace(" Path=/;", "")) == {"Path=/": "P1"}
    assert broken(GOOD_HTTPS["callback"].replace("Path=/;", "Path=/api;")) == {"Path=/": "P2"}


def test_csrf_needs_host_prefix_and_its_constraints() -> None:
    assert broken(GOOD_HTTPS["csrf"].replace("__Host-", "")) == {"__Host- prefix on https": "P2"}
    assert broken(GOOD_HTTPS["csrf"] + "; Domain=shop.example.com") == {"__Host- cookie constraints": "P1"}
    assert broken(GOOD_HTTPS["csrf"].replace("Path=/;", "Path=/api;")) == {
        "Path=/": "P2",
        "__Host- cookie constraints": "P1",
    }


def test_secure_prefix_without_secure() -> None:
    assert broken(GOOD_HTTPS["session"].replace(" Secure;", "")) == {
        "Secure on https": "P2",
        "__Secure- cookie has Secure": "P1",
    }


def test_oversized_cookie() -> None:
    assert broken(GOOD_HTTPS["session"].replace("=abc;", "=" + "a" * 5000 + ";")) == {
        "at most 4096 bytes": "P2"
    }


# -- the checks on a real app ---------------------------------------------------------------------------------


def test_signed_out_cookies_that_follow_the_config_pass(app) -> None:
    _, url = app
    table = cookies.check_cookies(probes.ask(url))
    assert (only().check, only().status) == ("auth.cookies", "pass")
    assert (
        only().title
        == "The auth cookies follow the runbook's cookie config (authjs.csrf-token, authjs.callback-url)"
    )
    assert list(table["verdict"]) == ["PASS", "PASS"]


def test_https_cookies_on_an_http_site_fail(app) -> None:
    """An Auth.js v5 app that believes it is on https (AUTH_URL says so) while it is served over http."""
    auth_app, url = app
    auth_app.csrf_cookies = [
        "__Host-authjs.csrf-token=t%7Ch; Path=/; HttpOnly; Secure; SameSite=Lax",
        f"__Secure-authjs.callback-url={url}; Path=/; HttpOnly; Secure; SameSite=Lax",
    ]
    table = cookies.check_cookies(probes.ask(url))
    found = only()
    assert (found.status, found.severity) == ("fail", "P1")
    assert found.title == (
        "__Host-authjs.csrf-token is Secure on an http site and has the __Host- prefix on an http site; "
        "__Secure-authjs.callback-url is Secure on an http site and has the __Secure- prefix on an http site"
    )
    assert set(table["cookie"]) == {"__Host-authjs.csrf-token", "__Secure-authjs.callback-url"}
    assert table["verdict"].str.startswith("P1: ").all()


def test_missing_signed_out_cookies_are_named_by_version(app) -> None:
    auth_app, url = app
    auth_app.csrf_cookies = ["authjs.csrf-token=t; Path=/; HttpOnly; SameSite=Lax"]
    table = cookies.check_cookies(probes.ask(url))
    assert (only().status, only().severity) == ("warn", "P2")
    assert only().title == "authjs.callback-url is not set by a signed-out visit"
    assert list(table["cookie"]) == ["authjs.csrf-token", "authjs.callback-url"]


def test_session_cookie_needs_a_token_and_is_judged_when_re_set(app, monkeypatch) -> None:
    auth_app, url = app
    cookies.check_session_cookie(probes.ask(url))
    found = only()
    assert (found.check, found.status, found.essential) == ("auth.session-cookie", "inconclusive", False)
    assert "no session cookie was seen" in found.detail and "session_token_env" in found.detail
    assert findings.verdict() == "PASS"  # not essential: skipping the token is the operator's choice

    findings.clear()
    monkeypatch.setenv("OPSNB_TEST_SESSION_TOKEN", "opaque-session-id")
    auth_app.accepted = {"opaque-session-id": "jane@example.com"}
    auth_app.session_attributes = "Path=/api/auth; HttpOnly; SameSite=Lax"
    cookies.check_session_cookie(probes.ask(url, "OPSNB_TEST_SESSION_TOKEN"))
    found = only()
    assert (found.status, found.severity) == ("fail", "P1")
    assert found.title == "authjs.session-token has Path=/api/auth"


def test_unreachable_app_is_inconclusive() -> None:
    answers = probes.ask(UNREACHABLE, timeout_s=1)
    cookies.check_cookies(answers)
    assert only().status == "inconclusive" and "could not reach" in only().detail
