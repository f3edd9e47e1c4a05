"""Vercel REST API: recent deployments, the live one, environment variable names, runtime logs, rollback.

One method, one HTTP call; the module functions turn responses into frames and dataclasses. The token comes from a :class:`~opsnb.checks.secrets.Secret` (sent as a Bearer header,
never printed); the base URL is a parameter so the sandbox stand-in and https://api.vercel.com are the same
code path. Environment variable VALUES are dropped as soon as a response is parsed: only names leave here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from opsnb.checks.http import APIError, BearerAPI
from opsnb.checks.logs.frame import Garbage, as_int, as_text, log_frame
from opsnb.checks.secrets import Secret

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_API = "https://api.vercel.com"


class VercelError(APIError):
    """A Vercel API call failed (one line: method, path, status, Vercel's error message)."""


class Vercel(BearerAPI):
    """A small client for the calls the runbooks make (``team_id`` adds ``teamId=`` for team projects)."""

    def __init__(
        self,
        token: Secret,
        api_base: str = DEFAULT_API,
        team_id: str = "",
        timeout_s: float = 15.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(token, api_base, timeout_s, transport)
        self.team_id = team_id

    def _call(self, method: str, path: str, params: dict[str, Any] | None = None) -> Any:
        params = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        if self.team_id:
            params["teamId"] = self.team_id
        try:
            response = self._client.request(method, path, params=params)
        except httpx.HTTPError as exc:
            raise VercelError(f"{method} {self.api_base}{path}: {type(exc).__name__}: {exc}") from None
        if response.status_code >= 400:
            try:
                message = response.json().get("error", {}).get("message", "")
            except (ValueError, AttributeError):
                message = response.text[:200]
            raise VercelError(f"{method} {path} → HTTP {response.status_code}: {message}".rstrip(": "))
        if not response.content:
            return {}
        try:
            return response.json()
        except ValueError:
            return {"raw": response.text[:500]}

    # --- deployments ---------------------------------------------------------------------------------------
    def deployments(self, project: str, *, limit: int = 20, target: str = "production") -> pd.DataFrame:
        """Recent deployments of ``project`` (newest first) as a DataFrame; ``GET /v6/deployments``.

        Columns: uid, url, state, target, created (UTC), ready (UTC), creator, commit, message.
        """
        data = self._call(
            "GET", "/v6/deployments", {"projectId": project, "limit": limit, "target": target or None}
        )
        return deployments_frame(data.get("deployments", []))

    def project(self, project: str) -> dict[str, Any]:
        """``GET /v9/projects/{project}``: the project, incl. ``targets.production`` (the live deployment)."""
        return self._call("GET", f"/v9/projects/{project}")

    def env_names(self, project: str) -> pd.DataFrame:
        """Names of ``project``'s environment variables with their targets (values never kept).

        ``GET /v9/projects/{project}/env``. Columns: key, type, target (comma-joined).
        """
        import pandas as pd

        data = self._call("GET", f"/v9/projects/{project}/env")
        rows = [
            {
                "key": item.get("key", ""),
                "type": item.get("type", ""),
                "target": ",".join(item.get("target") or [])
                if isinstance(item.get("target"), list)
                else str(item.get("target") or ""),
            }
            for item in data.get("envs", [])
        ]
        return pd.DataFrame(rows, columns=["key", "type", "target"])

    def runtime_logs(
        self, project: str, deployment_id: str, *, max_lines: int = 100_000, max_seconds: float = 20.0
    ) -> list[bytes]:
        """Raw NDJSON lines of ``GET /v1/projects/{project}/deployments/{id}/runtime-logs``.

        Vercel streams this (``application/stream+json``) and may keep the stream open for new lines: reading
        stops at the end of the stream, after ``max_lines`` lines, or when ``max_seconds`` pass (what arrived
        until then is kept). Lines are returned unparsed so the caller can count garbage ones.
        """
        import time

        path = f"/v1/projects/{project}/deployments/{deployment_id}/runtime-logs"
        params = {"teamId": self.team_id} if self.team_id else {}
        lines: list[bytes] = []
        deadline = time.monotonic() + max_seconds
        try:
            with self._client.stream("GET", path, params=params) as response:
                if response.status_code >= 400:
                    response.read()
                    try:
                        message = response.json().get("error", {}).get("message", "")
                    except (ValueError, AttributeError):
                        message = response.text[:200]
                    raise VercelError(f"GET {path} → HTTP {response.status_code}: {message}".rstrip(": "))
                pending = b""
                for chunk in response.iter_bytes():
                    pending += chunk
                    *done, pending = pending.split(b"\n")
                    lines.extend(done)
                    if len(lines) >= max_lines or time.monotonic() > deadline:
                        pending = b""
                        break
                if pending:
                    lines.append(pending)
        except httpx.ReadTimeout:
            if not lines:
                raise VercelError(f"GET {self.api_base}{path}: ReadTimeout (no log lines)") from None
        except httpx.HTTPError as exc:
            raise VercelError(f"GET {self.api_base}{path}: {type(exc).__name__}: {exc}") from None
        return lines[:max_lines]

    def rollback(self, project: str, deployment_id: str) -> str:
        """Make ``deployment_id`` the live production deployment: ``POST /v1/projects/{p}/rollback/{id}``."""
        self._call("POST", f"/v1/projects/{project}/rollback/{deployment_id}")
        return f"rolled back {project} to {deployment_id}"


@dataclass(frozen=True)
class Deployment:
    """One deployment, as the runbooks name it (a row of :func:`deployments_frame`)."""

    uid: str
    url: str = ""
    state: str = ""
    target: str = ""
    created: pd.Timestamp | None = None  # UTC
    message: str = ""  # first line of the commit message

    @classmethod
    def of(cls, row: pd.Series) -> Deployment:
        """The deployment of one ``deployments_frame`` row."""
        import pandas as pd

        created = row.get("created")
        return cls(
            uid=str(row["uid"]),
            url=str(row.get("url") or ""),
            state=str(row.get("state") or ""),
            target=str(row.get("target") or ""),
            created=created if created is not None and pd.notna(created) else None,
            message=str(row.get("message") or ""),
        )


@dataclass(frozen=True)
class LiveDeployment:
    """Which deployment serves production, since when (UTC; None when unknown) and how that was found."""

    uid: str
    url: str = ""
    since: pd.Timestamp | None = None
    how: str = ""


def _utc(ms: Any) -> pd.Timestamp:
    """Vercel's epoch milliseconds as a UTC Timestamp (NaT when absent)."""
    import pandas as pd

    if ms is None or ms == "":
        return pd.NaT
    return pd.Timestamp(int(ms), unit="ms", tz="UTC")


def deployments_frame(items: list[dict[str, Any]]) -> pd.DataFrame:
    """Vercel deployment objects → DataFrame (newest first) with the columns the runbooks show."""
    import pandas as pd

    rows = []
    for d in items:
        meta = d.get("meta") or {}
        creator = d.get("creator") or {}
        rows.append(
            {
                "uid": d.get("uid") or d.get("id"),
                "url": d.get("url", ""),
                "state": d.get("readyState") or d.get("state") or "",
                "target": d.get("target") or "preview",
                "created": _utc(d.get("createdAt") or d.get("created")),
                "ready": _utc(d.get("ready")),
                "creator": creator.get("username") or creator.get("email") or "",
                "commit": (meta.get("githubCommitSha") or "")[:7],
                "message": (meta.get("githubCommitMessage") or "").splitlines()[0]
                if meta.get("githubCommitMessage")
                else "",
            }
        )
    columns = ["uid", "url", "state", "target", "created", "ready", "creator", "commit", "message"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["created"] = pd.to_datetime(frame["created"], utc=True)
    frame["ready"] = pd.to_datetime(frame["ready"], utc=True)
    return frame.sort_values("created", ascending=False).reset_index(drop=True)


def live_deployment(project: dict[str, Any], deployments: pd.DataFrame) -> LiveDeployment | None:
    """Which deployment serves production and since when; None when nothing is deployed.

    From the project's ``targets.production`` (and ``lastRollbackTarget`` after an instant rollback); without
    those, the newest READY production deployment.
    """
    import pandas as pd

    target = ((project or {}).get("targets") or {}).get("production") or {}
    uid = target.get("id") or target.get("uid")
    if not uid:
        ready = deployments[deployments["state"] == "READY"]
        if not len(ready):
            return None
        prod = ready[ready["target"] == "production"]
        row = (prod if len(prod) else ready).iloc[0]
        since = row["ready"] if pd.notna(row["ready"]) else row["created"]
        return LiveDeployment(
            row["uid"], row["url"], since if pd.notna(since) else None, "newest READY deployment"
        )
    since = _utc(target.get("ready") or target.get("createdAt") or target.get("created"))
    how = "project's production target"
    rollback = (project or {}).get("lastRollbackTarget") or {}
    if rollback.get("toDeploymentId") == uid and rollback.get("requestedAt"):
        since = _utc(rollback["requestedAt"])
        how = "instant rollback"
    match = deployments[deployments["uid"] == uid]
    url = target.get("url") or (match.iloc[0]["url"] if len(match) else "")
    return LiveDeployment(uid, url, since if pd.notna(since) else None, how)


def deployment_at(deployments: pd.DataFrame, when: pd.Timestamp | None) -> Deployment | None:
    """The READY deployment that was newest at ``when`` (the one live then, barring rollbacks)."""
    import pandas as pd

    if when is None or pd.isna(when) or not len(deployments):
        return None
    ready = deployments[(deployments["state"] == "READY") & (deployments["created"] <= pd.Timestamp(when))]
    if not len(ready):
        return None
    return Deployment.of(ready.sort_values("created").iloc[-1])


def previous_ready(deployments: pd.DataFrame, current_uid: str | None) -> Deployment | None:
    """The READY production deployment created before ``current_uid`` (the rollback target)."""
    if not len(deployments):
        return None
    ordered = deployments.sort_values("created", ascending=False).reset_index(drop=True)
    hits = ordered.index[ordered["uid"] == current_uid].tolist()
    older = ordered.iloc[hits[0] + 1 :] if hits else ordered.iloc[1:]
    older = older[(older["state"] == "READY") & (older["target"] == "production")]
    return Deployment.of(older.iloc[0]) if len(older) else None


def runtime_logs_frame(
    lines: list[bytes], garbage: Garbage | None = None, *, project: str = "", deployment: str = ""
) -> pd.DataFrame:
    """Vercel runtime-log NDJSON lines → a log frame (opsnb.checks.logs.frame; bad lines added to ``garbage``).

    Fields: timestampInMs → timestamp, level, message, responseStatusCode → statusCode, requestPath → path,
    requestMethod → method, domain → host, rowId → id, source; deployment/project from the request.
    """
    import pandas as pd

    garbage = garbage if garbage is not None else Garbage()
    rows = []
    for line in lines:
        if not line.strip():
            garbage.add("empty", line)
            continue
        try:
            item = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            garbage.add("invalid JSON", line)
            continue
        if not isinstance(item, dict):
            garbage.add("not an object", line)
            continue
        ms = as_int(item.get("timestampInMs"))
        rows.append(
            {
                "timestamp": None if ms is None else pd.Timestamp(ms, unit="ms", tz="UTC"),
                "level": as_text(item.get("level")),
                "message": as_text(item.get("message")),
                "statusCode": as_int(item.get("responseStatusCode")),
                "path": as_text(item.get("requestPath")),
                "method": as_text(item.get("requestMethod")),
                "deploymentId": deployment or None,
                "requestId": None,
                "source": as_text(item.get("source")),
                "host": as_text(item.get("domain")),
                "projectId": project or None,
                "id": as_text(item.get("rowId")),
                "region": None,
                "clientIp": None,
            }
        )
    return log_frame(rows)
