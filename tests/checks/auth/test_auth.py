"""opsnb.checks.auth: URL/secret/cookie rules on crafted values and headers, JWE session tokens made with joserfc
(real crypto), the error-code catalogue over a real log file, and the probes against a real HTTP server."""

from __future__ import annotations

import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from joserfc import jwe
from joserfc.jwk import OctKey

from opsnb.checks import auth, findings

APP = "https://shop.example.com"
SECRET = "x" * 12 + "correct-horse-battery-staple-0123456789"
OTHER = "y" * 12 + "a-different-secret-of-good-length-999"


@pytest.fixture(autouse=True)
def fresh():
    findings.clear()
    yield
    findings.clear()


def failed(rules):
    """{rule name: severity} of the failed rules."""
    return {r.rule: r.severity for r in rules if not r.passed}


# -- NEXTAUTH_URL / AUTH_URL ---------------------------------------------------------------------------------


def test_url_equal_to_public_url_passes_every_rule() -> None:
    rules = auth.url_rules(APP, APP, production=True)
    assert failed(rules) == {}
    assert {r.rule for r in rules} >= {
        "is set",
        "equals the public URL",
        "uses https in production",
        "is not localhost",
        "has no path",
        "has no trailing slash",
    }


def test_url_unset_is_p1() -> None:
    assert failed(auth.url_rules(None, APP, True)) == {"is set": "P1"}
    assert failed(auth.url_rules("", APP, True, name="AUTH_URL")) == {"is set": "P1"}


def test_url_not_absolute() -> None:
    assert failed(auth.url_rules("shop.example.com", APP, True)) == {"is an absolute http(s) URL": "P1"}


def test_localhost_in_production_names_the_mismatch_without_the_value() -> None:
    rules = auth.url_rules("http://localhost:3000", APP, production=True)
    assert failed(rules) == {
        "equals the public URL": "P1",
        "uses https in production": "P1",
        "is not localhost": "P1",
    }
    mismatch = next(r for r in rules if r.rule == "equals the public URL")
    assert (
        "scheme is http" in mismatch.detail and "host differs (it is a localhost address)" in mismatch.detail
    )
    assert "port differs" in mismatch.detail and APP in mismatch.detail
    assert all("3000" not in r.detail for r in rules)  # the value itself is never shown


def test_localhost_allowed_outside_production_when_it_is_the_public_url() -> None:
    local = "http://127.0.0.1:8123"
    assert failed(auth.url_rules(local, local, production=False)) == {}
    # but a different port is still a mismatch
    assert failed(auth.url_rules("http://127.0.0.1:3000", local, production=False)) == {
        "equals the public URL": "P1"
    }


def test_http_in_production_is_p1() -> None:
    assert failed(auth.url_rules("http://shop.example.com", APP, True)) == {
        "equals the public URL": "P1",
        "uses https in production": "P1",
    }


def test_www_host_differs_from_bare_domain() -> None:
    rules = auth.url_rules("https://www.shop.example.com", APP, True)
    assert failed(rules) == {"equals the public URL": "P1"}
    assert "host differs" in next(r.detail for r in rules if not r.passed)


def test_path_and_trailing_slash_are_separate_rules() -> None:
    assert failed(auth.url_rules(APP + "/", APP, True)) == {"has no trailing slash": "P3"}
    assert failed(auth.url_rules(APP + "/api/auth", APP, True)) == {"has no path": "P2"}
    assert failed(auth.url_rules(APP + "/shop/", APP, True)) == {
        "has no path": "P2",
        "has no trailing slash": "P3",
    }
    assert failed(auth.url_rules(APP + "?x=1", APP, True)) == {"has no path": "P2"}


def test_default_port_is_the_same_origin() -> None:
    assert failed(auth.url_rules("https://shop.example.com:443", APP, True)) == {}
    assert failed(auth.url_rules("https://SHOP.example.com", APP, True)) == {}


# -- secret ----------------------------------------------------------------------------------------------------


def test_secret_rules() -> None:
    assert failed(auth.secret_rules(None)) == {"is set": "P1"}
    assert failed(auth.secret_rules("")) == {"is set": "P1"}
    assert failed(auth.secret_rules("short-secret")) == {"is at least 32 characters": "P2"}
    assert failed(auth.secret_rules("a" * 31)) == {"is at least 32 characters": "P2"}
    assert failed(auth.secret_rules("a" * 32)) == {}
    assert failed(auth.secret_rules(" " + "a" * 40)) == {"has no surrounding whitespace": "P2"}
    rules = auth.secret_rules("s3cr3t-value-that-is-long-enough-xyz")
    assert all("s3cr3t" not in r.detail for r in rules)


def test_secret_rules_accept_a_secret_object(monkeypatch) -> None:
    from opsnb.checks.secrets import secret

    monkeypatch.setenv("OPSNB_TEST_AUTH_SECRET", "b" * 40)
    assert failed(auth.secret_rules(secret("OPSNB_TEST_AUTH_SECRET"))) == {}


# -- version detection -----------------------------------------------------------------------------------------


def test_detect_version() -> None:
    assert auth.detect_version(["NEXTAUTH_URL", "NEXTAUTH_SECRET"])[0] == "v4"
    assert auth.detect_version(["AUTH_SECRET", "AUTH_TRUST_HOST"])[0] == "v5"
    assert auth.detect_version(["PATH"])[0] == "unknown"
    # cookies the app really sets win over variables
    assert auth.detect_version(["NEXTAUTH_SECRET"], ["__Host-authjs.csrf-token"])[0] == "v5"
    assert auth.detect_version(["AUTH_SECRET"], ["next-auth.csrf-token"])[0] == "v4"


# -- cookies on crafted Set-Cookie headers ---------------------------------------------------------------------

GOOD_HTTPS = {
    "session": "__Secure-next-auth.session-token=abc; Path=/; Expires=Wed, 01 Jan 2031 00:00:00 GMT; HttpOnly; Secure; SameSite=Lax",
    "csrf": "__Host-next-auth.csrf-token=t%7Ch; Path=/; HttpOnly; Secure; SameSite=Lax",
    "callback": "__Secure-next-auth.callback-url=https%3A%2F%2Fshop.example.com; Path=/; HttpOnly; Secure; SameSite=Lax",
}


def rules_for(header: str, https: bool = True) -> dict[str, str]:
    return failed(auth.cookie_rules(auth.parse_set_cookie(header), https))


def test_parse_set_cookie() -> None:
    c = auth.parse_set_cookie(
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


def test_runbook_cookie_config_passes_on_https() -> None:
    for header in GOOD_HTTPS.values():
        assert rules_for(header) == {}, header


def test_cookie_roles_and_expected_names() -> None:
    assert auth.cookie_role("__Secure-next-auth.session-token.1") == "session-token"
    assert auth.cookie_role("authjs.pkce.code_verifier") == "pkce.code_verifier"
    assert auth.cookie_role("theme") is None
    assert auth.expected_cookie_name("session-token", "v4", True) == "__Secure-next-auth.session-token"
    assert auth.expected_cookie_name("csrf-token", "v5", True) == "__Host-authjs.csrf-token"
    assert auth.expected_cookie_name("session-token", "v5", False) == "authjs.session-token"


def test_unrelated_cookie_is_ignored() -> None:
    assert auth.cookie_rules(auth.parse_set_cookie("theme=dark"), True) == []


def test_missing_secure_on_https() -> None:
    assert rules_for("next-auth.session-token=a; Path=/; HttpOnly; SameSite=Lax") == {
        "Secure on https": "P2",
        "__Secure- prefix on https": "P2",
    }


def test_secure_cookie_on_http_is_dropped_by_browsers() -> None:
    assert rules_for("next-auth.csrf-token=a; Path=/; HttpOnly; Secure; SameSite=Lax", https=False) == {
        "no Secure on http": "P1"
    }
    assert rules_for("next-auth.csrf-token=a; Path=/; HttpOnly; SameSite=Lax", https=False) == {}


def test_prefix_on_http_is_rejected() -> None:
    got = rules_for("__Secure-next-auth.session-token=a; Path=/; HttpOnly; Secure; SameSite=Lax", https=False)
    assert got == {"no Secure on http": "P1", "no prefix on http": "P1"}


def test_missing_httponly() -> None:
    assert rules_for(GOOD_HTTPS["session"].replace(" HttpOnly;", "")) == {"HttpOnly": "P2"}
    assert rules_for(GOOD_HTTPS["callback"].replace(" HttpOnly;", "")) == {"HttpOnly": "P3"}


@pytest.mark.parametrize(
    ("same_site", "severity"),
    [("", "P3"), ("; SameSite=Strict", "P2"), ("; SameSite=None", "P3")],
)
def test_samesite_must_be_lax(same_site: str, severity: str) -> None:
    header = GOOD_HTTPS["session"].replace("; SameSite=Lax", same_site)
    assert rules_for(header) == {"SameSite=Lax": severity}


def test_samesite_none_without_secure_is_rejected() -> None:
    got = rules_for("next-auth.session-token=a; Path=/; HttpOnly; SameSite=None", https=False)
    assert got == {"SameSite=Lax": "P1"}


def test_path_must_be_root() -> None:
    assert rules_for(GOOD_HTTPS["session"].replace("Path=/;", "Path=/api/auth;")) == {"Path=/": "P1"}
    assert rules_for(GOOD_HTTPS["session"].replace(" Path=/;", "")) == {"Path=/": "P1"}
    assert rules_for(GOOD_HTTPS["callback"].replace("Path=/;", "Path=/api;")) == {"Path=/": "P2"}


def test_csrf_needs_host_prefix_and_its_constraints() -> None:
    assert rules_for(GOOD_HTTPS["csrf"].replace("__Host-", "")) == {"__Host- prefix on https": "P2"}
    assert rules_for(GOOD_HTTPS["csrf"] + "; Domain=shop.example.com") == {"__Host- cookie constraints": "P1"}
    assert rules_for(GOOD_HTTPS["csrf"].replace("Path=/;", "Path=/api;")) == {
        "Path=/": "P2",
        "__Host- cookie constraints": "P1",
    }


def test_secure_prefix_without_secure() -> None:
    assert rules_for(GOOD_HTTPS["session"].replace(" Secure;", "")) == {
        "Secure on https": "P2",
        "__Secure- cookie has Secure": "P1",
    }


def test_oversized_cookie() -> None:
    header = GOOD_HTTPS["session"].replace("=abc;", "=" + "a" * 5000 + ";")
    assert rules_for(header) == {"at most 4096 bytes": "P2"}


# -- providers and endpoint shapes -----------------------------------------------------------------------------


def test_expected_redirect_uris() -> None:
    assert auth.expected_redirect_uris(APP) == [
        "https://shop.example.com/api/auth/callback/google",
        "https://www.shop.example.com/api/auth/callback/google",
    ]
    assert auth.expected_redirect_uris("https://www.shop.example.com/", "github") == [
        "https://shop.example.com/api/auth/callback/github",
        "https://www.shop.example.com/api/auth/callback/github",
    ]
    assert auth.expected_redirect_uris("http://127.0.0.1:8123") == [
        "http://127.0.0.1:8123/api/auth/callback/google"
    ]


def provider(pid: str, base: str) -> dict:
    return {"id": pid, "type": "oauth", "callbackUrl": f"{base}/api/auth/callback/{pid}"}


def test_provider_rules() -> None:
    good = {"google": provider("google", APP), "github": provider("github", "https://www.shop.example.com")}
    assert failed(auth.provider_rules(good, APP)) == {}
    bad = {"google": provider("google", "http://localhost:3000")}
    rules = auth.provider_rules(bad, APP)
    assert failed(rules) == {"callbackUrl is an expected redirect URI": "P1"}
    assert "redirect_uri_mismatch" in next(r.detail for r in rules if not r.passed)
    assert failed(auth.provider_rules({"github": provider("github", APP)}, APP)) == {
        "google provider present": "P1"
    }
    assert failed(auth.provider_rules(None, APP)) == {"returns the provider list": "P1"}


def test_session_shape_rules() -> None:
    csrf = {"csrfToken": "abc"}
    assert failed(auth.session_shape_rules({}, csrf, "v4")) == {}
    assert failed(auth.session_shape_rules(None, csrf, "v5")) == {}
    assert failed(auth.session_shape_rules(None, csrf, "v4")) == {"signed-out shape is {} (v4)": "P2"}
    assert failed(auth.session_shape_rules({"user": {}}, csrf, "unknown")) == {"signed-out shape": "P2"}
    assert failed(auth.session_shape_rules({}, {}, "v4")) == {"returns {csrfToken}": "P1"}


# -- session tokens (JWE made here with joserfc) ---------------------------------------------------------------


def make_token(secret: str, version: str = "v4", cookie_name: str = "", exp_in: int = 3600, **claims) -> str:
    now = int(time.time())
    payload = {"sub": "usr_000042", "email": "jane.doe@example.com", "name": "Jane Doe", **claims}
    payload |= {"iat": now, "exp": now + exp_in, "jti": "j-1"}
    enc = "A256GCM" if version == "v4" else "A256CBC-HS512"
    key = OctKey.import_key(auth.derive_key(secret, version, cookie_name))
    return jwe.encrypt_compact({"alg": "dir", "enc": enc}, json.dumps(payload), key, algorithms=["dir", enc])


def test_keys_follow_the_field_notes() -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    v4 = HKDF(hashes.SHA256(), 32, b"", b"NextAuth.js Generated Encryption Key").derive(SECRET.encode())
    assert auth.derive_key(SECRET, "v4") == v4
    name = "__Secure-authjs.session-token"
    v5 = HKDF(hashes.SHA256(), 64, name.encode(), f"Auth.js Generated Encryption Key ({name})".encode())
    assert auth.derive_key(SECRET, "v5", name) == v5.derive(SECRET.encode())
    assert auth.derive_key(SECRET, "v5", "authjs.session-token") != auth.derive_key(SECRET, "v5", name)


def test_v4_token_decodes_with_the_right_secret() -> None:
    claims = auth.decode_session_token(make_token(SECRET), SECRET)
    assert claims["sub"] == "usr_000042" and claims["_version"] == "v4"
    summary = {row["field"]: row["value"] for row in auth.token_summary(claims)}
    assert summary["email"] == "j***@example.com" and summary["subject (sub)"] == "usr_000042"
    assert summary["issued (iat)"].endswith("UTC") and summary["expires (exp)"].endswith("UTC")
    assert "jane" not in json.dumps(summary).lower()


def test_v4_token_with_a_wrong_secret_is_the_secret_changed_failure() -> None:
    with pytest.raises(auth.TokenError) as err:
        auth.decode_session_token(make_token(SECRET), OTHER)
    assert err.value.kind == "secret-mismatch"


def test_sandbox_issued_token_decodes(tmp_path) -> None:
    """The sandbox's own encoder (written independently) and this decoder agree on the v4 format."""
    from opsnb.sandbox import nextauth as sandbox_nextauth

    token = sandbox_nextauth.encode_session({"sub": "usr_1", "email": "a.b@example.com"}, SECRET)
    assert auth.decode_session_token(token, SECRET)["email"] == "a.b@example.com"


@pytest.mark.parametrize("cookie", ["__Secure-authjs.session-token", "authjs.session-token"])
def test_v5_token_decodes_for_either_cookie_name(cookie: str) -> None:
    token = make_token(SECRET, "v5", cookie)
    claims = auth.decode_session_token(token, SECRET)
    assert claims["_version"] == "v5" and claims["_cookie"] == cookie
    assert auth.decode_session_token(token, SECRET, cookie_name=cookie)["sub"] == "usr_000042"


def test_v5_token_salted_with_another_cookie_name_does_not_decode() -> None:
    token = make_token(SECRET, "v5", "__Secure-authjs.session-token")
    with pytest.raises(auth.TokenError) as err:
        auth.decode_session_token(token, SECRET, cookie_name="authjs.session-token")
    assert err.value.kind == "secret-mismatch"
    with pytest.raises(auth.TokenError):
        auth.decode_session_token(token, OTHER)


def test_expired_token() -> None:
    with pytest.raises(auth.TokenError) as err:
        auth.decode_session_token(make_token(SECRET, exp_in=-3600), SECRET)
    assert err.value.kind == "expired"
    # within NextAuth's 15 s clock tolerance it is still valid
    assert auth.decode_session_token(make_token(SECRET, exp_in=-5), SECRET)["sub"] == "usr_000042"


@pytest.mark.parametrize(
    ("token", "kind"),
    [
        ("0b1d0c6e-6f3c-4c43-9a0f-3d1e7b0c9a11", "not-jwe"),
        ("eyJhbGciOiJIUzI1NiJ9.e30.sig", "not-jwe"),
        ("!!!.a.b.c.d", "malformed"),
    ],
)
def test_tokens_that_are_not_nextauth_jwe(token: str, kind: str) -> None:
    with pytest.raises(auth.TokenError) as err:
        auth.decode_session_token(token, SECRET)
    assert err.value.kind == kind


def test_mask_email() -> None:
    assert auth.mask_email("jane.doe@example.com") == "j***@example.com"
    assert auth.mask_email("") is None and auth.mask_email(None) is None
    assert auth.mask_email("nobody") == "n***"


# -- error codes in logs ---------------------------------------------------------------------------------------


def test_error_codes_in_messages() -> None:
    assert auth.error_codes_in(
        "[next-auth][error][OAUTH_CALLBACK_ERROR] \nhttps://next-auth.js.org/errors"
    ) == ["OAUTH_CALLBACK_ERROR"]
    assert auth.error_codes_in("[auth][error] JWTSessionError: Read more") == ["JWTSessionError"]
    assert auth.error_codes_in("/api/auth/signin?error=OAuthAccountNotLinked") == ["OAuthAccountNotLinked"]
    assert auth.error_codes_in("GET /api/products 200") == [] and auth.error_codes_in(None) == []


def test_catalogue_covers_the_runbook_codes() -> None:
    for code in ("OAUTH_CALLBACK_ERROR", "CLIENT_FETCH_ERROR", "JWT_SESSION_ERROR", "OAuthAccountNotLinked"):
        entry = auth.ERROR_CODES[code]
        assert entry.explanation and entry.fix and entry.severity in ("P1", "P2", "P3")


def write_drain(path, lines: list[tuple[float, str, str]]) -> None:
    with open(path, "w") as handle:
        for ts, message, route in lines:
            record = {
                "id": f"l{ts}",
                "timestamp": int(ts * 1000),
                "level": "error",
                "message": message,
                "path": route,
            }
            handle.write(json.dumps(record) + "\n")


def test_check_error_codes_counts_codes_in_the_window(tmp_path) -> None:
    now = time.time()
    write_drain(
        tmp_path / "drain.ndjson",
        [
            (now - 7200, "[next-auth][error][JWT_SESSION_ERROR] old", "/api/auth/session"),
            (
                now - 600,
                "[next-auth][error][OAUTH_CALLBACK_ERROR] redirect_uri_mismatch",
                "/api/auth/callback/google",
            ),
            (
                now - 300,
                "[next-auth][error][OAUTH_CALLBACK_ERROR] redirect_uri_mismatch",
                "/api/auth/callback/google",
            ),
            (now - 200, "", "/api/auth/signin?error=OAuthAccountNotLinked"),
            (now - 100, "[next-auth][error][SOMETHING_NEW]", "/api/auth/session"),
        ],
    )
    summary = auth.check_error_codes(str(tmp_path), window_minutes=60)
    counts = dict(zip(summary["code"], summary["count"], strict=True))
    assert counts == {"OAUTH_CALLBACK_ERROR": 2, "OAuthAccountNotLinked": 1, "SOMETHING_NEW": 1}
    by_title = {f.title: f.severity for f in findings.all_findings()}
    assert by_title["NextAuth error OAUTH_CALLBACK_ERROR in the logs"] == "P1"
    assert by_title["NextAuth error OAuthAccountNotLinked in the logs"] == "P3"
    assert by_title["NextAuth error SOMETHING_NEW in the logs"] == "P3"
    # only what happened after a fix counts when `since` is given
    findings.clear()
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 150))
    summary = auth.check_error_codes(str(tmp_path), since=since)
    assert list(summary["code"]) == ["SOMETHING_NEW"]


def test_no_error_codes_is_an_ok_finding(tmp_path) -> None:
    write_drain(tmp_path / "drain.ndjson", [(time.time() - 60, "GET /api/products", "/api/products")])
    assert auth.check_error_codes(str(tmp_path)).empty
    assert [f.severity for f in findings.all_findings()] == ["info"]


# -- probes against a real HTTP server (an Auth.js v5 app misconfigured for https behind http) ------------------


class V5Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        host = f"http://{self.headers['Host']}"
        cookies = []
        if self.path == "/api/auth/providers":
            body = {"google": provider("google", "https://auth.wrong.example")}
        elif self.path == "/api/auth/csrf":
            body = {"csrfToken": "t"}
            cookies = [
                "__Host-authjs.csrf-token=t%7Ch; Path=/; HttpOnly; Secure; SameSite=Lax",
                f"__Secure-authjs.callback-url={host}; Path=/; HttpOnly; Secure; SameSite=Lax",
            ]
        else:
            body = None
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        for cookie in cookies:
            self.send_header("Set-Cookie", cookie)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def v5_app():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), V5Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_probes_providers_and_cookies_on_a_real_server(v5_app) -> None:
    probes, table = auth.probe_endpoints(v5_app)
    assert list(table["status"]) == [200, 200, 200] and table["latency_ms"].gt(0).all()
    cookies = auth.check_cookies(probes)
    assert set(cookies["cookie"]) == {"__Host-authjs.csrf-token", "__Secure-authjs.callback-url"}
    assert auth.check_endpoint_shapes(probes)["verdict"].eq("PASS").all()  # null session → v5 shape
    providers = auth.check_providers(probes)
    assert providers.loc[0, "verdict"] == "P1"
    titles = {f.title: f.severity for f in findings.all_findings()}
    assert titles["cookie __Host-authjs.csrf-token: no Secure on http"] == "P1"
    assert titles["cookie __Secure-authjs.callback-url: no prefix on http"] == "P1"
    assert titles["provider google: callbackUrl is an expected redirect URI"] == "P1"
    assert findings.verdict() == "FAIL"


def test_unreachable_app_is_p1() -> None:
    probes, table = auth.probe_endpoints("http://127.0.0.1:9", timeout_s=1)
    assert table["status"].isna().all()
    assert {f.severity for f in findings.all_findings()} == {"P1"}


def test_check_config_reads_variables_not_values(monkeypatch) -> None:
    monkeypatch.setenv("OPSNB_TEST_NEXTAUTH_URL", "http://localhost:3000")
    monkeypatch.setenv("OPSNB_TEST_NEXTAUTH_SECRET", "c" * 40)
    table = auth.check_config(APP, True, "OPSNB_TEST_NEXTAUTH_URL", "OPSNB_TEST_NEXTAUTH_SECRET")
    text = table.to_string() + json.dumps([f.as_dict() for f in findings.all_findings()])
    assert "localhost:3000" not in text and "c" * 40 not in text
    assert findings.verdict() == "FAIL"
    findings.clear()
    monkeypatch.setenv("OPSNB_TEST_NEXTAUTH_URL", APP)
    auth.check_config(APP, True, "OPSNB_TEST_NEXTAUTH_URL", "OPSNB_TEST_NEXTAUTH_SECRET")
    assert findings.verdict() == "PASS"


def test_env_value_falls_back_to_the_env_file(monkeypatch, tmp_path) -> None:
    env_file = tmp_path / "sandbox.env"
    env_file.write_text("OPSNB_TEST_ONLY_IN_FILE=https://from.file\n")
    os.chmod(env_file, 0o600)
    monkeypatch.setenv("OPSNB_ENV_FILE", str(env_file))
    monkeypatch.delenv("OPSNB_TEST_ONLY_IN_FILE", raising=False)
    assert auth.env_value("OPSNB_TEST_ONLY_IN_FILE") == "https://from.file"
    assert "OPSNB_TEST_ONLY_IN_FILE" in auth.env_names()


# -- Prisma adapter tables on a real PostgreSQL ----------------------------------------------------------------

ADAPTER_DDL = """
CREATE TABLE "User" ("id" TEXT PRIMARY KEY, "email" TEXT, "createdAt" TIMESTAMP(3) NOT NULL DEFAULT now());
CREATE TABLE "Account" ("id" TEXT PRIMARY KEY, "userId" TEXT NOT NULL, "provider" TEXT NOT NULL);
CREATE TABLE "Session" ("id" TEXT PRIMARY KEY, "userId" TEXT NOT NULL, "expires" TIMESTAMP(3) NOT NULL);
INSERT INTO "User" VALUES ('u1', 'Ann.Lee@example.com'), ('u2', 'ann.lee@example.com'), ('u3', 'bo@example.com'),
                          ('u4', 'cy@example.com');
INSERT INTO "Account" VALUES ('a1', 'u1', 'google'), ('a2', 'u2', 'github'), ('a3', 'u3', 'google'),
                             ('a4', 'u4', 'google'), ('a5', 'u4', 'github');
INSERT INTO "Session" VALUES ('s1', 'u1', now() + interval '29 days'), ('s2', 'u3', now() - interval '1 day');
"""


@pytest.fixture(scope="module")
def auth_db(pg_cluster):
    import psycopg

    with psycopg.connect(pg_cluster.dsn, autocommit=True) as conn:
        for name in ("opsnb_auth_unit", "opsnb_auth_empty"):
            conn.execute(f"DROP DATABASE IF EXISTS {name}")
            conn.execute(f"CREATE DATABASE {name}")
    with psycopg.connect(pg_cluster.dsn_for("opsnb_auth_unit"), autocommit=True) as conn:
        conn.execute(ADAPTER_DDL)
    yield pg_cluster.dsn_for("opsnb_auth_unit"), pg_cluster.dsn_for("opsnb_auth_empty")


def test_database_sessions_and_same_email_candidates(auth_db, monkeypatch) -> None:
    monkeypatch.setenv("OPSNB_TEST_AUTH_DB", auth_db[0])
    sessions, linked = auth.check_database("OPSNB_TEST_AUTH_DB")
    assert list(sessions["user_id"]) == ["u1", "u3"] and list(sessions["active"]) == [True, False]
    assert list(sessions["email"]) == ["A***@example.com", "b***@example.com"]
    # last activity ≈ expires - 30 days: about a day ago for u1
    assert abs((sessions.loc[0, "expires"] - sessions.loc[0, "last_active_est"]).days - 30) <= 1
    # two users share ann.lee's email (case differs) across google and github; cy linked both to one user
    rows = {r["email"]: (r["users"], r["providers"]) for r in linked.to_dict(orient="records")}
    assert rows == {"a***@example.com": (2, "github, google"), "c***@example.com": (1, "github, google")}
    titles = {f.title: f.severity for f in findings.all_findings()}
    assert (
        titles["database sessions"] == "info" and titles["2 email(s) linked to several providers"] == "info"
    )
    assert "1 active, 1 expired" in next(
        f.detail for f in findings.all_findings() if f.title == "database sessions"
    )


def test_database_without_adapter_tables(auth_db, monkeypatch) -> None:
    monkeypatch.setenv("OPSNB_TEST_AUTH_DB", auth_db[1])
    sessions, linked = auth.check_database("OPSNB_TEST_AUTH_DB")
    assert sessions.empty and linked.empty
    assert [f.title for f in findings.all_findings()] == ["no Prisma adapter tables"]


def test_database_unreachable_is_p2(monkeypatch) -> None:
    monkeypatch.setenv("OPSNB_TEST_AUTH_DB", "postgresql://nobody:pw@127.0.0.1:9/none?connect_timeout=2")
    auth.check_database("OPSNB_TEST_AUTH_DB")
    assert [f.severity for f in findings.all_findings()] == ["P2"]


def test_check_session_token_outcomes(v5_app, monkeypatch) -> None:
    """Against an app that accepts no session (answers null): decoded-but-rejected, expired, secret changed, skipped."""
    monkeypatch.setenv("OPSNB_TEST_SECRET", SECRET)
    cookie = "authjs.session-token"  # v5 on http
    monkeypatch.setenv("OPSNB_TEST_TOKEN", make_token(SECRET, "v5", cookie))
    table, _ = auth.check_session_token(v5_app, "OPSNB_TEST_TOKEN", "OPSNB_TEST_SECRET")
    values = dict(zip(table["field"], table["value"], strict=True))
    assert values["decrypts with $OPSNB_TEST_SECRET"] == "yes" and values["version"] == "v5"
    assert values["format"] == "JWE alg=dir enc=A256CBC-HS512 (v5)" and values["email"] == "j***@example.com"
    assert [(f.severity, f.title) for f in findings.all_findings()] == [
        ("P2", "session token decrypts but the app rejects it")
    ]
    findings.clear()
    monkeypatch.setenv("OPSNB_TEST_TOKEN", make_token(SECRET, "v4", exp_in=-86400))
    auth.check_session_token(v5_app, "OPSNB_TEST_TOKEN", "OPSNB_TEST_SECRET")
    assert [(f.severity, f.title) for f in findings.all_findings()] == [("P3", "session token expired")]
    findings.clear()
    monkeypatch.setenv("OPSNB_TEST_SECRET", OTHER)
    auth.check_session_token(v5_app, "OPSNB_TEST_TOKEN", "OPSNB_TEST_SECRET")
    [found] = findings.all_findings()
    assert found.severity == "P1" and found.title.endswith("the secret changed")
    assert "does not accept" in found.detail
    findings.clear()
    table, _ = auth.check_session_token(v5_app, "", "OPSNB_TEST_SECRET")
    assert table.empty and [f.title for f in findings.all_findings()] == ["session token check skipped"]
