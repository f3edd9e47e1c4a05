"""opsnb.checks.payments.keys: the key's mode read from its prefix, the client configured per instance, and the
key-mode check against the mode the environment runs in."""

from __future__ import annotations

import pytest
import stripe
from checks.payments.conftest import KEY, KEY_ENV, conclusion

from opsnb.checks.payments import keys
from opsnb.checks.secrets import Secret, register

CHECK = "payments.key-mode"


@pytest.mark.parametrize(
    "key,mode",
    [
        ("sk_test_abc", "test"),
        ("sk_live_abc", "live"),
        ("rk_test_abc", "test"),
        ("rk_live_abc", "live"),
        (" sk_live_abc\n", "live"),
        ("pk_live_abc", "unknown"),
        ("whsec_abc", "unknown"),
        ("sk_abc_live_", "unknown"),
    ],
)
def test_key_mode(key, mode):
    assert keys.key_mode(Secret("K", key)) == mode


def test_client_is_configured_per_instance_not_globally(monkeypatch):
    monkeypatch.setenv("UNIT_KEY_WITH_NEWLINE", KEY + "\n")
    before = (stripe.api_key, stripe.api_base)
    api = keys.client("http://127.0.0.1:9/", "UNIT_KEY_WITH_NEWLINE")
    assert isinstance(api, stripe.StripeClient)
    assert (stripe.api_key, stripe.api_base) == before


def test_error_line_is_one_scrubbed_line():
    wrong = "sk_test_wrongkey_0123456789"
    register(wrong, "UNIT_WRONG_KEY")
    exc = stripe.AuthenticationError(f"Invalid API Key provided: {wrong}\nsecond line")
    line = keys.error_line(exc)
    assert line == "AuthenticationError: Invalid API Key provided: ***"


def test_key_of_the_expected_mode_passes():
    evidence = keys.check_key_mode(KEY_ENV, "test")
    found = conclusion(CHECK)
    assert (found.status, found.title) == ("pass", f"${KEY_ENV} is a test-mode key as expected")
    assert evidence.to_dict(orient="records") == [
        {"variable": KEY_ENV, "key_mode": "test", "expected": "test"}
    ]
    assert KEY not in evidence.to_csv()


def test_key_without_expectation_only_reports_its_mode():
    keys.check_key_mode(KEY_ENV)
    assert conclusion(CHECK).title == f"${KEY_ENV} is a test-mode key (no expected mode given)"


def test_test_key_where_live_is_expected_is_a_mismatch():
    keys.check_key_mode(KEY_ENV, "live")
    found = conclusion(CHECK)
    assert (found.status, found.severity) == ("fail", "P1")
    assert found.title.startswith("Test vs live mismatch") and "test-mode key where live" in found.title


def test_a_value_that_is_no_secret_key_warns(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "pk_live_publishable0123")
    keys.check_key_mode(KEY_ENV, "live")
    found = conclusion(CHECK)
    assert (found.status, found.severity) == ("warn", "P2")
    assert "neither a test nor a live" in found.title


@pytest.mark.parametrize(
    "env,mode,why", [("UNIT_NOT_SET", "test", "UNIT_NOT_SET"), (KEY_ENV, "prod", "stripe_mode")]
)
def test_missing_key_or_bad_mode_is_inconclusive(env, mode, why):
    assert keys.check_key_mode(env, mode) is None
    found = conclusion(CHECK)
    assert found.status == "inconclusive" and found.essential
    assert why in found.detail
