"""The stand-ins' process: shop, Stripe and Vercel apps in one uvicorn server on three ports (Sentry's
issues API is served on the Vercel port under /api/0/).

Run as `python -m opsnb.sandbox.standins --state DIR`; reads `DIR/app-config.json` (0600).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
from pathlib import Path

import httpx
import uvicorn

from .sentry_api import SentryStandIn
from .shop import ShopApp
from .store import JsonStore, read_json
from .stripe_api import StripeStandIn, sign_payload
from .vercel_api import VercelStandIn


def build(state_dir: Path) -> tuple[object, dict]:
    """The port-dispatching ASGI app and the config it was built from."""
    config = read_json(state_dir / "app-config.json")
    if config is None:
        raise SystemExit(f"no app-config.json in {state_dir}")
    shop = ShopApp(state_dir, config)
    client = httpx.AsyncClient(timeout=10)

    async def deliver(payload: str, url: str, secret: str) -> tuple[int, str]:
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": sign_payload(payload, secret),
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        }
        try:
            response = await client.post(url, content=payload.encode(), headers=headers)
        except httpx.HTTPError as exc:
            return 0, f"{type(exc).__name__}: {exc}"
        return response.status_code, response.text[:300]

    stripe_app = StripeStandIn(
        JsonStore(state_dir / "stripe.json"), config["stripe_secret_key"], deliver
    ).app()
    vercel_only = VercelStandIn(
        JsonStore(state_dir / "vercel.json"),
        config["vercel_token"],
        shop.nextauth_url,
        log_dir=Path(config["log_dir"]),
    ).app()
    # Sentry's issues API shares the Vercel port (paths under /api/0/) and its token
    sentry_app = SentryStandIn(JsonStore(state_dir / "vercel.json"), config["vercel_token"], shop.fault).app()

    async def vercel_app(scope, receive, send):
        app = sentry_app if scope.get("path", "").startswith("/api/0/") else vercel_only
        await app(scope, receive, send)

    by_port = {
        config["app_port"]: shop.app(),
        config["stripe_port"]: stripe_app,
        config["vercel_port"]: vercel_app,
    }

    async def dispatch(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        port = (scope.get("server") or (None, None))[1]
        await by_port.get(port, by_port[config["app_port"]])(scope, receive, send)

    return dispatch, config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="opsnb.sandbox.standins")
    parser.add_argument("--state", required=True, type=Path)
    args = parser.parse_args(argv)
    app, config = build(args.state)
    sockets = []
    for port in (config["app_port"], config["stripe_port"], config["vercel_port"]):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            print(f"cannot bind 127.0.0.1:{port}: {exc}", file=sys.stderr)
            return 4
        sockets.append(sock)
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=2)
    )
    asyncio.run(server.serve(sockets=sockets))
    return 0


if __name__ == "__main__":
    sys.exit(main())
