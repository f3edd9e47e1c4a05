"""opsnb.checks.auth.tokens: NextAuth session tokens made here with joserfc (real crypto, keys derived
independently in session_tokens.py), and the session-token check asking a real app (auth_app.py)."""

from __future__ import annotations

import json

import pytest
from checks.auth.auth_app import UNREACHABLE
from checks.auth.session_tokens import OTHER, SECRET, make_token, nextauth_key

from opsnb.checks import findings
from opsnb.checks.auth import probes, tokens

TOKEN_VAR, SECRET_VAR = "OPSNB_TEST_TOKEN", "OPSNB_TEST_SECRET"


def only() -> findings.Conclusion:
    [conclusion] = findings.all_conclusions()
    return conclusion


# -- reading tokens -------------------------------------------------------------------------------------------


def test_keys_are_derived_as_nextauth_derives_them() -> None:
    assert tokens.derive_key(SECRET, "v4") == nextauth_key(SECRET, "v4")
    name = "__Secure-authjs.session-token"
    assert tokens.derive_key(SECRET, "v5", name) == nextauth_key(SECRET, "v5", name)
    assert tokens.derive_key(SECRET, "v5", "authjs.session-token") != tokens.derive_key(SECRET, "v5", name)


def test_v4_token_decodes_with_the_right_secret() -> None:
    claims = tokens.decode_session_token(make_token(SECRET), SECRET)
    assert claims["sub"] == "usr_000042" and claims["_version"] == "v4"
    summary = {row["field"]: row["value"] for row in tokens.token_summary(claims)}
    assert summary["email"] == "j***@example.com" and summary["subject (sub)"] == "usr_000042"
    assert summary["issued (iat)"].endswith("UTC") and summary["expires (exp)"].endswith("UTC")
    assert summary["expires in"] in ("1.0 h", "59.9 min", "60.0 min")
    assert "jane" not in json.dumps(summary).lower()


def test_v4_token_with_a_wrong_secret_is_the_secret_changed_failure() -> None:
    with pytest.raises(tokens.TokenError) as err:
        tokens.decode_session_token(make_token(SECRET), OTHER)
    assert err.value.kind == "secret-mismatch"


def test_sandbox_issued_token_decodes() -> None:
    """The sandbox's own encoder (written independently) and this decoder agree on the v4 format."""
    from opsnb.sandbox import nextauth as sandbox_nextauth

    token = sandbox_nextauth.encode_session({"sub": "usr_1", "email": "a.b@example.com"}, SECRET)
    assert tokens.decode_session_token(token, SECRET)["email"] == "a.b@example.com"


@pytest.mark.parametrize("cookie", ["__Secure-authjs.session-token", "authjs.session-token"])
def test_v5_token_decodes_for_either_cookie_name(cookie: str) -> None:
    token = make_token(SECRET, "v5", cookie)
    claims = tokens.decode_session_token(token, SECRET)
    assert claims["_version"] == "v5" and claims["_cookie"] == cookie
    assert tokens.decode_session_token(token, SECRET, cookie_name=cookie)["sub"] == "usr_000042"


def test_v5_token_salted_with_another_cookie_name_does_not_decode() -> None:
    token = make_token(SECRET, "v5", "__Secure-authjs.session-token")
    with pytest.raises(tokens.TokenError) as err:
        tokens.decode_session_token(token, SECRET, cookie_name="authjs.session-token")
    assert err.value.kind == "secret-mismatch"
    with pytest.raises(tokens.TokenError):
        tokens.decode_session_token(token, OTHER)


def test_expired_token() -> None:
    with pytest.raises(tokens.TokenError) as err:
        tokens.decode_session_token(make_token(SECRET, exp_in=-3600), SECRET)
    assert err.value.kind == "expired" and "expired 1.0 h ago" in str(err.value)
    # within NextAuth's 15 s clock tolerance it is still valid
    assert tokens.decode_session_token(make_token(SECRET, exp_in=-5), SECRET)["sub"] == "usr_000042"


@pytest.mark.parametrize(
    ("token", "kind"),
    [
        ("0b1d0c6e-6f3c-4c43-9a0f-3d1e7b0c9a11", "not-jwe"),
        ("eyJhbGciOiJIUzI1NiJ9.e30.sig", "not-jwe"),
        ("!!!.a.b.c.d", "malformed"),
        (
            "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a.b.c.d",
            "malformed",
        ),  # alg RSA-OAEP: not NextAuth's
    ],
)
def test_tokens_that_are_not_nextauth_jwe(token: str, kind: str) -> None:
    with pytest.raises(tokens.TokenError) as err:
        tokens.decode_session_token(token, SECRET)
    assert err.value.kind == kind


def test_cookie_name_for() -> None:
    assert tokens.cookie_name_for(make_token(SECRET), https=True) == "__Secure-next-auth.session-token"
    assert (
        tokens.cookie_name_for(make_token(SECRET, "v5", "authjs.session-token"), https=False)
        == "authjs.session-token"
    )
    # an opaque database-session id does not say its version: the app's does
    assert tokens.cookie_name_for("opaque-id", https=False, app_version="v5") == "authjs.session-token"
    assert (
        tokens.cookie_name_for("opaque-id", https=True, app_version="unknown")
        == "__Secure-next-auth.session-token"
    )


# -- the check, against a real app ----------------------------------------------------------------------------


@pytest.fixture
def token_app(app, monkeypatch):
    """The v5 test app on http with a v5 token for its cookie name in $OPSNB_TEST_TOKEN, which it accepts,
    and the right secret in $OPSNB_TEST_SECRET."""
    auth_app, url = app
    token = make_token(SECRET, "v5", "authjs.session-token")
    monkeypatch.setenv(TOKEN_VAR, token)
    monkeypatch.setenv(SECRET_VAR, SECRET)
    auth_app.accepted = {token: "jane.doe@example.com"}
    return auth_app, url, token


def test_a_token_that_decrypts_and_is_accepted_passes(token_app) -> None:
    _, url, token = token_app
    table = tokens.check_session_token(probes.ask(url, TOKEN_VAR), SECRET_VAR)
    found = only()
    assert (found.check, found.status, found.essential) == ("auth.session-token", "pass", False)
    assert found.title == f"The session token decrypts with ${SECRET_VAR} and the app accepts it"
    values = dict(zip(table["field"], table["value"], strict=True))
    assert values[f"decrypts with ${SECRET_VAR}"] == "yes" and values["version"] == "v5"
    assert values["format"] == "JWE alg=dir enc=A256CBC-HS512 (v5)" and values["email"] == "j***@example.com"
    assert values["app"] == "the app accepts it as authjs.session-token (HTTP 200)"
    assert token not in table.to_string() and SECRET not in json.dumps(found.as_dict())


def test_a_token_the_app_rejects_is_p2(token_app) -> None:
    auth_app, url, _ = token_app
    auth_app.accepted = {}
    tokens.check_session_token(probes.ask(url, TOKEN_VAR), SECRET_VAR)
    assert (only().status, only().severity) == ("warn", "P2")
    assert only().title == f"The session token decrypts with ${SECRET_VAR} but the app rejects it"


def test_a_changed_secret_is_p1(token_app, monkeypatch) -> None:
    _, url, _ = token_app
    monkeypatch.setenv(SECRET_VAR, OTHER)
    table = tokens.check_session_token(probes.ask(url, TOKEN_VAR), SECRET_VAR)
    found = only()
    assert (found.status, found.severity) == ("fail", "P1")
    assert found.title == f"The session token does not decrypt with ${SECRET_VAR}: the secret changed"
    # the app still accepts it: it holds another secret than the one checked here
    assert "the app accepts it" in found.detail and "compare the secret of every deployment" in found.detail
    assert (
        dict(zip(table["field"], table["value"], strict=True))[f"decrypts with ${SECRET_VAR}"]
        == "no (secret-mismatch)"
    )


def test_an_expired_token_is_p3(token_app, monkeypatch) -> None:
    _, url, _ = token_app
    monkeypatch.setenv(TOKEN_VAR, make_token(SECRET, "v4", exp_in=-86400))
    tokens.check_session_token(probes.ask(url, TOKEN_VAR), SECRET_VAR)
    assert (only().status, only().severity) == ("warn", "P3")
    assert only().title == f"The session token decrypts with ${SECRET_VAR} but has expired"


def test_an_opaque_session_id_is_not_a_jwe(token_app, monkeypatch) -> None:
    _, url, _ = token_app
    monkeypatch.setenv(TOKEN_VAR, "0b1d0c6e-6f3c-4c43-9a0f-3d1e7b0c9a11")
    tokens.check_session_token(probes.ask(url, TOKEN_VAR), SECRET_VAR)
    assert (only().status, only().severity, only().title) == (
        "warn",
        "P2",
        "The session token is not a NextAuth session JWE",
    )


def test_no_token_given_is_inconclusive_and_not_essential(app, monkeypatch) -> None:
    _, url = app
    monkeypatch.setenv(SECRET_VAR, SECRET)
    tokens.check_session_token(probes.ask(url), SECRET_VAR)
    assert (only().status, only().essential) == ("inconclusive", False)
    assert "session_token_env is empty" in only().detail
    findings.clear()
    monkeypatch.delenv("OPSNB_TEST_UNSET_TOKEN", raising=False)
    monkeypatch.delenv("OPSNB_ENV_FILE", raising=False)
    tokens.check_session_token(probes.ask(url, "OPSNB_TEST_UNSET_TOKEN"), SECRET_VAR)
    assert only().status == "inconclusive" and "$OPSNB_TEST_UNSET_TOKEN is not set" in only().detail


def test_a_decrypting_token_with_the_app_unreachable_is_inconclusive(monkeypatch) -> None:
    monkeypatch.setenv(TOKEN_VAR, make_token(SECRET))
    monkeypatch.setenv(SECRET_VAR, SECRET)
    tokens.check_session_token(probes.ask(UNREACHABLE, TOKEN_VAR, timeout_s=1), SECRET_VAR)
    assert only().status == "inconclusive"
    assert only().detail.startswith(
        f"the token decrypts with ${SECRET_VAR}, but could not reach {UNREACHABLE}"
    )


def test_a_changed_secret_is_found_even_with_the_app_unreachable(monkeypatch) -> None:
    monkeypatch.setenv(TOKEN_VAR, make_token(SECRET))
    monkeypatch.setenv(SECRET_VAR, OTHER)
    tokens.check_session_token(probes.ask(UNREACHABLE, TOKEN_VAR, timeout_s=1), SECRET_VAR)
    assert (only().status, only().severity) == ("fail", "P1") and "could not reach" in only().detail
