"""Sentry REST API: the organization's unresolved issues, as an issues table or as log rows.

One method, one HTTP call. The token comes from a :class:`~opsnb.checks.secrets.Secret` (a Bearer auth token with
``event:read``; never printed); the base URL is a parameter so the sandbox stand-in, https://sentry.io and a
self-hosted Sentry are the same code path. Sentry's issue fields used here: id, shortId, title, culprit,
level, count (a string in Sentry's JSON), userCount, firstSeen, lastSeen (ISO 8601), permalink,
metadata{type, value}, project{slug}.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

from opsnb.checks.http import APIError, BearerAPI
from opsnb.checks.logs.frame import as_int, as_text, log_frame
from opsnb.checks.logs.window import utc_column
from opsnb.checks.secrets import Secret

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_API = "https://sentry.io"
ISSUE_COLUMNS = [
    "id",
    "shortId",
    "title",
    "culprit",
    "level",
    "count",
    "userCount",
    "firstSeen",
    "lastSeen",
    "type",
    "value",
    "project",
    "permalink",
]


class SentryError(APIError):
    """A Sentry API call failed (one line: method, path, status, Sentry's ``detail``)."""


class Sentry(BearerAPI):
    """A small client for the Sentry calls the runbooks make."""

    def __init__(
        self,
        token: Secret,
        api_base: str = DEFAULT_API,
        timeout_s: float = 15.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(token, api_base, timeout_s, transport)

    def issues(self, org: str, *, query: str = "is:unresolved", limit: int = 100) -> list[dict[str, Any]]:
        """``GET /api/0/organizations/{org}/issues/?query=…&limit=…``: the issue objects (first page only).

        Sentry answers at most 100 per page (newest ``lastSeen`` first by default); later pages are not read.
        """
        path = f"/api/0/organizations/{org}/issues/"
        try:
            response = self._client.get(path, params={"query": query, "limit": min(limit, 100)})
        except httpx.HTTPError as exc:
            raise SentryError(f"GET {self.api_base}{path}: {type(exc).__name__}: {exc}") from None
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", "")
            except (ValueError, AttributeError):
                detail = response.text[:200]
            raise SentryError(f"GET {path} → HTTP {response.status_code}: {detail}".rstrip(": "))
        try:
            data = response.json()
        except ValueError:
            raise SentryError(f"GET {path}: not JSON: {response.text[:120]!r}") from None
        if not isinstance(data, list):
            raise SentryError(f"GET {path}: expected a list of issues, got {type(data).__name__}")
        return [item for item in data if isinstance(item, dict)]


def issues_frame(items: list[dict[str, Any]]) -> pd.DataFrame:
    """Sentry issue objects → DataFrame (``ISSUE_COLUMNS``; newest ``lastSeen`` first; times UTC)."""
    import pandas as pd

    rows = []
    for item in items:
        metadata = item.get("metadata") if isinstance(item.get("metadata"), dict) else {}
        project = item.get("project") if isinstance(item.get("project"), dict) else {}
        rows.append(
            {
                "id": str(item.get("id", "")),
                "shortId": item.get("shortId", ""),
                "title": item.get("title", ""),
                "culprit": item.get("culprit", ""),
                "level": item.get("level", ""),
                "count": as_int(item.get("count")),  # Sentry sends it as a string
                "userCount": as_int(item.get("userCount")),
                "firstSeen": item.get("firstSeen"),
                "lastSeen": item.get("lastSeen"),
                "type": metadata.get("type", ""),
                "value": metadata.get("value", ""),
                "project": project.get("slug", ""),
                "permalink": item.get("permalink", ""),
            }
        )
    frame = pd.DataFrame(rows, columns=ISSUE_COLUMNS)
    frame["count"] = frame["count"].astype("Int64")
    frame["userCount"] = frame["userCount"].astype("Int64")
    for column in ("firstSeen", "lastSeen"):
        frame[column] = utc_column(frame[column])
    return frame.sort_values("lastSeen", ascending=False, kind="stable").reset_index(drop=True)


def issues_log_frame(items: list[dict[str, Any]]) -> pd.DataFrame:
    """Sentry issue objects → log rows (opsnb.checks.logs.frame) plus a ``count`` column, one row per issue:
    timestamp = lastSeen, message = title, path = culprit, statusCode 500 for error/fatal issues, requestId =
    shortId, projectId = the project's slug, source "sentry"."""
    rows = []
    for item in items:
        if not isinstance(item, dict):
            continue
        level = as_text(item.get("level")) or ""
        project = item.get("project") if isinstance(item.get("project"), dict) else {}
        rows.append(
            {
                "timestamp": item.get("lastSeen"),  # log_frame reads it (unreadable: the row is dropped)
                "level": level,
                "message": as_text(item.get("title")),
                "statusCode": 500 if level in ("error", "fatal") else None,
                "path": as_text(item.get("culprit")),
                "method": None,
                "deploymentId": None,
                "requestId": as_text(item.get("shortId")),
                "source": "sentry",
                "host": None,
                "projectId": as_text(project.get("slug")),
                "id": as_text(item.get("id")),
                "region": None,
                "clientIp": None,
                "count": as_int(item.get("count")),
            }
        )
    return log_frame(rows, extra=("count",))
