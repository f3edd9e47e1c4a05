"""Stripe API stand-in: events, webhook endpoints, payment intents, event resend.

Responses have the real API's shapes so the official `stripe` SDK (with `api_base` pointed here) parses
them. State lives in `<state>/stripe.json`; fields starting with `_` are internal and never returned.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import hmac
import json
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .store import JsonStore

API_VERSION = "2024-06-20"
ENABLED_EVENTS = ["payment_intent.succeeded", "payment_intent.payment_failed", "checkout.session.completed"]
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def _rid(rng: random.Random, prefix: str, n: int = 24) -> str:
    return prefix + "".join(rng.choices(_ALNUM, k=n))


def sign_payload(payload: str, secret: str, timestamp: int | None = None) -> str:
    """A `Stripe-Signature` header value for payload, as Stripe computes it."""
    ts = int(timestamp if timestamp is not None else time.time())
    mac = hmac.new(secret.encode(), f"{ts}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


def public(obj: Any) -> Any:
    """Copy of obj without internal `_` keys."""
    if isinstance(obj, dict):
        return {k: public(v) for k, v in obj.items() if not k.startswith("_")}
    if isinstance(obj, list):
        return [public(v) for v in obj]
    return obj


# --- state ----------------------------------------------------------------------------------------


def payment_intent(
    rng: random.Random,
    pi_id: str,
    order_id: str,
    amount: int,
    created: int,
    status: str,
    decline: tuple[str, str, str] | None = None,
) -> dict:
    """A PaymentIntent object."""
    charge = _rid(rng, "ch_3") if status == "succeeded" else None
    error = None
    if decline:
        code, decline_code, message = decline
        error = {
            "code": code,
            "decline_code": decline_code,
            "doc_url": f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}",
            "message": message,
            "payment_method": {"id": _rid(rng, "pm_1"), "object": "payment_method", "type": "card"},
            "type": "card_error",
        }
    return {
        "id": pi_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_received": amount if status == "succeeded" else 0,
        "automatic_payment_methods": {"allow_redirects": "always", "enabled": True},
        "canceled_at": None,
        "capture_method": "automatic_async",
        "client_secret": f"{pi_id}_secret_{_rid(rng, '', 25)}",
        "confirmation_method": "automatic",
        "created": created,
        "currency": "usd",
        "customer": None,
        "description": f"Order {order_id}",
        "last_payment_error": error,
        "latest_charge": charge,
        "livemode": False,
        "metadata": {"orderId": order_id},
        "payment_method": None,
        "payment_method_types": ["card"],
        "status": status,
    }


def event(rng: random.Random, etype: str, obj: dict, created: int, endpoint_id: str | None) -> dict:
    """An Event object; `_deliveries` records webhook attempts (pending until one succeeds)."""
    subscribed = endpoint_id is not None and etype in ENABLED_EVENTS
    return {
        "id": _rid(rng, "evt_3"),
        "object": "event",
        "api_version": API_VERSION,
        "created": created,
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1 if subscribed else 0,
        "request": {"id": _rid(rng, "req_", 14), "idempotency_key": None},
        "type": etype,
        "_endpoint": endpoint_id if subscribed else None,
        "_deliveries": [],
    }


def record_delivery(evt: dict, ok: bool, status: int, at: int, message: str = "") -> None:
    """Note one webhook attempt on evt and update pending_webhooks."""
    evt["_deliveries"].append({"at": at, "ok": ok, "status": status, "message": message[:200]})
    if evt.get("_endpoint"):
        evt["pending_webhooks"] = 0 if any(d["ok"] for d in evt["_deliveries"]) else 1


def build_state(facts: dict, *, app_url: str, webhook_secret: str, old_secret: str, stuck_on: bool) -> dict:
    """Stripe's side of the seeded shop: PIs and events of the last 2 days, the endpoint, deliveries."""
    from .seed import DECLINES, ROTATION_MINUTES_AGO

    rng = random.Random(5_150)
    now = int(facts["now"])
    rotated = now - ROTATION_MINUTES_AGO * 60
    endpoint = {
        "id": _rid(rng, "we_1"),
        "object": "webhook_endpoint",
        "api_version": API_VERSION,
        "application": None,
        "created": now - 400 * 86400,
        "description": "Production shop",
        "enabled_events": list(ENABLED_EVENTS),
        "livemode": False,
        "metadata": {},
        "status": "enabled",
        "url": app_url + "/api/webhooks/stripe",
        "_secret": webhook_secret,
        "_previous_secret": old_secret,
        "_rolled_at": rotated,
    }
    pis: dict[str, dict] = {}
    events: list[dict] = []
    webhook_failures: list[int] = []

    def add_success(order: dict, stuck: bool) -> None:
        created = order["created"]
        pi = payment_intent(
            rng, order["payment_intent"], order["id"], order["total_cents"], created, "succeeded"
        )
        pis[pi["id"]] = pi
        created_pi = dict(pi, status="requires_payment_method", amount_received=0, latest_charge=None)
        events.append(event(rng, "payment_intent.created", created_pi, created, endpoint["id"]))
        for etype, obj in (
            ("payment_intent.succeeded", pi),
            (
                "checkout.session.completed",
                {
                    "id": _rid(rng, "cs_test_a1", 40),
                    "object": "checkout.session",
                    "amount_total": pi["amount"],
                    "currency": "usd",
                    "mode": "payment",
                    "payment_intent": pi["id"],
                    "payment_status": "paid",
                    "status": "complete",
                    "metadata": {"orderId": order["id"]},
                    "created": created,
                },
            ),
        ):
            evt = event(rng, etype, obj, created + 3, endpoint["id"])
            if stuck and stuck_on:
                for delay in (2, 300, 1800):
                    if created + delay < now:
                        record_delivery(
                            evt,
                            False,
                            400,
                            created + delay,
                            "No signatures found matching the expected signature for payload",
                        )
                        webhook_failures.append(created + delay)
            else:
                record_delivery(evt, True, 200, created + 4)
            events.append(evt)

    for order in facts["recent"]:
        if order["status"] in ("paid", "shipped", "delivered", "refunded"):
            add_success(order, stuck=False)
    for order in facts["planted"]:
        if order["kind"] == "stuck":
            add_success(order, stuck=True)
        elif order["kind"] == "failed":
            decline = DECLINES[order["decline"]]
            pi = payment_intent(
                rng,
                order["payment_intent"],
                order["id"],
                order["total_cents"],
                order["created"],
                "requires_payment_method",
                decline,
            )
            pis[pi["id"]] = pi
            evt = event(rng, "payment_intent.payment_failed", pi, order["created"] + 5, endpoint["id"])
            record_delivery(evt, True, 200, order["created"] + 6)
            events.append(evt)
        else:  # an open checkout: the customer has not paid yet
            pi = payment_intent(
                rng,
                order["payment_intent"],
                order["id"],
                order["total_cents"],
                order["created"],
                "requires_payment_method",
            )
            pis[pi["id"]] = pi
            events.append(event(rng, "payment_intent.created", pi, order["created"], endpoint["id"]))
    events.sort(key=lambda e: (e["created"], e["id"]), reverse=True)
    return {
        "endpoint": endpoint,
        "payment_intents": pis,
        "events": events,
        "_webhook_failures": webhook_failures,
    }


def replant_stuck(state: dict, planted: list[dict]) -> None:
    """stuck-orders switched on again: the stuck orders' events are undelivered once more."""
    stuck_pis = {o["payment_intent"] for o in planted if o["kind"] == "stuck"}
    now = int(time.time())
    for evt in state["events"]:
        obj = evt["data"]["object"]
        pi = obj.get("id") if obj.get("object") == "payment_intent" else obj.get("payment_intent")
        if pi in stuck_pis and evt.get("_endpoint"):
            evt["_deliveries"] = []
            record_delivery(
                evt, False, 400, now, "No signatures found matching the expected signature for payload"
            )


# --- API ------------------------------------------------------------------------------------------


def _error(status: int, message: str, etype: str = "invalid_request_error", **extra: Any) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": etype, **extra}},
        status_code=status,
        headers={"Request-Id": "req_sandbox"},
    )


def _list(url: str, items: list[dict], params: dict[str, list[str]]) -> JSONResponse:
    try:
        limit = int(params.get("limit", ["10"])[0])
    except ValueError:
        return _error(400, "Invalid integer: limit", param="limit")
    if not 1 <= limit <= 100:
        return _error(400, f"This value must be between 1 and 100 (it currently is {limit}).", param="limit")
    after = params.get("starting_after", [None])[0]
    before = params.get("ending_before", [None])[0]
    ids = [i["id"] for i in items]
    if after:
        if after not in ids:
            return _error(400, f"No such object: '{after}'", param="starting_after", code="resource_missing")
        items = items[ids.index(after) + 1 :]
        page = items[:limit]
    elif before:
        if before not in ids:
            return _error(400, f"No such object: '{before}'", param="ending_before", code="resource_missing")
        items = items[: ids.index(before)]
        page = items[-limit:]
    else:
        page = items[:limit]
    return JSONResponse(
        {"object": "list", "data": public(page), "has_more": len(items) > len(page), "url": url}
    )


def _params(request: Request) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        base = key.split("[", 1)[0] if key.startswith(("types[", "expand[")) else key
        out.setdefault(base, []).append(value)
    return out


def _created_filter(items: list[dict], params: dict[str, list[str]]) -> list[dict] | JSONResponse:
    ops = {"gt": int.__gt__, "gte": int.__ge__, "lt": int.__lt__, "lte": int.__le__}
    for key, values in params.items():
        if key == "created":
            bound = int(values[0])
            items = [i for i in items if i["created"] == bound]
        elif key.startswith("created[") and key.endswith("]"):
            op = key[len("created[") : -1]
            if op not in ops:
                return _error(400, f"Received unknown parameter: {key}", param=key)
            try:
                bound = int(values[0])
            except ValueError:
                return _error(400, f"Invalid integer: {values[0]}", param=key)
            items = [i for i in items if ops[op](int(i["created"]), bound)]
    return items


class StripeStandIn:
    """The Stripe API routes over a JsonStore; `deliver` POSTs a signed event to the shop."""

    def __init__(
        self,
        store: JsonStore,
        secret_key: str,
        deliver: Callable[[str, str, str], Awaitable[tuple[int, str]]],
    ):
        self.store = store
        self.secret_key = secret_key
        self.deliver = deliver

    def _auth(self, request: Request) -> JSONResponse | None:
        header = request.headers.get("authorization", "")
        key = ""
        if header.lower().startswith("bearer "):
            key = header[7:].strip()
        elif header.lower().startswith("basic "):
            try:
                key = base64.b64decode(header[6:]).decode().split(":", 1)[0]
            except (ValueError, UnicodeDecodeError):
                key = ""
        if not key:
            return _error(
                401,
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
            )
        if not hmac.compare_digest(key, self.secret_key):
            return _error(401, f"Invalid API Key provided: {key[:8]}{'*' * 8}{key[-4:]}")
        return None

    async def events(self, request: Request) -> JSONResponse:
        if denied := self._auth(request):
            return denied
        params = _params(request)
        items = self.store.load()["events"]
        if "type" in params:
            items = [e for e in items if fnmatch.fnmatchcase(e["type"], params["type"][0])]
        if "types" in params:
            if len(params["types"]) > 20:
                return _error(400, "You may pass at most 20 types.", param="types")
            items = [e for e in items if e["type"] in params["types"]]
        if "delivery_success" in params:
            want = params["delivery_success"][0].lower() == "true"
            items = [
                e for e in items if (e["pending_webhooks"] == 0) == want and (e.get("_endpoint") or want)
            ]
        filtered = _created_filter(items, params)
        if isinstance(filtered, JSONResponse):
            return filtered
        return _list("/v1/events", filtered, params)

    async def event(self, request: Request) -> JSONResponse:
        if denied := self._auth(request):
            return denied
        evt_id = request.path_params["id"]
        for evt in self.store.load()["events"]:
            if evt["id"] == evt_id:
                return JSONResponse(public(evt))
        return _error(404, f"No such event: '{evt_id}'", param="id", code="resource_missing")

    async def retry(self, request: Request) -> JSONResponse:
        """Resend an event to the endpoint (what `stripe events resend` calls)."""
        if denied := self._auth(request):
            return denied
        evt_id = request.path_params["id"]
        form = _form(await request.body())
        state = self.store.load()
        endpoint = state["endpoint"]
        wanted = form.get("webhook_endpoint")
        if wanted and wanted != endpoint["id"]:
            return _error(
                404,
                f"No such webhook_endpoint: '{wanted}'",
                param="webhook_endpoint",
                code="resource_missing",
            )
        evt = next((e for e in state["events"] if e["id"] == evt_id), None)
        if evt is None:
            return _error(404, f"No such event: '{evt_id}'", param="id", code="resource_missing")
        status, body = await self.deliver(
            json.dumps(public(evt), indent=2), endpoint["url"], endpoint["_secret"]
        )
        with self.store.update() as data:
            for stored in data["events"]:
                if stored["id"] == evt_id:
                    stored.setdefault("_endpoint", endpoint["id"])
                    record_delivery(stored, 200 <= status < 300, status, int(time.time()), body)
                    evt = stored
        return JSONResponse(public(evt))

    async def endpoints(self, request: Request) -> JSONResponse:
        if denied := self._auth(request):
            return denied
        return _list("/v1/webhook_endpoints", [self.store.load()["endpoint"]], _params(request))

    async def endpoint(self, request: Request) -> JSONResponse:
        if denied := self._auth(request):
            return denied
        endpoint = self.store.load()["endpoint"]
        if request.path_params["id"] != endpoint["id"]:
            return _error(
                404, f"No such webhook endpoint: '{request.path_params['id']}'", code="resource_missing"
            )
        return JSONResponse(public(endpoint))

    async def payment_intents(self, request: Request) -> JSONResponse:
        if denied := self._auth(request):
            return denied
        params = _params(request)
        items = sorted(
            self.store.load()["payment_intents"].values(), key=lambda p: (p["created"], p["id"]), reverse=True
        )
        filtered = _created_filter(items, params)
        if isinstance(filtered, JSONResponse):
            return filtered
        return _list("/v1/payment_intents", filtered, params)

    async def payment_intent(self, request: Request) -> JSONResponse:
        if denied := self._auth(request):
            return denied
        pi = self.store.load()["payment_intents"].get(request.path_params["id"])
        if pi is None:
            return _error(
                404,
                f"No such payment_intent: '{request.path_params['id']}'",
                param="intent",
                code="resource_missing",
            )
        return JSONResponse(public(pi))

    async def confirm(self, request: Request) -> JSONResponse:
        """Confirm a PaymentIntent (test card succeeds): emits payment_intent.succeeded and delivers it."""
        if denied := self._auth(request):
            return denied
        pi_id = request.path_params["id"]
        rng = random.Random()
        with self.store.update() as data:
            pi = data["payment_intents"].get(pi_id)
            if pi is None:
                return _error(
                    404, f"No such payment_intent: '{pi_id}'", param="intent", code="resource_missing"
                )
            if pi["status"] == "succeeded":
                return _error(
                    400,
                    "This PaymentIntent's status is succeeded, so it cannot be confirmed.",
                    code="payment_intent_unexpected_state",
                )
            pi.update(
                status="succeeded",
                amount_received=pi["amount"],
                latest_charge=_rid(rng, "ch_3"),
                last_payment_error=None,
            )
            evt = event(rng, "payment_intent.succeeded", dict(pi), int(time.time()), data["endpoint"]["id"])
            data["events"].insert(0, evt)
            endpoint = dict(data["endpoint"])
            result = dict(pi)
        status, body = await self.deliver(
            json.dumps(public(evt), indent=2), endpoint["url"], endpoint["_secret"]
        )
        with self.store.update() as data:
            for stored in data["events"]:
                if stored["id"] == evt["id"]:
                    record_delivery(stored, 200 <= status < 300, status, int(time.time()), body)
        return JSONResponse(public(result))

    async def not_found(self, request: Request) -> JSONResponse:
        return _error(404, f"Unrecognized request URL ({request.method}: {request.url.path}).")

    def app(self) -> Starlette:
        """The ASGI app."""
        return Starlette(
            routes=[
                Route("/v1/events", self.events),
                Route("/v1/events/{id}", self.event),
                Route("/v1/events/{id}/retry", self.retry, methods=["POST"]),
                Route("/v1/webhook_endpoints", self.endpoints),
                Route("/v1/webhook_endpoints/{id}", self.endpoint),
                Route("/v1/payment_intents", self.payment_intents),
                Route("/v1/payment_intents/{id}", self.payment_intent),
                Route("/v1/payment_intents/{id}/confirm", self.confirm, methods=["POST"]),
                Route("/{path:path}", self.not_found, methods=["GET", "POST", "DELETE"]),
            ]
        )


def _form(body: bytes) -> dict[str, str]:
    from urllib.parse import parse_qsl

    return dict(parse_qsl(body.decode(errors="replace")))


def new_payment_intent(store: JsonStore, order_id: str, amount: int) -> dict:
    """Create a PaymentIntent for a checkout (and its payment_intent.created event); returns it."""
    rng = random.Random()
    pi = payment_intent(
        rng, _rid(rng, "pi_3", 21), order_id, amount, int(time.time()), "requires_payment_method"
    )
    with store.update() as data:
        data["payment_intents"][pi["id"]] = pi
        data["events"].insert(
            0, event(rng, "payment_intent.created", pi, pi["created"], data["endpoint"]["id"])
        )
    return pi
