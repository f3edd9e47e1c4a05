"""NextAuth v4 sign-in on the shop stand-in: the session cookie it sets, the session it answers, the roll.

The http case runs on the session sandbox; the https case (`__Secure-` names, Secure) and an unreadable token
(which logs JWT_SESSION_ERROR) run on an in-process copy of the shop with its own state and drain folder,
so the shared drain keeps no error the faults did not plant.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from starlette.testclient import TestClient

from opsnb.checks import auth
from opsnb.sandbox import nextauth
from opsnb.sandbox.shop import ShopApp

HTTPS_URL = "https://shop.example.com"


def _email(sandbox) -> str:
    with psycopg.connect(sandbox.admin_url) as conn:
        return conn.execute('SELECT "email" FROM "User" ORDER BY "id" LIMIT 1').fetchone()[0]


def _set_cookies(response: httpx.Response, name: str) -> list[str]:
    return [v for k, v in response.headers.multi_items() if k == "set-cookie" and v.startswith(name + "=")]


def _attributes(header: str) -> tuple[str, str, list[str]]:
    pair, *attrs = [part.strip() for part in header.split(";")]
    name, _, value = pair.partition("=")
    return name, value, attrs


def _sign_in(client: httpx.Client | TestClient, email: str, **extra: str) -> httpx.Response:
    csrf = client.get("/api/auth/csrf").json()["csrfToken"]
    return client.post(
        "/api/auth/callback/credentials",
        data={"csrfToken": csrf, "email": email, **extra},
        follow_redirects=False,
    )


def test_credentials_sign_in_sets_a_v4_session_cookie(sandbox) -> None:
    email = _email(sandbox)
    with httpx.Client(base_url=sandbox.app_url) as client:
        r = _sign_in(client, email, callbackUrl=sandbox.app_url + "/account")
        assert r.status_code == 302 and r.headers["location"] == sandbox.app_url + "/account"
        [header] = _set_cookies(r, "next-auth.session-token")
        name, token, attrs = _attributes(header)
        assert name == "next-auth.session-token"  # NEXTAUTH_URL is http: no __Secure- prefix, no Secure
        assert attrs[:1] == ["Path=/"] and attrs[-2:] == ["HttpOnly", "SameSite=Lax"]
        assert attrs[1].startswith("Expires=") and "Secure" not in attrs
        assert auth.token_header(token) == {"alg": "dir", "enc": "A256GCM"}
        assert nextauth.decode_session(token, sandbox["NEXTAUTH_SECRET"])["email"] == email
        # the runbook's cookie rules accept it as an http site's session cookie
        rules = auth.cookie_rules(auth.parse_set_cookie(header), https=False)
        assert rules and all(rule.passed for rule in rules), [r for r in rules if not r.passed]

        # the cookie jar sends it back: the session answers, and v4 rolls the cookie
        session = client.get("/api/auth/session")
        assert session.json()["user"]["email"] == email and session.json()["expires"].endswith("Z")
        [rolled] = _set_cookies(session, "next-auth.session-token")
        _, new_token, new_attrs = _attributes(rolled)
        assert new_token != token and new_attrs[0] == "Path=/" and "HttpOnly" in new_attrs
        assert nextauth.decode_session(new_token, sandbox["NEXTAUTH_SECRET"])["email"] == email

        # json=true answers {"url"} instead of redirecting
        r = _sign_in(client, email, json="true", callbackUrl=sandbox.app_url + "/")
        assert r.status_code == 200 and r.json() == {"url": sandbox.app_url + "/"}
        assert _set_cookies(r, "next-auth.session-token")

    with httpx.Client(base_url=sandbox.app_url) as client:
        # wrong csrf token or unknown email: v4's redirects, no session cookie
        client.get("/api/auth/csrf")
        r = client.post(
            "/api/auth/callback/credentials",
            data={"csrfToken": "nope", "email": email},
            follow_redirects=False,
        )
        assert r.status_code == 302 and r.headers["location"].endswith("/api/auth/signin?csrf=true")
        assert not _set_cookies(r, "next-auth.session-token")
        r = _sign_in(client, "nobody@invalid.example")
        assert r.status_code == 302 and "error=CredentialsSignin" in r.headers["location"]
        assert not _set_cookies(r, "next-auth.session-token")
        assert client.get("/api/auth/session").json() == {}


@pytest.fixture
def https_shop(sandbox, tmp_path: Path) -> Iterator[tuple[TestClient, Path]]:
    """The shop app in-process with NEXTAUTH_URL https (fault off) and its own state and drain folders."""
    shutil.copy(sandbox.state_dir / "vercel.json", tmp_path / "vercel.json")
    (tmp_path / "faults.json").write_text("{}")
    drain_dir = tmp_path / "drain"
    config = {
        "app_url": HTTPS_URL,
        "database_url": sandbox.database_url,
        "nextauth_secret": sandbox["NEXTAUTH_SECRET"],
        "webhook_secret": sandbox["STRIPE_WEBHOOK_SECRET"],
        "webhook_secret_old": sandbox["STRIPE_WEBHOOK_SECRET"],
        "log_dir": str(drain_dir),
    }
    shop = ShopApp(tmp_path, config)
    try:
        with TestClient(shop.app(), base_url=HTTPS_URL) as client:
            yield client, drain_dir
    finally:
        while not shop.db.pool.empty():
            shop.db.pool.get_nowait().close()


def test_https_cookies_are_secure_and_prefixed(https_shop, sandbox) -> None:
    client, _ = https_shop
    email = _email(sandbox)
    csrf = client.get("/api/auth/csrf")
    [csrf_cookie] = _set_cookies(csrf, "__Host-next-auth.csrf-token")
    assert {"Path=/", "HttpOnly", "Secure", "SameSite=Lax"} <= set(_attributes(csrf_cookie)[2])
    assert _set_cookies(csrf, "__Secure-next-auth.callback-url")

    r = _sign_in(client, email)
    assert r.status_code == 302 and r.headers["location"] == HTTPS_URL
    [header] = _set_cookies(r, "__Secure-next-auth.session-token")
    _, token, attrs = _attributes(header)
    assert attrs[0] == "Path=/" and attrs[1].startswith("Expires=")
    assert attrs[2:] == ["HttpOnly", "Secure", "SameSite=Lax"]
    assert not _set_cookies(r, "next-auth.session-token")
    rules = auth.cookie_rules(auth.parse_set_cookie(header), https=True)
    assert rules and all(rule.passed for rule in rules), [r for r in rules if not r.passed]
    assert client.get("/api/auth/session").json()["user"]["email"] == email
    # on https v4 reads only the __Secure- name
    client.cookies.clear()
    client.cookies.set("next-auth.session-token", token)
    assert client.get("/api/auth/session").json() == {}


def test_unreadable_token_is_logged_and_cleared(https_shop) -> None:
    client, drain_dir = https_shop
    client.cookies.set("__Secure-next-auth.session-token", "x.y.z")
    r = client.get("/api/auth/session")
    assert r.json() == {}
    [cleared] = _set_cookies(r, "__Secure-next-auth.session-token")
    assert _attributes(cleared)[1] == "" and "Max-Age=0" in _attributes(cleared)[2]
    lines = [json.loads(x) for f in drain_dir.glob("*.ndjson") for x in f.read_text().splitlines()]
    assert [x["path"] for x in lines] == ["/api/auth/session"]
    assert "[next-auth][error][JWT_SESSION_ERROR]" in lines[0]["message"]
