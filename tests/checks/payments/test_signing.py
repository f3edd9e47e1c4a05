"""opsnb.checks.payments.signing: the signer against the official SDK, and the signed test event telling the
known causes apart on a real app whose webhook route verifies with the SDK."""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest
import stripe
from checks.payments.conftest import SECRET, SECRET_ENV, conclusion

from opsnb.checks.payments import signing
from opsnb.checks.payments.route import TOLERANCE_S

CHECK = "payments.webhook-signature"


def test_signer_is_accepted_by_construct_event():
    body = signing.probe_event(livemode=False)
    header = signing.sign(body, SECRET)
    event = stripe.Webhook.construct_event(body, header, SECRET)
    assert event["type"] == signing.PROBE_EVENT_TYPE and event["livemode"] is False
    t, v1 = header.split(",")
    assert t.startswith("t=") and v1.startswith("v1=") and len(v1) == 3 + 64


def test_signer_matches_the_hmac_definition():
    header = signing.sign('{"a":1}', SECRET, timestamp=1_700_000_000)
    expected = hmac.new(SECRET.encode(), b'1700000000.{"a":1}', hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"


def test_the_sdk_tells_a_wrong_secret_from_an_old_timestamp():
    body = signing.probe_event(livemode=False)
    with pytest.raises(stripe.SignatureVerificationError, match="No signatures found matching"):
        stripe.Webhook.construct_event(body, signing.sign(body, "whsec_other"), SECRET)
    with pytest.raises(stripe.SignatureVerificationError, match="No signatures found matching"):
        stripe.Webhook.construct_event(body, signing.sign(body, SECRET + "\n"), SECRET)
    old = int(time.time()) - TOLERANCE_S - 60
    with pytest.raises(stripe.SignatureVerificationError, match="tolerance"):
        stripe.Webhook.construct_event(body, signing.sign(body, SECRET, timestamp=old), SECRET)


def test_secret_shape_says_where_the_whitespace_is():
    shape = signing.secret_shape(" " + SECRET + "\n")
    assert shape == signing.SecretShape(True, True, True, len(SECRET) + 2)
    assert shape.whitespace == "leading and trailing"
    assert signing.secret_shape(SECRET).whitespace == ""
    assert not signing.secret_shape("sk_test_x").whsec_prefix


@pytest.mark.parametrize(
    "app_secret,our_secret,outcome,title_word",
    [
        (SECRET, SECRET, ("pass", "info"), "accepts an event signed"),
        ("whsec_rotated_old_value", SECRET, ("fail", "P1"), "wrong webhook secret"),
        (SECRET + "\n", SECRET + "\n", ("fail", "P1"), "The app's webhook secret contains whitespace"),
        (SECRET, " " + SECRET, ("warn", "P3"), "this environment's copy"),
        ("sk_test_not_a_whsec", "sk_test_not_a_whsec", ("warn", "P2"), "not a whsec_ signing secret"),
    ],
    ids=["same-secret", "rotated-secret", "whitespace-in-app", "whitespace-in-our-copy", "not-whsec"],
)
def test_signed_event_tells_the_causes_apart(
    shop_app, monkeypatch, app_secret, our_secret, outcome, title_word
):
    monkeypatch.setenv(SECRET_ENV, our_secret)
    attempts = signing.check_signature(shop_app(app_secret=app_secret), SECRET_ENV)
    found = conclusion(CHECK)
    assert (found.status, found.severity) == outcome
    assert title_word in found.title
    assert found.essential
    assert our_secret.strip() not in attempts.to_csv() and our_secret.strip() not in found.detail


def test_wrong_secret_detail_quotes_the_app_and_names_the_causes(shop_app):
    signing.check_signature(shop_app(app_secret="whsec_rotated_old_value"), SECRET_ENV)
    detail = conclusion(CHECK).detail
    assert "No signatures found matching" in detail and "stripe listen" in detail


def test_an_app_whose_clock_runs_ahead_rejects_fresh_signatures(shop_app):
    signing.check_signature(shop_app(tolerance_s=-1), SECRET_ENV)  # every timestamp looks too old to it
    found = conclusion(CHECK)
    assert (found.status, found.severity) == ("fail", "P1")
    assert "too old (clock skew)" in found.title


def test_the_probe_event_carries_the_mode():
    body = signing.probe_event(livemode=True, created=1_700_000_000)
    assert '"livemode":true' in body and '"type":"opsnb.probe"' in body


@pytest.mark.parametrize("env", ["UNIT_SECRET_NOT_SET", SECRET_ENV])
def test_no_secret_or_no_app_is_inconclusive(dead_url, env):
    assert signing.check_signature(dead_url, env) is None
    found = conclusion(CHECK)
    assert found.status == "inconclusive" and found.essential
    assert ("UNIT_SECRET_NOT_SET" if env != SECRET_ENV else "not delivered") in found.detail
