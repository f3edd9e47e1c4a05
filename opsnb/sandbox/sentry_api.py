"""Sentry REST API stand-in: ``GET /api/0/organizations/{org}/issues/`` (served on the Vercel stand-in's port).

The issues follow the sandbox's state: an old, quiet warning issue always; with the 500-burst fault on, the
bad deployment's unresolved ``TypeError … (reading 'price')`` issue, first seen when that deployment went
live, last seen now while it serves production (or when production was rolled back away from it). With the
fault off there is no recent issue. Same Bearer token as the Vercel stand-in (sandbox only).
"""

from __future__ import annotations

import datetime as _dt
import hmac
import time
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .store import JsonStore
from .vercel_api import TEAM_SLUG

ORG = TEAM_SLUG
PROJECT = {"id": "4504000000000001", "name": "shop", "slug": "shop", "platform": "javascript-nextjs"}
PRICE_TYPE, PRICE_VALUE = "TypeError", "Cannot read properties of undefined (reading 'price')"


def _iso(ms: float) -> str:
    """Sentry's timestamp format: ISO 8601 with microseconds and a Z."""
    return _dt.datetime.fromtimestamp(ms / 1000, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _issue(
    *,
    issue_id: str,
    short: int,
    title: str,
    culprit: str,
    level: str,
    count: int,
    users: int,
    first_ms: float,
    last_ms: float,
    exc_type: str,
    exc_value: str,
    filename: str,
    function: str,
) -> dict:
    return {
        "id": issue_id,
        "shareId": None,
        "shortId": f"SHOP-{short}",
        "title": title,
        "culprit": culprit,
        "permalink": f"https://{ORG}.sentry.io/issues/{issue_id}/",
        "logger": None,
        "level": level,
        "status": "unresolved",
        "statusDetails": {},
        "substatus": "ongoing",
        "isPublic": False,
        "platform": "javascript",
        "project": PROJECT,
        "type": "error",
        "metadata": {
            "type": exc_type,
            "value": exc_value,
            "filename": filename,
            "function": function,
            "in_app_frame_mix": "in-app-only",
        },
        "numComments": 0,
        "assignedTo": None,
        "isBookmarked": False,
        "isSubscribed": False,
        "subscriptionDetails": None,
        "hasSeen": False,
        "annotations": [],
        "issueType": "error",
        "issueCategory": "error",
        "isUnhandled": True,
        "count": str(count),
        "userCount": users,
        "firstSeen": _iso(first_ms),
        "lastSeen": _iso(last_ms),
        "stats": {},
    }


def issues(state: dict, burst_fault: bool, now_ms: float) -> list[dict]:
    """The unresolved issues for the Vercel state and the 500-burst fault, newest ``lastSeen`` first."""
    out = [
        _issue(
            issue_id="4100000001",
            short=7,
            title="Error: Too many requests. You can only make 2 requests per second.",
            culprit="POST /api/auth/signin/email",
            level="warning",
            count=17,
            users=9,
            first_ms=now_ms - 20 * 86_400_000,
            last_ms=now_ms - 3 * 86_400_000,
            exc_type="Error",
            exc_value="Too many requests. You can only make 2 requests per second.",
            filename="/var/task/.next/server/app/api/auth/[...nextauth]/route.js",
            function="sendVerificationRequest",
        )
    ]
    bad = next((d for d in state.get("deployments", []) if d["uid"] == state.get("bad")), None)
    if burst_fault and bad is not None:
        first = bad["ready"] + 30_000
        if state["current"] == bad["uid"]:
            last = now_ms - 5_000
        else:  # rolled back away from it: the errors stopped then
            away = [r for r in state.get("rollbacks", []) if r.get("fromDeploymentId") == bad["uid"]]
            last = (away[-1]["requestedAt"] - 1_000) if away else first
        last = max(first, last)
        count = max(1, int((last - first) / 60_000 * 4))  # ~4 failing requests a minute
        out.append(
            _issue(
                issue_id="4100000042",
                short=42,
                title=f"{PRICE_TYPE}: {PRICE_VALUE}",
                culprit="POST /api/checkout",
                level="error",
                count=count,
                users=max(1, count // 3),
                first_ms=first,
                last_ms=last,
                exc_type=PRICE_TYPE,
                exc_value=PRICE_VALUE,
                filename="/var/task/.next/server/app/api/checkout/route.js",
                function="computeTotal",
            )
        )
    return sorted(out, key=lambda i: i["lastSeen"], reverse=True)


class SentryStandIn:
    """The issues route; Bearer token required, org ``acme`` only."""

    def __init__(self, vercel: JsonStore, token: str, fault: Callable[[str], bool]):
        self.vercel = vercel
        self.token = token
        self.fault = fault

    async def issues(self, request: Request) -> JSONResponse:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer ") or not hmac.compare_digest(
            header[7:].strip(), self.token
        ):
            return JSONResponse({"detail": "Invalid token"}, status_code=401)
        if request.path_params["org"] != ORG:
            return JSONResponse({"detail": "The requested resource does not exist"}, status_code=404)
        q = request.query_params
        items = issues(self.vercel.load() or {}, self.fault("500-burst"), time.time() * 1000)
        query = q.get("query", "is:unresolved")
        if "is:resolved" in query or "is:ignored" in query:
            items = []
        try:
            limit = max(1, min(int(q.get("limit", 100)), 100))
        except ValueError:
            return JSONResponse({"detail": "Invalid limit"}, status_code=400)
        return JSONResponse(items[:limit])

    async def not_found(self, request: Request) -> JSONResponse:
        return JSONResponse({"detail": "The requested resource does not exist"}, status_code=404)

    def app(self) -> Starlette:
        """The ASGI app (paths under /api/0/)."""
        return Starlette(
            routes=[
                Route("/api/0/organizations/{org}/issues/", self.issues),
                Route("/api/0/{path:path}", self.not_found),
            ]
        )
