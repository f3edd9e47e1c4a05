"""The shop stand-in: the real app's API routes, NextAuth v4 endpoints and the Stripe webhook.

Every request is appended to the Vercel log drain. Faults are read from `<state>/faults.json` on each
request, so switching one takes effect at once.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import queue
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

import psycopg
import stripe
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from . import drain, nextauth
from .seed import USER_ORDERS_QUERY
from .store import JsonStore
from .stripe_api import new_payment_intent

BAD_NEXTAUTH_URL = "http://localhost:3000"
BURST_SLOTS = {2, 5, 8}  # 3 of every 10 checkout/products requests fail while the burst is live


class Db:
    """A tiny connection pool (psycopg, used from worker threads)."""

    def __init__(self, dsn: str, size: int = 4):
        self.dsn = dsn
        self.pool: queue.LifoQueue[psycopg.Connection] = queue.LifoQueue(maxsize=size)

    def _get(self) -> tuple[psycopg.Connection, bool]:
        """A connection and whether it came from the pool (may have been closed by the server since)."""
        try:
            conn = self.pool.get_nowait()
            if not conn.closed:
                return conn, True
        except queue.Empty:
            pass
        return self._connect(), False

    def _connect(self) -> psycopg.Connection:
        return psycopg.connect(self.dsn, autocommit=True, connect_timeout=3, application_name="shop-app")

    def _put(self, conn: psycopg.Connection) -> None:
        try:
            self.pool.put_nowait(conn)
        except queue.Full:
            conn.close()

    def run(self, fn):
        """Call fn(conn) with a pooled connection; a stale pooled connection is replaced once."""
        conn, pooled = self._get()
        try:
            result = fn(conn)
        except psycopg.OperationalError:
            conn.close()
            if not pooled:
                raise
            conn = self._connect()
            try:
                result = fn(conn)
            except BaseException:
                conn.close()
                raise
        except BaseException:
            conn.close()
            raise
        self._put(conn)
        return result

    async def arun(self, fn):
        return await run_in_threadpool(self.run, fn)


class ShopApp:
    """The ASGI shop app bound to one sandbox state folder."""

    def __init__(self, state_dir: Path, config: dict[str, Any]):
        self.state_dir = state_dir
        self.config = config
        self.db = Db(config["database_url"])
        self.faults = JsonStore(state_dir / "faults.json", default={})
        self.stripe_store = JsonStore(state_dir / "stripe.json")
        self.vercel = JsonStore(state_dir / "vercel.json")
        self.log_dir = Path(config["log_dir"])
        self.counter = itertools.count()

    # --- configuration as the app sees it ------------------------------------------------------------
    def fault(self, name: str) -> bool:
        return bool(self.faults.load().get(name))

    def nextauth_url(self) -> str:
        return BAD_NEXTAUTH_URL if self.fault("nextauth-url") else self.config["app_url"]

    def webhook_secret(self) -> str:
        """The secret the app verifies webhooks with: the old one while stuck-orders is on."""
        return (
            self.config["webhook_secret_old"] if self.fault("stuck-orders") else self.config["webhook_secret"]
        )

    def burst_live(self) -> bool:
        if not self.fault("500-burst"):
            return False
        state = self.vercel.load()
        return bool(state) and state["current"] == state["bad"]

    def current_deployment(self) -> dict:
        state = self.vercel.load()
        return next(d for d in state["deployments"] if d["uid"] == state["current"])

    # --- logging ---------------------------------------------------------------------------------------
    def log(self, request: Request, status: int, message: str = "", level: str | None = None) -> None:
        import random

        state = self.vercel.load()
        dep = self.current_deployment()
        rec = drain.entry(
            rng=random.Random(),
            ts_ms=drain.now_ms(),
            deployment=dep,
            project_id=state["project"]["id"],
            method=request.method,
            path=request.url.path,
            status=status,
            message=message,
            level=level,
            user_agent=request.headers.get("user-agent", "-"),
        )
        drain.append(self.log_dir, [rec])

    def _burst_error(self, request: Request, path: str) -> Response | None:
        if not self.burst_live():
            return None
        if next(self.counter) % 10 not in BURST_SLOTS:
            return None
        import random

        rng = random.Random()
        message = drain.checkout_error(rng) if path == "checkout" else drain.products_error(rng)
        request.state.log = (500, message)
        return JSONResponse({"error": "Internal Server Error"}, status_code=500)

    # --- routes -----------------------------------------------------------------------------------------
    async def health(self, request: Request) -> Response:
        try:
            await self.db.arun(lambda c: c.execute("SELECT 1").fetchone())
        except psycopg.Error as exc:
            request.state.log = (503, f"Health check failed: database unreachable ({type(exc).__name__})")
            return JSONResponse({"status": "error", "database": "unreachable"}, status_code=503)
        return JSONResponse({"status": "ok", "database": "ok"})

    async def products(self, request: Request) -> Response:
        if failed := self._burst_error(request, "products"):
            return failed
        tenant = request.query_params.get("tenantId")
        limit = max(1, min(int(request.query_params.get("limit", 20)), 100))

        def query(conn: psycopg.Connection) -> list[tuple]:
            if tenant:
                return conn.execute(
                    'SELECT "id", "tenantId", "name", "price", "stock" FROM "Product" '
                    'WHERE "tenantId" = %s AND "active" ORDER BY "id" LIMIT %s',
                    (tenant, limit),
                ).fetchall()
            return conn.execute(
                'SELECT "id", "tenantId", "name", "price", "stock" FROM "Product" '
                'WHERE "active" ORDER BY "id" LIMIT %s',
                (limit,),
            ).fetchall()

        rows = await self.db.arun(query)
        return JSONResponse(
            {
                "products": [
                    {"id": r[0], "tenantId": r[1], "name": r[2], "price": float(r[3]), "stock": r[4]}
                    for r in rows
                ]
            }
        )

    async def orders(self, request: Request) -> Response:
        user = request.query_params.get("userId", "usr_000001")
        rows = await self.db.arun(lambda c: c.execute(USER_ORDERS_QUERY, (user,)).fetchall())
        return JSONResponse(
            {
                "orders": [
                    {"id": r[0], "status": r[1], "total": float(r[2]), "createdAt": r[3].isoformat()}
                    for r in rows
                ]
            }
        )

    async def checkout(self, request: Request) -> Response:
        if failed := self._burst_error(request, "checkout"):
            return failed
        try:
            body = await request.json() if await request.body() else {}
        except json.JSONDecodeError:
            return JSONResponse({"error": "Invalid JSON body"}, status_code=400)
        user = body.get("userId", "usr_000001")
        items = body.get("items") or [{"productId": "prod_0002", "quantity": 1}]
        order_id = "ord_" + secrets.token_hex(6)

        def create(conn: psycopg.Connection) -> int:
            total = 0.0
            rows = []
            for k, item in enumerate(items, 1):
                found = conn.execute(
                    'SELECT "price" FROM "Product" WHERE "id" = %s', (item["productId"],)
                ).fetchone()
                if found is None:
                    raise LookupError(item["productId"])
                qty = int(item.get("quantity", 1))
                total += float(found[0]) * qty
                rows.append((f"item_{order_id[4:]}_{k}", order_id, item["productId"], qty, found[0]))
            with conn.transaction():
                conn.execute(
                    'INSERT INTO "Order" ("id", "userId", "status", "total", "createdAt", "updatedAt") '
                    "VALUES (%s, %s, 'pending', %s, now(), now())",
                    (order_id, user, round(total, 2)),
                )
                with conn.cursor() as cur:
                    cur.executemany(
                        'INSERT INTO "OrderItem" ("id", "orderId", "productId", "quantity", "price") '
                        "VALUES (%s, %s, %s, %s, %s)",
                        rows,
                    )
            return round(total * 100)

        try:
            cents = await self.db.arun(create)
        except LookupError as exc:
            return JSONResponse({"error": f"Unknown product {exc.args[0]}"}, status_code=400)
        except psycopg.errors.ForeignKeyViolation:
            return JSONResponse({"error": f"Unknown user {user}"}, status_code=400)
        pi = await run_in_threadpool(new_payment_intent, self.stripe_store, order_id, cents)
        await self.db.arun(
            lambda c: c.execute(
                'UPDATE "Order" SET "stripePaymentIntentId" = %s WHERE "id" = %s', (pi["id"], order_id)
            )
        )
        return JSONResponse(
            {
                "orderId": order_id,
                "status": "pending",
                "total": cents / 100,
                "paymentIntentId": pi["id"],
                "clientSecret": pi["client_secret"],
            },
            status_code=201,
        )

    async def stripe_webhook(self, request: Request) -> Response:
        payload = await request.body()
        signature = request.headers.get("stripe-signature", "")
        try:
            evt = stripe.Webhook.construct_event(payload, signature, self.webhook_secret())
        except stripe.SignatureVerificationError as exc:
            message = str(exc.user_message or exc)
            request.state.log = (400, f"⚠️  Webhook signature verification failed. {message}")
            return PlainTextResponse(f"Webhook Error: {message}", status_code=400)
        except ValueError as exc:
            request.state.log = (400, f"⚠️  Webhook payload invalid. {exc}")
            return PlainTextResponse(f"Webhook Error: {exc}", status_code=400)
        obj = evt["data"]["object"]
        new_status = {"payment_intent.succeeded": "paid", "payment_intent.payment_failed": "failed"}.get(
            evt["type"]
        )
        if new_status:
            await self.db.arun(
                lambda c: c.execute(
                    'UPDATE "Order" SET "status" = %s, "updatedAt" = now() '
                    'WHERE "stripePaymentIntentId" = %s AND "status" = \'pending\'',
                    (new_status, obj["id"]),
                )
            )
        request.state.log = (200, f"Stripe webhook {evt['type']} {evt['id']} handled")
        return JSONResponse({"received": True})

    # --- NextAuth v4 -------------------------------------------------------------------------------------
    async def providers(self, request: Request) -> Response:
        base = self.nextauth_url()
        return JSONResponse(
            {
                name: {
                    "id": name,
                    "name": label,
                    "type": "oauth",
                    "signinUrl": f"{base}/api/auth/signin/{name}",
                    "callbackUrl": f"{base}/api/auth/callback/{name}",
                }
                for name, label in (("google", "Google"), ("github", "GitHub"))
            }
        )

    def _csrf_hash(self, token: str) -> str:
        return hashlib.sha256((token + self.config["nextauth_secret"]).encode()).hexdigest()

    def secure_cookies(self) -> bool:
        """v4's `useSecureCookies`: NEXTAUTH_URL starts with https://."""
        return self.nextauth_url().startswith("https://")

    def cookie(self, base: str) -> str:
        """The name v4 gives cookie `base` under the current NEXTAUTH_URL."""
        return nextauth.cookie_name(base, self.secure_cookies())

    def _csrf_token(self, request: Request) -> str | None:
        """The token of a valid csrf cookie (`token|sha256(token + secret)`), else None."""
        token, _, digest = request.cookies.get(self.cookie(nextauth.CSRF_COOKIE), "").partition("|")
        valid = token and hmac.compare_digest(digest.encode(), self._csrf_hash(token).encode())
        return token if valid else None

    async def csrf(self, request: Request) -> Response:
        token = self._csrf_token(request) or secrets.token_hex(32)
        secure = self.secure_cookies()
        response = JSONResponse({"csrfToken": token})
        response.headers.append(
            "set-cookie",
            nextauth.set_cookie(
                self.cookie(nextauth.CSRF_COOKIE), f"{token}|{self._csrf_hash(token)}", secure=secure
            ),
        )
        callback_cookie = self.cookie(nextauth.CALLBACK_COOKIE)
        if callback_cookie not in request.cookies:
            response.headers.append(
                "set-cookie",
                nextauth.set_cookie(callback_cookie, quote(self.nextauth_url(), safe=""), secure=secure),
            )
        return response

    def _session_cookie(self, request: Request) -> str | None:
        name = self.cookie(nextauth.SESSION_COOKIE)
        if name in request.cookies:
            return request.cookies[name]
        chunks = [request.cookies[f"{name}.{i}"] for i in range(10) if f"{name}.{i}" in request.cookies]
        return "".join(chunks) or None

    def _with_session(self, response: Response, claims: dict[str, Any]) -> Response:
        """Set a fresh session token for `claims` (what v4 does at sign-in and on every session read)."""
        token = nextauth.encode_session(nextauth.session_claims(claims), self.config["nextauth_secret"])
        response.headers.append(
            "set-cookie",
            nextauth.set_cookie(
                self.cookie(nextauth.SESSION_COOKIE),
                token,
                secure=self.secure_cookies(),
                expires=time.time() + nextauth.MAX_AGE,
            ),
        )
        return response

    async def session(self, request: Request) -> Response:
        token = self._session_cookie(request)
        if not token:
            return JSONResponse({})
        try:
            claims = nextauth.decode_session(token, self.config["nextauth_secret"])
        except ValueError as exc:
            request.state.log = (
                200,
                f"[next-auth][error][JWT_SESSION_ERROR] \n"
                f"https://next-auth.js.org/errors#jwt_session_error {exc}",
            )
            response = JSONResponse({})
            response.headers.append(  # v4 clears the unreadable cookie
                "set-cookie",
                nextauth.set_cookie(
                    self.cookie(nextauth.SESSION_COOKIE), "", secure=self.secure_cookies(), max_age=0
                ),
            )
            return response
        expires = datetime.fromtimestamp(time.time() + nextauth.MAX_AGE, UTC).isoformat(
            timespec="milliseconds"
        )
        body = {
            "user": {
                "name": claims.get("name"),
                "email": claims.get("email"),
                "image": claims.get("picture"),
            },
            "expires": expires.replace("+00:00", "Z"),
        }
        return self._with_session(JSONResponse(body), claims)  # v4 rolls the session

    async def credentials_callback(self, request: Request) -> Response:
        """v4's credentials sign-in: POST csrfToken + email of a seeded user → session cookie, then the
        callbackUrl (as a 302, or `{"url": …}` with json=true). Bad csrf or unknown email: v4's redirects."""
        form = {k: v[-1] for k, v in parse_qs((await request.body()).decode(errors="replace")).items()}
        base = f"{self.nextauth_url()}/api/auth"

        def answer(url: str) -> Response:
            if form.get("json") == "true":
                return JSONResponse({"url": url})
            return RedirectResponse(url, status_code=302)

        token = self._csrf_token(request)
        if not (token and hmac.compare_digest(form.get("csrfToken", "").encode(), token.encode())):
            return answer(f"{base}/signin?csrf=true")
        email = form.get("email", "").strip().lower()
        row = await self.db.arun(
            lambda c: c.execute(
                'SELECT "id", "name", "email", "image" FROM "User" WHERE lower("email") = %s', (email,)
            ).fetchone()
        )
        if row is None:
            return answer(
                f"{base}/error?{urlencode({'error': 'CredentialsSignin', 'provider': 'credentials'})}"
            )
        claims = {"name": row[1], "email": row[2], "picture": row[3], "sub": row[0]}
        return self._with_session(answer(form.get("callbackUrl") or self.nextauth_url()), claims)

    async def signin(self, request: Request) -> Response:
        provider = request.path_params["provider"]
        callback = f"{self.nextauth_url()}/api/auth/callback/{provider}"
        if provider == "google":
            query = urlencode(
                {
                    "client_id": "1234567890-sandbox.apps.googleusercontent.com",
                    "scope": "openid email profile",
                    "response_type": "code",
                    "redirect_uri": callback,
                    "state": secrets.token_urlsafe(16),
                }
            )
            return RedirectResponse(f"https://accounts.google.com/o/oauth2/v2/auth?{query}", status_code=302)
        if provider == "github":
            query = urlencode(
                {"client_id": "Iv1.sandbox", "scope": "read:user user:email", "redirect_uri": callback}
            )
            return RedirectResponse(f"https://github.com/login/oauth/authorize?{query}", status_code=302)
        return RedirectResponse(f"{self.nextauth_url()}/api/auth/error?error=Configuration", status_code=302)

    async def index(self, request: Request) -> Response:
        return PlainTextResponse("opsnb sandbox shop")

    def app(self) -> Starlette:
        """The ASGI app, wrapped so every request is logged to the drain."""
        inner = Starlette(
            routes=[
                Route("/", self.index),
                Route("/api/health", self.health),
                Route("/api/products", self.products),
                Route("/api/orders", self.orders),
                Route("/api/checkout", self.checkout, methods=["POST"]),
                Route("/api/webhooks/stripe", self.stripe_webhook, methods=["POST"]),
                Route("/api/auth/providers", self.providers),
                Route("/api/auth/csrf", self.csrf),
                Route("/api/auth/session", self.session),
                Route("/api/auth/signin/{provider}", self.signin),
                Route("/api/auth/callback/credentials", self.credentials_callback, methods=["POST"]),
            ]
        )
        shop = self

        async def logged(scope, receive, send):
            if scope["type"] != "http":
                return await inner(scope, receive, send)
            scope.setdefault("state", {})
            status_box = {"status": 500}

            async def capture(message):
                if message["type"] == "http.response.start":
                    status_box["status"] = message["status"]
                await send(message)

            try:
                await inner(scope, receive, capture)
            finally:
                request = Request(scope)
                status, message = scope["state"].get("log", (status_box["status"], ""))
                try:
                    shop.log(request, status_box["status"] if status != -1 else -1, message)
                except Exception:  # logging must never break a request
                    pass

        return logged
