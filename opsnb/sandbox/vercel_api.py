"""Vercel REST API stand-in: deployments, project (current production deployment), rollback, env, and the
runtime logs of a deployment (the log-drain lines of that deployment, in the runtime-logs shape).

State lives in `<state>/vercel.json`: the project, its deployments (newest first), the `current` production
deployment and the `bad` one the 500-burst fault is tied to.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import time
from collections.abc import Callable
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .store import JsonStore

TEAM_SLUG = "acme"
ENV_KEYS = [
    ("DATABASE_URL", "encrypted"),
    ("NEXTAUTH_URL", "plain"),
    ("NEXTAUTH_SECRET", "encrypted"),
    ("GOOGLE_CLIENT_ID", "plain"),
    ("GOOGLE_CLIENT_SECRET", "encrypted"),
    ("STRIPE_SECRET_KEY", "encrypted"),
    ("STRIPE_WEBHOOK_SECRET", "encrypted"),
    ("RESEND_API_KEY", "encrypted"),
    ("SENTRY_DSN", "plain"),
]
_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
_COMMITS = [
    ("dependabot", "chore(deps): bump next from 14.2.3 to 14.2.4"),
    ("maria", "fix: product image sizes on mobile"),
    ("alex", "feat: wishlist on product pages"),
    ("sam", "refactor: compute checkout totals from the cart service"),
]


def build_state(now: float, project: str, nextauth_url: str) -> dict:
    """The project and deployments; the newest (created ~20 min ago) is the bad one."""
    rng = random.Random(3_003)
    project_id = "prj_" + "".join(rng.choices(_ALNUM + _ALNUM.upper(), k=24))
    ages_min = [9 * 24 * 60, 2 * 24 * 60, 55, 20]
    deployments = []
    for (author, message), age in zip(_COMMITS, ages_min, strict=True):
        created = int((now - age * 60) * 1000)
        uid = "dpl_" + "".join(rng.choices(_ALNUM + _ALNUM.upper(), k=28))
        short = "".join(rng.choices(_ALNUM, k=9))
        deployments.append(
            {
                "uid": uid,
                "name": project,
                "url": f"{project}-{short}-{TEAM_SLUG}.vercel.app",
                "created": created,
                "createdAt": created,
                "buildingAt": created + 2_000,
                "ready": created + 61_000,
                "state": "READY",
                "readyState": "READY",
                "readySubstate": "PROMOTED",
                "type": "LAMBDAS",
                "source": "git",
                "target": "production",
                "projectId": project_id,
                "creator": {
                    "uid": "usr_" + "".join(rng.choices(_ALNUM, k=20)),
                    "username": author,
                    "email": f"{author}@example.com",
                    "githubLogin": author,
                },
                "meta": {
                    "githubCommitSha": hashlib.sha1(message.encode()).hexdigest(),
                    "githubCommitMessage": message,
                    "githubCommitRef": "main",
                    "githubCommitAuthorName": author,
                    "githubRepo": project,
                    "githubOrg": TEAM_SLUG,
                },
                "inspectorUrl": f"https://vercel.com/{TEAM_SLUG}/{project}/{uid[4:]}",
                "isRollbackCandidate": True,
                "aliasAssigned": created + 62_000,
                "aliasError": None,
            }
        )
    deployments.sort(key=lambda d: d["created"], reverse=True)
    envs = []
    for key, kind in ENV_KEYS:
        created = int((now - 200 * 86400) * 1000) + rng.randrange(10**8)
        envs.append(
            {
                "type": kind,
                "id": "".join(rng.choices(_ALNUM + _ALNUM.upper(), k=16)),
                "key": key,
                "target": ["production", "preview"] if key != "NEXTAUTH_URL" else ["production"],
                "gitBranch": None,
                "configurationId": None,
                "createdAt": created,
                "updatedAt": created,
                "createdBy": "maria",
            }
        )
    return {
        "project": {
            "id": project_id,
            "name": project,
            "accountId": "team_" + "".join(rng.choices(_ALNUM, k=24)),
            "framework": "nextjs",
            "nodeVersion": "20.x",
        },
        "deployments": deployments,
        "current": deployments[0]["uid"],
        "bad": deployments[0]["uid"],
        "envs": envs,
        "rollbacks": [],
    }


def runtime_log(rec: dict) -> dict:
    """A log-drain record in the runtime-logs API's shape (one NDJSON line of that endpoint)."""
    proxy = rec.get("proxy") or {}
    status = rec.get("statusCode")
    return {
        "level": rec.get("level") or "info",
        "message": rec.get("message") or "",
        "rowId": rec.get("id"),
        "source": "serverless" if rec.get("source") == "lambda" else rec.get("source"),
        "timestampInMs": rec.get("timestamp"),
        "domain": proxy.get("host") or rec.get("host"),
        "messageTruncated": False,
        "requestMethod": proxy.get("method"),
        "requestPath": rec.get("path") or proxy.get("path"),
        "responseStatusCode": proxy.get("statusCode") if status is None else status,
    }


def _error(status: int, code: str, message: str, **extra: object) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, **extra}}, status_code=status)


class VercelStandIn:
    """Routes of the Vercel API the runbooks call; Bearer token required."""

    def __init__(
        self,
        store: JsonStore,
        token: str,
        nextauth_url: Callable[[], str],
        log_dir: Path | None = None,
    ):
        self.store = store
        self.token = token
        self.nextauth_url = nextauth_url
        self.log_dir = log_dir

    def _auth(self, request: Request) -> JSONResponse | None:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer "):
            return _error(
                401, "forbidden", "The request is missing an authentication token", missingToken=True
            )
        if not hmac.compare_digest(header[7:].strip(), self.token):
            return _error(401, "forbidden", "Not authorized", invalidToken=True)
        return None

    def _project(self, state: dict, ref: str) -> dict | None:
        project = state["project"]
        return project if ref in (project["id"], project["name"]) else None

    async def deployments(self, request: Request) -> JSONResponse:
        if denied := self._auth(request):
            return denied
        state = self.store.load()
        q = request.query_params
        items = state["deployments"]
        ref = q.get("projectId") or q.get("app")
        if ref and not self._project(state, ref):
            items = []
        if q.get("target"):
            items = [d for d in items if d["target"] == q["target"]]
        if q.get("state"):
            wanted = {s.strip().upper() for s in q["state"].split(",")}
            items = [d for d in items if d["state"] in wanted]
        if q.get("until"):
            items = [d for d in items if d["created"] < int(q["until"])]
        if q.get("since"):
            items = [d for d in items if d["created"] > int(q["since"])]
        limit = max(1, min(int(q.get("limit", 20)), 100))
        page = items[:limit]
        more = len(items) > len(page)
        return JSONResponse(
            {
                "pagination": {
                    "count": len(page),
                    "next": page[-1]["created"] if more and page else None,
                    "prev": page[0]["created"] if page else None,
                },
                "deployments": page,
            }
        )

    async def deployment(self, request: Request) -> JSONResponse:
        if denied := self._auth(request):
            return denied
        ref = request.path_params["id"]
        state = self.store.load()
        for dep in state["deployments"]:
            if ref in (dep["uid"], dep["url"]):
                alias = [f"{state['project']['name']}.example.com"] if dep["uid"] == state["current"] else []
                return JSONResponse({**dep, "id": dep["uid"], "alias": alias})
        return _error(404, "not_found", "The deployment could not be found.")

    async def aliases(self, request: Request) -> JSONResponse:
        if denied := self._auth(request):
            return denied
        state = self.store.load()
        dep_id = request.path_params["id"]
        if not any(d["uid"] == dep_id for d in state["deployments"]):
            return _error(404, "not_found", "The deployment could not be found.")
        aliases = []
        if dep_id == state["current"]:
            aliases.append(
                {
                    "alias": "shop.example.com",
                    "created": "2024-01-01T00:00:00.000Z",
                    "uid": "alias_shop",
                    "deploymentId": dep_id,
                }
            )
        return JSONResponse({"aliases": aliases})

    async def project(self, request: Request) -> JSONResponse:
        if denied := self._auth(request):
            return denied
        state = self.store.load()
        project = self._project(state, request.path_params["project"])
        if project is None:
            return _error(404, "not_found", "Project not found")
        current = next(d for d in state["deployments"] if d["uid"] == state["current"])
        rolled_back = state["current"] != state["deployments"][0]["uid"]
        return JSONResponse(
            {
                **project,
                "live": not rolled_back,
                "targets": {"production": {**current, "id": current["uid"], "alias": ["shop.example.com"]}},
                "latestDeployments": state["deployments"][:5],
                "lastRollbackTarget": state["rollbacks"][-1] if state["rollbacks"] else None,
            }
        )

    async def rollback(self, request: Request) -> JSONResponse:
        """Make an older production deployment the current one (instant rollback)."""
        if denied := self._auth(request):
            return denied
        dep_id = request.path_params["deployment"]
        with self.store.update() as state:
            if self._project(state, request.path_params["project"]) is None:
                return _error(404, "not_found", "Project not found")
            dep = next((d for d in state["deployments"] if d["uid"] == dep_id), None)
            if dep is None:
                return _error(404, "not_found", "The deployment could not be found.")
            if dep["readyState"] != "READY" or dep["target"] != "production":
                return _error(
                    400, "invalid_deployment", "Only READY production deployments can be rolled back to."
                )
            state["rollbacks"].append(
                {
                    "fromDeploymentId": state["current"],
                    "toDeploymentId": dep_id,
                    "jobStatus": "succeeded",
                    "requestedAt": int(time.time() * 1000),
                }
            )
            state["current"] = dep_id
        return JSONResponse({}, status_code=201)

    async def env(self, request: Request) -> JSONResponse:
        if denied := self._auth(request):
            return denied
        state = self.store.load()
        if self._project(state, request.path_params["project"]) is None:
            return _error(404, "not_found", "Project not found")
        envs = []
        for item in state["envs"]:
            out = dict(item)
            if item["key"] == "NEXTAUTH_URL":
                out["value"] = self.nextauth_url()
            elif item["key"] == "GOOGLE_CLIENT_ID":
                out["value"] = "1234567890-sandbox.apps.googleusercontent.com"
            elif item["key"] == "SENTRY_DSN":
                out["value"] = "https://public@o0.ingest.sentry.io/0"
            else:
                out["value"] = ""  # encrypted values are not decrypted unless ?decrypt=true (not offered)
            envs.append(out)
        return JSONResponse({"envs": envs})

    async def runtime_logs(self, request: Request) -> Response:
        """``GET /v1/projects/{p}/deployments/{d}/runtime-logs``: NDJSON, oldest first, stream ends at once."""
        if denied := self._auth(request):
            return denied
        state = self.store.load()
        if self._project(state, request.path_params["project"]) is None:
            return _error(404, "not_found", "Project not found")
        dep_id = request.path_params["deployment"]
        if not any(d["uid"] == dep_id for d in state["deployments"]):
            return _error(404, "not_found", "The deployment could not be found.")
        rows = []
        files = sorted(self.log_dir.glob("*.ndjson")) if self.log_dir and self.log_dir.is_dir() else []
        for path in files:
            for line in path.read_bytes().splitlines():
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if isinstance(rec, dict) and rec.get("deploymentId") == dep_id:
                    rows.append(runtime_log(rec))
        rows.sort(key=lambda r: r["timestampInMs"])
        body = "".join(json.dumps(r) + "\n" for r in rows)
        return Response(body, media_type="application/stream+json")

    async def not_found(self, request: Request) -> JSONResponse:
        return _error(404, "not_found", "The requested API endpoint was not found.")

    def app(self) -> Starlette:
        """The ASGI app."""
        return Starlette(
            routes=[
                Route("/v6/deployments", self.deployments),
                Route("/v7/deployments", self.deployments),
                Route("/v13/deployments/{id}", self.deployment),
                Route("/v2/deployments/{id}/aliases", self.aliases),
                Route("/v9/projects/{project}", self.project),
                Route("/v9/projects/{project}/env", self.env),
                Route("/v10/projects/{project}/env", self.env),
                Route("/v1/projects/{project}/rollback/{deployment}", self.rollback, methods=["POST"]),
                Route("/v1/projects/{project}/deployments/{deployment}/runtime-logs", self.runtime_logs),
                Route("/{path:path}", self.not_found, methods=["GET", "POST", "PATCH", "DELETE"]),
            ]
        )
