"""Fixtures of the payments checks' tests: the Stripe key and webhook secret in environment variables (the checks
get their names), a shop app whose webhook route verifies with the official SDK, a Stripe-shaped API, both
served over real HTTP on 127.0.0.1, a port nothing listens on, and a shop database with a reader role."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import psycopg
import pytest
import stripe
from checks.asgi_server import serving
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from opsnb.checks import findings

KEY = "sk_test_unit51HqLyjWDarjtT1zdp7dcUNIT"
SECRET = "whsec_unit0123456789abcdefUNIT"
KEY_ENV, SECRET_ENV = "UNIT_STRIPE_KEY", "UNIT_STRIPE_WEBHOOK_SECRET"


@pytest.fixture(autouse=True)
def stripe_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The key and the webhook secret where the checks look them up by name."""
    monkeypatch.setenv(KEY_ENV, KEY)
    monkeypatch.setenv(SECRET_ENV, SECRET)


def conclusion(check_id: str) -> findings.Conclusion:
    """The one conclusion recorded for ``check_id``."""
    (found,) = [c for c in findings.all_conclusions() if c.check == check_id]
    return found


@pytest.fixture
def dead_url() -> str:
    """A base URL on 127.0.0.1 where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --------------------------------------------------------------------------- the shop's webhook route


@dataclass
class ShopApp:
    """The app's webhook route: verifies with the SDK and ``app_secret``; ``tolerance_s=-1`` makes every
    timestamp look expired (an app whose clock runs far ahead); ``answer`` short-cuts the route with a fixed
    status and body."""

    app_secret: str = SECRET
    tolerance_s: int = stripe.Webhook.DEFAULT_TOLERANCE
    answer: tuple[int, str] | None = None
    received: list[str] = field(default_factory=list)

    async def webhook(self, request: Request) -> Response:
        if self.answer:
            return PlainTextResponse(self.answer[1], status_code=self.answer[0])
        payload = await request.body()
        signature = request.headers.get("stripe-signature", "")
        try:
            event = stripe.Webhook.construct_event(payload, signature, self.app_secret, self.tolerance_s)
        except stripe.SignatureVerificationError as exc:
            return PlainTextResponse(f"Webhook Error: {exc.user_message}", status_code=400)
        self.received.append(event["type"])
        return JSONResponse({"received": True})

    def asgi(self) -> Starlette:
        return Starlette(routes=[Route("/api/webhooks/stripe", self.webhook, methods=["POST"])])


@pytest.fixture
def shop_app() -> Iterator[Any]:
    """``start(**ShopApp fields)`` serves a ShopApp and returns its base URL; stopped at the end of the test."""
    with contextlib.ExitStack() as stack:

        def start(**fields: Any) -> str:
            return stack.enter_context(serving(ShopApp(**fields).asgi()))

        yield start


# --------------------------------------------------------------------------- a Stripe-shaped API


def payment_event(i: int, etype: str, decline: str | None = None) -> dict[str, Any]:
    """An Event carrying PaymentIntent pi_<i> of order ord_<i>."""
    error = {"code": "card_declined", "decline_code": decline} if decline else None
    return {
        "id": f"evt_{i:03d}",
        "object": "event",
        "type": etype,
        "created": 1_700_000_000 + i,
        "livemode": False,
        "pending_webhooks": 1,
        "data": {
            "object": {
                "id": f"pi_{i:03d}",
                "object": "payment_intent",
                "amount": 1000 + i,
                "metadata": {"orderId": f"ord_{i}"},
                "last_payment_error": error,
            }
        },
    }


@dataclass
class FakeStripe:
    """Just enough of /v1 for the checks: events (paged, filters recorded), webhook endpoints, PaymentIntents
    (``intents``: id → status; 'pi_live' exists only in live mode) and event retries (``retryable`` ids)."""

    events: list[dict[str, Any]] = field(default_factory=list)
    endpoints: list[dict[str, Any]] = field(default_factory=list)
    intents: dict[str, str] = field(default_factory=dict)
    retryable: set[str] = field(default_factory=set)
    requests: list[tuple[str, str, dict[str, list[str]]]] = field(default_factory=list)
    url: str = ""

    def asgi(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/events", self.list_events),
                Route("/v1/webhook_endpoints", self.list_endpoints),
                Route("/v1/payment_intents/{id}", self.payment_intent),
                Route("/v1/events/{id}/retry", self.retry, methods=["POST"]),
            ]
        )

    async def _authorized(self, request: Request) -> dict[str, list[str]] | None:
        body = (await request.body()).decode()
        params = parse_qs(request.url.query) | parse_qs(body)
        self.requests.append((request.method, request.url.path, params))
        return params if request.headers.get("authorization") == f"Bearer {KEY}" else None

    @staticmethod
    def error(status: int, message: str, code: str | None = "resource_missing") -> JSONResponse:
        return JSONResponse(
            {"error": {"type": "invalid_request_error", "code": code, "message": message}}, status_code=status
        )

    def unauthorized(self) -> JSONResponse:
        return self.error(401, "Invalid API Key provided: sk_test_****UNIT", code=None)

    @staticmethod
    def page(items: list[dict[str, Any]], params: dict[str, list[str]], url: str) -> JSONResponse:
        if "starting_after" in params:
            ids = [i["id"] for i in items]
            items = items[ids.index(params["starting_after"][0]) + 1 :]
        limit = int(params.get("limit", ["10"])[0])
        return JSONResponse(
            {"object": "list", "data": items[:limit], "has_more": len(items) > limit, "url": url}
        )

    async def list_events(self, request: Request) -> Response:
        params = await self._authorized(request)
        if params is None:
            return self.unauthorized()
        types = [v[0] for k, v in params.items() if k.startswith("types[")]
        items = [e for e in self.events if not types or e["type"] in types]
        return self.page(items, params, "/v1/events")

    async def list_endpoints(self, request: Request) -> Response:
        params = await self._authorized(request)
        if params is None:
            return self.unauthorized()
        return self.page(self.endpoints, params, "/v1/webhook_endpoints")

    async def payment_intent(self, request: Request) -> Response:
        if await self._authorized(request) is None:
            return self.unauthorized()
        pi = request.path_params["id"]
        if pi == "pi_live":
            return self.error(
                404,
                "No such payment_intent: 'pi_live'; a similar object exists in live mode, but a test mode key "
                "was used to make this request.",
            )
        if pi not in self.intents:
            return self.error(404, f"No such payment_intent: '{pi}'")
        return JSONResponse(
            {"id": pi, "object": "payment_intent", "status": self.intents[pi], "livemode": False}
        )

    async def retry(self, request: Request) -> Response:
        if await self._authorized(request) is None:
            return self.unauthorized()
        evt = request.path_params["id"]
        if evt not in self.retryable:
            return self.error(404, f"No such event: '{evt}'")
        return JSONResponse({"id": evt, "object": "event", "type": "payment_intent.succeeded"})


@pytest.fixture
def fake_stripe() -> Iterator[FakeStripe]:
    fake = FakeStripe()
    with serving(fake.asgi()) as url:
        fake.url = url
        yield fake


# --------------------------------------------------------------------------- a shop database


@dataclass
class OrdersDb:
    """A database with the shop's "Order" table: ``env`` names the reader role's URL, ``admin`` writes."""

    env: str
    reader_url: str
    admin: str

    def reset(self, rows: list[tuple[str, str, str | None, int]]) -> None:
        """Replace the orders by (id, status, PaymentIntent id, age in minutes) rows."""
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute('TRUNCATE "Order"')
            for order_id, status, intent, minutes in rows:
                conn.execute(
                    'INSERT INTO "Order" ("id", "userId", "status", "total", "stripePaymentIntentId", "createdAt",'
                    ' "updatedAt") VALUES (%s, %s, %s, 12.50, %s, now() - make_interval(mins => %s), now())',
                    (order_id, "usr_1", status, intent, minutes),
                )

    def set_status(self, order_ids: list[str], status: str) -> None:
        """What the app does when it handles a payment event."""
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute('UPDATE "Order" SET "status" = %s WHERE "id" = ANY(%s)', (status, order_ids))


@pytest.fixture(scope="module")
def orders_db(pg_cluster) -> Iterator[OrdersDb]:
    """The shop's "Order" table (as in the sandbox's schema) read through a reader role (pg_read_all_data)."""
    import os

    name, reader, password = "unit_payments", "unit_payments_reader", "unit-payments-reader-pw"
    with psycopg.connect(pg_cluster.dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (reader,)).fetchone():
            conn.execute(f"CREATE ROLE {reader} LOGIN PASSWORD '{password}'")
            conn.execute(f"GRANT pg_read_all_data TO {reader}")
    admin = pg_cluster.dsn_for(name)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            """CREATE TABLE "Order" ("id" TEXT PRIMARY KEY, "userId" TEXT NOT NULL,
                   "status" TEXT NOT NULL DEFAULT 'pending', "total" DECIMAL(10,2) NOT NULL,
                   "stripePaymentIntentId" TEXT, "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
                   "updatedAt" TIMESTAMP(3) NOT NULL)"""
        )
    db = OrdersDb("UNIT_PAYMENTS_DATABASE_URL", pg_cluster.postgres.dsn(reader, password, name), admin)
    os.environ[db.env] = db.reader_url
    try:
        yield db
    finally:
        os.environ.pop(db.env, None)
