"""opsnb.checks.auth.config: the NEXTAUTH_URL and secret rules on crafted values, and the two checks on
variables set for the test (their values never appear in a conclusion)."""

from __future__ import annotations

import json
import os

import pytest

from opsnb.checks import findings
from opsnb.checks.auth.config import (
    check_nextauth_secret,
    check_nextauth_url,
    secret_rules,
    url_rules,
)

APP = "https://shop.example.com"
URL_VAR, SECRET_VAR = "OPSNB_TEST_NEXTAUTH_URL", "OPSNB_TEST_NEXTAUTH_SECRET"


def broken(verdicts) -> dict[str, str]:
    """{rule: severity} of the rules that do not hold."""
    return {v.rule: v.severity for v in verdicts if not v.passed}


def only() -> findings.Conclusion:
    [conclusion] = findings.all_conclusions()
    return conclusion


# -- NEXTAUTH_URL / AUTH_URL rules ------------------------------------------------------------------------


def test_url_equal_to_public_url_passes_every_rule() -> None:
    verdicts = url_rules(APP, APP, production=True)
    assert broken(verdicts) == {}
    assert {v.rule for v in verdicts} == {
        "is an absolute http(s) URL",
        "equals the public URL",
        "uses https in production",
        "is not localhost in production",
        "has no path",
        "has no trailing slash",
    }


def test_url_not_absolute() -> None:
    assert broken(url_rules("shop.example.com", APP, True)) == {"is an absolute http(s) URL": "P1"}


def test_localhost_in_production_names_the_mismatch_without_the_value() -> None:
    verdicts = url_rules("http://localhost:3000", APP, production=True)
    assert broken(verdicts) == {
        "equals the public URL": "P1",
        "uses https in production": "P1",
        "is not localhost in production": "P1",
    }
    mismatch = next(v for v in verdicts if v.rule == "equals the public URL")
    assert mismatch.finding == "differs from the public URL"
    assert (
        "scheme is http" in mismatch.detail and "host differs (it is a localhost address)" in mismatch.detail
    )
    assert "port differs" in mismatch.detail and APP in mismatch.detail
    assert all("3000" not in v.detail for v in verdicts)  # the value itself is never shown


def test_localhost_allowed_outside_production_when_it_is_the_public_url() -> None:
    local = "http://127.0.0.1:8123"
    assert broken(url_rules(local, local, production=False)) == {}
    assert broken(url_rules("http://127.0.0.1:3000", local, production=False)) == {
        "equals the public URL": "P1"
    }


def test_http_in_production_is_p1() -> None:
    assert broken(url_rules("http://shop.example.com", APP, True)) == {
        "equals the public URL": "P1",
        "uses https in production": "P1",
    }


def test_www_host_differs_from_bare_domain() -> None:
    verdicts = url_rules("https://www.shop.example.com", APP, True)
    assert broken(verdicts) == {"equals the public URL": "P1"}
    assert "host differs" in next(v.detail for v in verdicts if not v.passed)


def test_path_and_trailing_slash_are_separate_rules() -> None:
    assert broken(url_rules(APP + "/", APP, True)) == {"has no trailing slash": "P3"}
    assert broken(url_rules(APP + "/api/auth", APP, True)) == {"has no path": "P2"}
    assert broken(url_rules(APP + "/shop/", APP, True)) == {
        "has no path": "P2",
        "has no trailing slash": "P3",
    }
    assert broken(url_rules(APP + "?x=1", APP, True)) == {"has no path": "P2"}


def test_default_port_and_host_case_are_the_same_origin() -> None:
    assert broken(url_rules("https://shop.example.com:443", APP, True)) == {}
    assert broken(url_rules("https://SHOP.example.com", APP, True)) == {}


# -- secret rules -----------------------------------------------------------------------------------------


def test_secret_rules() -> None:
    assert broken(secret_rules("short-secret")) == {"is at least 32 characters long": "P2"}
    assert broken(secret_rules("a" * 31)) == {"is at least 32 characters long": "P2"}
    assert broken(secret_rules("a" * 32)) == {}
    assert broken(secret_rules(" " + "a" * 40)) == {"has no surrounding whitespace": "P2"}
    verdicts = secret_rules("s3cr3t-value-that-is-long-enough-xyz")
    assert all("s3cr3t" not in v.detail + v.finding for v in verdicts)


def test_secret_rules_accept_a_resolved_secret(monkeypatch) -> None:
    from opsnb.checks.secrets import secret

    monkeypatch.setenv(SECRET_VAR, "b" * 40)
    assert broken(secret_rules(secret(SECRET_VAR))) == {}


# -- the checks -------------------------------------------------------------------------------------------


def test_wrong_nextauth_url_fails_titled_by_what_is_true(monkeypatch) -> None:
    monkeypatch.setenv(URL_VAR, "http://localhost:3000/")
    evidence = check_nextauth_url(APP, True, URL_VAR)
    found = only()
    assert (found.check, found.status, found.severity) == ("auth.nextauth-url", "fail", "P1")
    assert found.title == (
        f"{URL_VAR} differs from the public URL, uses http in production, points at localhost in production "
        "and ends with a slash"
    )
    assert set(evidence["verdict"]) == {"PASS", "P1", "P3"}
    text = evidence.to_string() + json.dumps(found.as_dict())
    assert "localhost:3000" not in text


def test_right_nextauth_url_passes(monkeypatch) -> None:
    monkeypatch.setenv(URL_VAR, APP)
    check_nextauth_url(APP, True, URL_VAR)
    found = only()
    assert (found.status, found.title) == ("pass", f"{URL_VAR} equals the public URL")
    assert found.detail.startswith("production rules: ") and "uses https" in found.detail


def test_unset_nextauth_url_is_inconclusive_not_failed(monkeypatch) -> None:
    monkeypatch.delenv(URL_VAR, raising=False)
    monkeypatch.delenv("OPSNB_ENV_FILE", raising=False)
    assert check_nextauth_url(APP, True, URL_VAR) is None
    found = only()
    assert (found.status, found.essential) == ("inconclusive", True)
    assert f"${URL_VAR} is not set in this environment" in found.detail and "vercel env pull" in found.detail
    assert findings.verdict() == "WARN"


def test_v5_without_auth_url_trusts_the_host(monkeypatch) -> None:
    for name in [n for n in os.environ if n.startswith(("NEXTAUTH_", "AUTH_"))]:
        monkeypatch.delenv(name)
    monkeypatch.delenv("OPSNB_ENV_FILE", raising=False)
    monkeypatch.setenv("AUTH_SECRET", "c" * 40)
    monkeypatch.setenv("AUTH_TRUST_HOST", "true")
    check_nextauth_url(APP, True, "AUTH_URL")
    assert (only().status, only().title) == (
        "pass",
        "AUTH_URL is unset and Auth.js v5 trusts the request host",
    )


def test_short_secret_warns_without_showing_it(monkeypatch) -> None:
    monkeypatch.setenv(SECRET_VAR, "tiny-secret-value")
    evidence = check_nextauth_secret(SECRET_VAR)
    found = only()
    assert (found.check, found.status, found.severity) == ("auth.nextauth-secret", "warn", "P2")
    assert found.title == f"{SECRET_VAR} is shorter than 32 characters"
    assert "tiny-secret-value" not in evidence.to_string() + json.dumps(found.as_dict())


def test_good_secret_passes(monkeypatch) -> None:
    monkeypatch.setenv(SECRET_VAR, "d" * 44)
    check_nextauth_secret(SECRET_VAR)
    assert (only().status, only().title) == ("pass", f"{SECRET_VAR} is set and at least 32 characters long")


@pytest.mark.parametrize("name", ["", "OPSNB_TEST_UNSET_SECRET"])
def test_missing_secret_is_inconclusive(monkeypatch, name: str) -> None:
    monkeypatch.delenv("OPSNB_TEST_UNSET_SECRET", raising=False)
    monkeypatch.delenv("OPSNB_ENV_FILE", raising=False)
    check_nextauth_secret(name)
    found = only()
    assert (found.status, found.essential) == ("inconclusive", True)
    assert "nextauth_secret_env" in found.detail
