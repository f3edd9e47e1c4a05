"""Unit tests of opsnb.checks.payments: the signer against the official SDK, the pure diagnoses, and the
HTTP-facing functions against small real servers on 127.0.0.1 (an app that verifies with the SDK, and a
Stripe-shaped API)."""

from __future__ import annotations

import email.utils
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import stripe

from opsnb.checks import findings
from opsnb.checks import payments as sw
from opsnb.checks.secrets import Secret

# stripe's HTTPXClient posts form bodies with httpx's deprecated data=bytes; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")

SECRET = "whsec_unit0123456789abcdefUNIT"
KEY = "sk_test_unit51HqLyjWDarjtT1zdp7dcUNIT"


@pytest.fixture(autouse=True)
def fresh_findings() -> Iterator[None]:
    findings.clear()
    yield
    findings.clear()


def by_check(check: str) -> list[findings.Finding]:
    return [f for f in findings.all_findings() if f.check == check]


# --------------------------------------------------------------------------- signer vs the SDK


def test_signer_is_accepted_by_construct_event():
    body = sw.test_event(livemode=False)
    header = sw.sign(body, Secret("S", SECRET))
    event = stripe.Webhook.construct_event(body, header, SECRET)
    assert event["type"] == sw.PROBE_EVENT_TYPE
    assert event["livemode"] is False
    t, v1 = header.split(",")
    assert t.startswith("t=") and v1.startswith("v1=") and len(v1) == 3 + 64


def test_signer_matches_hmac_definition():
    import hashlib
    import hmac

    header = sw.sign('{"a":1}', SECRET, timestamp=1_700_000_000)
    expected = hmac.new(SECRET.encode(), b'1700000000.{"a":1}', hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"


def test_wrong_secret_and_old_timestamp_are_told_apart_by_the_sdk():
    body = sw.test_event(livemode=False)
    with pytest.raises(stripe.SignatureVerificationError, match="No signatures found matching"):
        stripe.Webhook.construct_event(body, sw.sign(body, "whsec_other"), SECRET)
    with pytest.raises(stripe.SignatureVerificationError, match="No signatures found matching"):
        stripe.Webhook.construct_event(body, sw.sign(body, SECRET + "\n"), SECRET)
    old = int(time.time()) - sw.TOLERANCE_S - 60
    with pytest.raises(stripe.SignatureVerificationError, match="tolerance"):
        stripe.Webhook.construct_event(body, sw.sign(body, SECRET, timestamp=old), SECRET)


# --------------------------------------------------------------------------- keys, secret shape


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
    ],
)
def test_key_mode(key, mode):
    assert sw.key_mode(Secret("K", key)) == mode


def test_whitespace_reports_shape_not_value():
    shape = sw.whitespace(Secret("W", " " + SECRET + "\n"))
    assert shape == {
        "leading_whitespace": True,
        "trailing_whitespace": True,
        "whsec_prefix": True,
        "length": len(SECRET) + 2,
    }
    assert SECRET not in repr(shape)
    assert sw.whitespace(Secret("W", SECRET))["trailing_whitespace"] is False
    assert sw.whitespace(Secret("W", "sk_test_x"))["whsec_prefix"] is False


def test_mode_expectation():
    assert sw.diagnose_mode("sk_test_x", "live").severity == "P1"
    assert "mismatch" in sw.diagnose_mode("sk_test_x", "live").title
    assert sw.diagnose_mode("sk_live_x", "live").severity == "info"
    assert sw.diagnose_mode("sk_test_x", "").severity == "info"
    assert sw.diagnose_mode("nonsense", "").severity == "P2"


def test_client_is_configured_per_instance_not_globally():
    before = (stripe.api_key, stripe.api_base)
    api = sw.client("http://127.0.0.1:9/", Secret("K", KEY + "\n"))
    assert isinstance(api, stripe.StripeClient)
    assert (stripe.api_key, stripe.api_base) == before


# --------------------------------------------------------------------------- pure diagnoses


@pytest.mark.parametrize(
    "status,body,severity,word",
    [
        (400, "Webhook Error: No Stripe-Signature header value was provided.", "info", "signature error"),
        (400, "Bad Request", "info", "400"),
        (200, '{"received": true}', "P1", "accepts unsigned"),
        (204, "", "P1", "accepts unsigned"),
        (308, "", "P1", "redirects"),
        (401, "", "P1", "refuses"),
        (404, "Not Found", "P1", "missing"),
        (405, "Method Not Allowed", "P1", "missing"),
        (500, "Internal Server Error", "P1", "crashes"),
        (None, "", "P1", "unreachable"),
        (418, "teapot", "P2", "418"),
    ],
)
def test_diagnose_unsigned(status, body, severity, word):
    v = sw.diagnose_unsigned(status, body, "ConnectError: refused" if status is None else "")
    assert v.severity == severity
    assert word in v.title


@pytest.mark.parametrize(
    "skew,severity", [(0.4, "info"), (-0.4, "info"), (299, "info"), (301, "P1"), (-301, "P3"), (None, "P3")]
)
def test_diagnose_clock(skew, severity):
    v = sw.diagnose_clock(skew)
    assert v.severity == severity
    assert "-0 s" not in v.title


def test_clock_skew_from_date_header():
    class R:
        headers = {"date": email.utils.formatdate(1_700_000_600, usegmt=True)}

    assert sw.clock_skew_s(R(), now=1_700_000_000) == 600
    R.headers = {}
    assert sw.clock_skew_s(R(), now=1_700_000_000) is None
    assert sw.clock_skew_s(None) is None


CLEAN = {"leading_whitespace": False, "trailing_whitespace": False, "whsec_prefix": True, "length": 30}
TRAILING = {**CLEAN, "trailing_whitespace": True}


def attempt(label, status, answer=""):
    return {
        "secret": label,
        "status": status,
        "accepted": status is not None and 200 <= status < 300,
        "answer": answer,
    }


def test_diagnose_signature_accepted():
    out = sw.diagnose_signature([attempt("as configured", 200)], CLEAN)
    assert [v.severity for v in out] == ["info"]


def test_diagnose_signature_wrong_secret():
    ans = "Webhook Error: No signatures found matching the expected signature for payload"
    (v,) = sw.diagnose_signature([attempt("as configured", 400, ans)], CLEAN)
    assert v.severity == "P1" and "wrong webhook secret" in v.title
    assert "stripe listen" in v.detail


def test_diagnose_signature_clock_skew():
    ans = "Webhook Error: Timestamp outside the tolerance zone (1700000000)"
    (v,) = sw.diagnose_signature([attempt("as configured", 400, ans)], CLEAN)
    assert v.severity == "P1" and "clock skew" in v.title


def test_diagnose_signature_whitespace_in_app():
    out = sw.diagnose_signature(
        [attempt("as configured", 200), attempt("whitespace trimmed", 400, "No sig")], TRAILING
    )
    assert [(v.severity, v.title) for v in out] == [("P1", "Whitespace in the app's webhook secret")]
    assert "trailing" in out[0].detail


def test_diagnose_signature_whitespace_in_our_copy_only():
    out = sw.diagnose_signature(
        [attempt("as configured", 400, "No sig"), attempt("whitespace trimmed", 200)], TRAILING
    )
    assert [v.severity for v in out] == ["P3"]


def test_diagnose_signature_not_whsec_and_unreachable():
    out = sw.diagnose_signature(
        [attempt("as configured", None, "ConnectError")], {**CLEAN, "whsec_prefix": False}
    )
    assert [v.severity for v in out] == ["P2", "P1"]
    assert out[1].title == "Signed test event not delivered"


APP = "https://shop.example.com"
GOOD = {
    "id": "we_1",
    "url": APP + "/api/webhooks/stripe",
    "status": "enabled",
    "livemode": True,
    "enabled_events": ["payment_intent.succeeded", "payment_intent.payment_failed", "charge.refunded"],
}
HANDLED = ["payment_intent.succeeded", "payment_intent.payment_failed"]


def test_endpoint_healthy():
    (v,) = sw.endpoint_findings([GOOD], APP + "/", HANDLED, "live")
    assert v.severity == "info" and "we_1" in v.detail


def test_endpoint_wildcard_subscription_counts():
    (v,) = sw.endpoint_findings([{**GOOD, "enabled_events": ["*"]}], APP, HANDLED, "live")
    assert v.severity == "info"


def test_endpoint_trailing_slash_is_a_redirect():
    (v,) = sw.endpoint_findings([{**GOOD, "url": GOOD["url"] + "/"}], APP, HANDLED, "live")
    assert v.severity == "P1" and "differs" in v.title


def test_endpoint_missing_entirely():
    (v,) = sw.endpoint_findings([{**GOOD, "url": "https://old.example.com/hook"}], APP, HANDLED, "live")
    assert v.severity == "P1" and "No webhook endpoint" in v.title and "old.example.com" in v.detail
    (v,) = sw.endpoint_findings([], APP, HANDLED, "live")
    assert "endpoints: none" in v.detail


def test_endpoint_disabled_unsubscribed_and_other_mode():
    ep = {**GOOD, "status": "disabled", "enabled_events": ["charge.refunded"], "livemode": False}
    titles = {v.title: v for v in sw.endpoint_findings([ep], APP, HANDLED, "live")}
    assert "Webhook endpoint we_1 is disabled" in titles
    subscribed = titles["Webhook endpoint we_1 not subscribed to events the app handles"]
    assert subscribed.evidence == HANDLED
    assert "Test vs live mismatch: test-mode endpoint, live-mode key" in titles
    assert all(v.severity == "P1" for v in titles.values())


def test_delivery_findings():
    (v,) = sw.delivery_findings([], "test", 24)
    assert v.severity == "info"
    failed = [
        {"id": "evt_1", "type": "payment_intent.succeeded", "livemode": False, "pending_webhooks": 1},
        {"id": "evt_2", "type": "checkout.session.completed", "livemode": False, "pending_webhooks": 1},
        {"id": "evt_3", "type": "customer.updated", "livemode": False, "pending_webhooks": 0},
    ]
    out = sw.delivery_findings(failed, "test", 24)
    assert [(v.severity, v.title) for v in out] == [
        ("P1", "2 payment events not delivered to the app"),
        ("P2", "1 other events not delivered to the app"),
    ]
    assert "evt_1" in out[0].detail and [e["id"] for e in out[0].evidence] == ["evt_1", "evt_2"]
    out = sw.delivery_findings([{**failed[0], "livemode": True}], "test", 24)
    assert out[-1].title == "Test vs live mismatch: events of the other mode"


@pytest.mark.parametrize(
    "status,error,diagnosis",
    [
        ("succeeded", "", "missed webhook"),
        ("processing", "", "payment in progress"),
        ("requires_payment_method", "", "awaiting customer"),
        ("requires_action", "", "awaiting customer"),
        ("canceled", "", "abandoned (canceled)"),
        (
            None,
            "InvalidRequestError: No such payment_intent: 'pi_1'; a similar object exists in live mode, but a test mode key was used to make this request.",
            "test/live mismatch",
        ),
        (None, "InvalidRequestError: No such payment_intent: 'pi_1'", "lookup failed"),
        (None, "", "no PaymentIntent"),
    ],
)
def test_diagnose_order(status, error, diagnosis):
    assert sw.diagnose_order("pending", status, error) == diagnosis


def test_stuck_findings():
    (v,) = sw.stuck_findings([], 15)
    assert v.severity == "info"
    rows = [
        {"order_id": "ord_1", "payment_intent": "pi_1", "diagnosis": "missed webhook", "error": ""},
        {"order_id": "ord_2", "payment_intent": "pi_2", "diagnosis": "missed webhook", "error": ""},
        {"order_id": "ord_3", "payment_intent": "pi_3", "diagnosis": "awaiting customer", "error": ""},
        {"order_id": "ord_4", "payment_intent": "pi_4", "diagnosis": "test/live mismatch", "error": "x"},
        {"order_id": "ord_5", "payment_intent": None, "diagnosis": "no PaymentIntent", "error": ""},
    ]
    out = sw.stuck_findings(rows, 15)
    assert [v.severity for v in out] == ["P1", "P1", "P2", "info"]
    assert "ord_1, ord_2" in out[0].detail and "missed webhook" in out[0].title
    assert out[0].evidence == [
        {"order": "ord_1", "payment_intent": "pi_1"},
        {"order": "ord_2", "payment_intent": "pi_2"},
    ]


def test_decline_counts():
    import pandas as pd

    df = pd.DataFrame({"decline_code": ["insufficient_funds", None, "insufficient_funds", "generic_decline"]})
    counts = sw.decline_counts(df)
    assert counts.to_dict(orient="records") == [
        {"decline_code": "insufficient_funds", "payments": 2},
        {"decline_code": "unknown", "payments": 1},
        {"decline_code": "generic_decline", "payments": 1},
    ]
    assert list(sw.decline_counts(pd.DataFrame(columns=["decline_code"])).columns) == [
        "decline_code",
        "payments",
    ]


# --------------------------------------------------------------------------- small real servers


class Server:
    """A ThreadingHTTPServer on a free port running `handler` until the test ends."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def app_handler(app_secret: str, clock_offset_s: float = 0.0) -> type[BaseHTTPRequestHandler]:
    """An app whose webhook route verifies with the SDK and `app_secret`; its clock runs `clock_offset_s` off."""

    class App(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def date_time_string(self, timestamp=None):
            return email.utils.formatdate(time.time() + clock_offset_s, usegmt=True)

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            if self.path != "/api/webhooks/stripe":
                return self.answer(404, "Not Found")
            try:
                event = stripe.Webhook.construct_event(body, self.headers.get("stripe-signature"), app_secret)
            except stripe.SignatureVerificationError as exc:
                return self.answer(400, f"Webhook Error: {exc.user_message}")
            return self.answer(200, json.dumps({"received": True, "type": event["type"]}))

        def answer(self, status, text):
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return App


@pytest.fixture
def app():
    servers: list[Server] = []

    def start(app_secret: str, clock_offset_s: float = 0.0) -> str:
        servers.append(Server(app_handler(app_secret, clock_offset_s)))
        return servers[-1].url

    yield start
    for s in servers:
        s.close()


def test_check_route_on_a_healthy_app(app):
    url = app(SECRET)
    table = sw.check_route(url)
    assert table.loc[0, "status"] == 400
    assert abs(table.loc[0, "clock_skew_s"]) < 3
    assert [f.severity for f in by_check("stripe.route")] == ["info", "info"]


def test_check_route_sees_clock_skew(app):
    url = app(SECRET, clock_offset_s=900)
    sw.check_route(url)
    ahead = [f for f in by_check("stripe.route") if f.severity == "P1"]
    assert len(ahead) == 1 and "ahead: signatures look expired" in ahead[0].title


def test_check_route_missing_route(app):
    url = app(SECRET)
    sw.check_route(url + "/nope")
    assert any(f.severity == "P1" and "missing" in f.title for f in by_check("stripe.route"))


@pytest.mark.parametrize(
    "app_secret,our_secret,severities,title_word",
    [
        (SECRET, SECRET, ["info"], "accepts"),
        ("whsec_rotated_old_value", SECRET, ["P1"], "wrong webhook secret"),
        (SECRET + "\n", SECRET + "\n", ["P1"], "Whitespace in the app's"),
        (SECRET, " " + SECRET, ["P3"], "this environment's copy"),
    ],
    ids=["same-secret", "rotated-secret", "whitespace-in-app", "whitespace-in-our-copy"],
)
def test_check_signature_tells_causes_apart(app, app_secret, our_secret, severities, title_word):
    url = app(app_secret)
    attempts = sw.check_signature(url, Secret("W", our_secret), Secret("K", KEY))
    got = by_check("stripe.signature")
    assert [f.severity for f in got] == severities
    assert title_word in got[-1].title
    assert SECRET.strip() not in attempts.to_csv()


def test_diagnose_signature_on_a_real_expired_signature(app):
    url = app(SECRET)  # the app's SDK sees a timestamp beyond the tolerance, as when its clock runs ahead
    body = sw.test_event(False, int(time.time()) - 900)
    found = sw.post_signed(url, body, sw.sign(body, SECRET, int(time.time()) - 900))
    (v,) = sw.diagnose_signature(
        [{"secret": "as configured", "status": found.status, "accepted": found.ok, "answer": found.body}],
        CLEAN,
    )
    assert v.severity == "P1" and "clock skew" in v.title


# A Stripe-shaped API: just enough of /v1 for the functions under test.


class FakeStripe:
    def __init__(self):
        self.requests: list[tuple[str, str, dict]] = []
        self.events = [
            {
                "id": f"evt_{i:03d}",
                "object": "event",
                "type": "payment_intent.payment_failed" if i % 2 else "payment_intent.succeeded",
                "created": 1_700_000_000 + i,
                "livemode": False,
                "pending_webhooks": 1,
                "data": {
                    "object": {
                        "id": f"pi_{i:03d}",
                        "object": "payment_intent",
                        "amount": 1000 + i,
                        "metadata": {"orderId": f"ord_{i}"},
                        "last_payment_error": {"code": "card_declined", "decline_code": "insufficient_funds"}
                        if i % 2
                        else None,
                    }
                },
            }
            for i in range(150)
        ]
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def reply(self, status, obj):
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def error(self, status, message, code="resource_missing"):
                self.reply(
                    status, {"error": {"type": "invalid_request_error", "code": code, "message": message}}
                )

            def do_GET(self):
                parts = urlsplit(self.path)
                q = parse_qs(parts.query)
                fake.requests.append(("GET", parts.path, q))
                if self.headers.get("authorization") != f"Bearer {KEY}":
                    return self.error(401, "Invalid API Key provided: sk_test_****UNIT", code=None)
                if parts.path == "/v1/events":
                    items = fake.events
                    if "starting_after" in q:
                        ids = [e["id"] for e in items]
                        items = items[ids.index(q["starting_after"][0]) + 1 :]
                    limit = int(q.get("limit", ["10"])[0])
                    page = items[:limit]
                    return self.reply(
                        200,
                        {"object": "list", "data": page, "has_more": len(items) > limit, "url": "/v1/events"},
                    )
                if parts.path == "/v1/payment_intents/pi_live":
                    return self.error(
                        404,
                        "No such payment_intent: 'pi_live'; a similar object exists in live mode, "
                        "but a test mode key was used to make this request.",
                    )
                if parts.path == "/v1/payment_intents/pi_ok":
                    return self.reply(
                        200,
                        {"id": "pi_ok", "object": "payment_intent", "status": "succeeded", "livemode": False},
                    )
                return self.error(404, f"Unrecognized request URL (GET: {parts.path})")

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
                fake.requests.append(("POST", self.path, parse_qs(body)))
                if self.path == "/v1/events/evt_000/retry":
                    return self.reply(200, fake.events[0])
                return self.error(404, "No such event: 'evt_gone'")

        self.server = Server(Handler)
        self.url = self.server.url


@pytest.fixture
def fake_stripe():
    fake = FakeStripe()
    yield fake
    fake.server.close()


def test_events_pages_and_filters(fake_stripe):
    api = sw.client(fake_stripe.url, Secret("K", KEY))
    df = sw.events(api, since=1_700_000_000, until=1_700_009_999, delivery_success=False, types=["a", "b"])
    assert len(df) == 150  # two pages through auto-paging
    assert df.loc[1, "decline_code"] == "insufficient_funds" and df.loc[0, "order_id"] == "ord_0"
    first = fake_stripe.requests[0][2]
    assert first["created[gte]"] == ["1700000000"] and first["created[lte]"] == ["1700009999"]
    assert first["delivery_success"] == ["false"] and first["limit"] == ["100"]
    assert first["types[0]"] == ["a"] and first["types[1]"] == ["b"]
    assert fake_stripe.requests[1][2]["starting_after"] == ["evt_099"]
    assert len(sw.events(api, since=0, limit=5)) == 5


def test_payment_intent_lookup_and_mode_mismatch(fake_stripe):
    api = sw.client(fake_stripe.url, Secret("K", KEY))
    assert sw.payment_intent(api, "pi_ok")["stripe_status"] == "succeeded"
    live = sw.payment_intent(api, "pi_live")
    assert live["stripe_status"] is None
    assert sw.diagnose_order("pending", live["stripe_status"], live["error"]) == "test/live mismatch"


def test_bad_key_error_is_one_scrubbed_line(fake_stripe):
    from opsnb.checks.secrets import register

    wrong = "sk_test_wrongkey_0123456789"
    register(wrong, "WRONG_KEY")
    api = sw.client(fake_stripe.url, Secret("K", wrong))
    row = sw.payment_intent(api, "pi_ok")
    assert row["error"].startswith("AuthenticationError") and "\n" not in row["error"]
    assert wrong not in row["error"]


def test_resend_posts_retry_with_endpoint(fake_stripe):
    api = sw.client(fake_stripe.url, Secret("K", KEY))
    table = sw.resend(api, ["evt_000", "evt_gone"], "we_123")
    assert table.to_dict(orient="records")[0] == {"event": "evt_000", "resent": True, "error": ""}
    assert table.loc[1, "resent"] == False  # noqa: E712
    assert "No such event" in table.loc[1, "error"]
    posts = [r for r in fake_stripe.requests if r[0] == "POST"]
    assert posts[0][1] == "/v1/events/evt_000/retry" and posts[0][2] == {"webhook_endpoint": ["we_123"]}


def test_resend_failed_is_blocked_while_signature_fails(fake_stripe, monkeypatch):
    import pandas as pd

    monkeypatch.setenv("OPSNB_HEADLESS", "1")
    monkeypatch.setenv("OPSNB_ALLOW_WRITES", "1")
    api = sw.client(fake_stripe.url, Secret("K", KEY))
    failed = pd.DataFrame(
        {"id": ["evt_000", "evt_x"], "type": ["payment_intent.succeeded", "customer.updated"]}
    )
    endpoints = pd.DataFrame([{**GOOD, "id": "we_123", "url": "http://app/api/webhooks/stripe"}])
    findings.add("P1", "App rejects events signed with the endpoint secret", check="stripe.signature")
    entry = sw.resend_failed(api, failed, endpoints, "http://app")
    assert entry["status"] == "blocked"
    assert not [r for r in fake_stripe.requests if r[0] == "POST"]

    findings.clear()
    findings.ok("App accepts an event signed with the endpoint secret", check="stripe.signature")
    entry = sw.resend_failed(api, failed, endpoints, "http://app")
    assert entry["status"] == "applied" and entry["result"] == "1/1 events resent"
    posts = [r for r in fake_stripe.requests if r[0] == "POST"]
    assert [p[1] for p in posts] == ["/v1/events/evt_000/retry"]  # the non-payment event is not resent
    assert posts[0][2] == {"webhook_endpoint": ["we_123"]}


def test_resend_failed_plans_only_without_allow_writes(fake_stripe, monkeypatch):
    import pandas as pd

    monkeypatch.setenv("OPSNB_HEADLESS", "1")
    monkeypatch.setenv("OPSNB_ALLOW_WRITES", "0")
    api = sw.client(fake_stripe.url, Secret("K", KEY))
    findings.ok("App accepts an event signed with the endpoint secret", check="stripe.signature")
    failed = pd.DataFrame({"id": ["evt_000"], "type": ["payment_intent.succeeded"]})
    entry = sw.resend_failed(api, failed, pd.DataFrame(), "http://app")
    assert entry["status"] == "planned" and "evt_000" in entry["plan"][0]
    assert not [r for r in fake_stripe.requests if r[0] == "POST"]
    assert sw.resend_failed(api, failed.iloc[0:0], pd.DataFrame(), "http://app") is None


# --------------------------------------------------------------------------- logs


def drain_line(ts_ms: int, path: str, status: int, message: str) -> str:
    return json.dumps(
        {
            "id": str(ts_ms),
            "message": message,
            "timestamp": ts_ms,
            "source": "lambda",
            "path": path,
            "statusCode": status,
            "level": "warning" if status >= 400 else "info",
            "proxy": {"method": "POST", "path": path, "statusCode": status},
        }
    )


def test_check_logs_summarises_the_webhook_route(tmp_path):
    now = int(time.time() * 1000)
    mismatch = "Webhook signature verification failed. No signatures found matching the expected signature"
    lines = [
        drain_line(now - 50_000, "/api/webhooks/stripe", 400, mismatch),
        drain_line(now - 40_000, "/api/webhooks/stripe", 400, mismatch),
        drain_line(
            now - 35_000,
            "/api/webhooks/stripe",
            200,
            "Stripe webhook payment_intent.succeeded evt_3AbC handled",
        ),
        drain_line(
            now - 30_000,
            "/api/webhooks/stripe",
            200,
            "Stripe webhook payment_intent.succeeded evt_3XyZ handled",
        ),
        drain_line(
            now - 20_000, "/api/webhooks/stripe", 400, "Webhook Error: No Stripe-Signature header value"
        ),
        drain_line(now - 10_000, "/api/health", 500, "boom"),
        drain_line(now - 3 * 86_400_000, "/api/webhooks/stripe", 500, "outside the window"),
    ]
    (tmp_path / "drain.ndjson").write_text("\n".join(lines) + "\n")
    table = sw.check_logs(str(tmp_path), window_hours=24)
    assert sorted(table["requests"]) == [1, 2, 2]  # event ids do not split a message into rows
    assert "Stripe webhook payment_intent.succeeded evt_… handled" in set(table["message"])
    assert set(table["statusCode"]) == {200, 400}
    (f,) = by_check("stripe.logs")
    assert f.severity == "info" and f.title == "5 webhook requests in the logs"
    assert "HTTP 200: 2, HTTP 400: 3" in f.detail
    assert "latest failure: Webhook signature verification failed" in f.detail  # not our own unsigned probe


def test_check_logs_without_source_or_with_a_missing_one(tmp_path):
    assert sw.check_logs("", 24).empty
    assert sw.check_logs(str(tmp_path / "nope"), 24).empty
    assert [f.detail for f in by_check("stripe.logs")][0].startswith("log source")
    assert sw.webhook_log_summary(__import__("pandas").DataFrame(columns=["path"])).empty


def test_unreachable_database_is_a_finding_not_a_crash(fake_stripe, monkeypatch):
    import pandas as pd

    from opsnb.checks.secrets import register

    register("pw-unit-canary-77", "UNIT_DB")
    monkeypatch.setenv(
        "UNIT_DB_URL", "postgresql://shop_app:pw-unit-canary-77@127.0.0.1:9/shop?connect_timeout=2"
    )
    assert sw.open_database("UNIT_DB_URL") is None
    (f,) = by_check("stripe.orders")
    assert f.severity == "P1" and f.title == "Cannot reach the shop database"
    assert "pw-unit-canary-77" not in f.detail
    api = sw.client(fake_stripe.url, Secret("K", KEY))
    assert sw.check_stuck_orders(None, api).empty
    stuck = pd.DataFrame({"order_id": ["ord_1"], "diagnosis": ["missed webhook"]})
    assert sw.recheck_orders(None, stuck, {"status": "applied"}).empty
