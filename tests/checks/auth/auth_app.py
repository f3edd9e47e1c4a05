"""A small NextAuth-like app for the auth checks' tests, served over real HTTP by ``checks.asgi_server``.

:class:`AuthApp` answers ``/api/auth/providers``, ``/csrf`` and ``/session`` as configured: an Auth.js v5 app by
default (``authjs.*`` cookies, ``null`` for a signed-out session), misconfigured or broken on demand. It knows
no cryptography: it "accepts" exactly the session tokens it is given, so the checks' decryption is tested
against tokens made independently with joserfc.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing listens there
HTTP_V5_COOKIES = [
    "authjs.csrf-token=t%7Ch; Path=/; HttpOnly; SameSite=Lax",
    "authjs.callback-url=http%3A%2F%2Fshop; Path=/; HttpOnly; SameSite=Lax",
]


@dataclass
class AuthApp:
    """What each endpoint answers; change the fields between requests to change the app."""

    callback_base: str = ""  # base of every provider's callbackUrl; '' = the URL the app is reached at
    providers: Any = ("google", "github")  # ids (a tuple), or a raw body (str) sent as is
    csrf_cookies: list[str] = field(default_factory=lambda: list(HTTP_V5_COOKIES))
    csrf_body: Any = field(default_factory=lambda: {"csrfToken": "t"})
    signed_out: Any = None  # the signed-out /session body (v5: null)
    statuses: dict[str, int] = field(default_factory=dict)  # endpoint → HTTP status (default 200)
    delay_s: float = 0.0
    accepted: dict[str, str] = field(default_factory=dict)  # token → email the session answers for it
    session_cookie: str = "authjs.session-token"
    session_attributes: str = "Path=/; HttpOnly; SameSite=Lax"  # of the re-set session cookie

    def asgi(self) -> Starlette:
        """The ASGI app."""
        return Starlette(routes=[Route("/api/auth/{endpoint}", self._answer)])

    async def _answer(self, request: Request) -> Response:
        endpoint = request.path_params["endpoint"]
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        cookies: list[str] = []
        if endpoint == "providers":
            body = self._providers(str(request.base_url).rstrip("/"))
        elif endpoint == "csrf":
            body, cookies = self.csrf_body, self.csrf_cookies
        elif endpoint == "session":
            body, cookies = self._session(request)
        else:
            return Response(status_code=404)
        text = body if isinstance(body, str) else json.dumps(body)
        response = Response(text, status_code=self.statuses.get(endpoint, 200), media_type="application/json")
        for cookie in cookies:
            response.headers.append("set-cookie", cookie)
        return response

    def _providers(self, base: str) -> Any:
        if isinstance(self.providers, str):
            return self.providers
        callback = self.callback_base or base
        return {
            pid: {
                "id": pid,
                "name": pid.title(),
                "type": "oauth",
                "callbackUrl": f"{callback}/api/auth/callback/{pid}",
            }
            for pid in self.providers
        }

    def _session(self, request: Request) -> tuple[Any, list[str]]:
        token = request.cookies.get(self.session_cookie)
        if token is None:
            return self.signed_out, []
        email = self.accepted.get(token)
        if email is None:
            return self.signed_out, [f"{self.session_cookie}=; Max-Age=0; {self.session_attributes}"]
        body = {"user": {"email": email}, "expires": "2031-01-01T00:00:00.000Z"}
        return body, [f"{self.session_cookie}={token}; {self.session_attributes}"]
