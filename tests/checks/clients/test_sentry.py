"""opsnb.checks.clients.sentry and read_logs' sentry:// source against the sandbox's stand-ins over real HTTP.

One uvicorn server on 127.0.0.1 serves the Vercel stand-in (the deployments the issues follow) and the Sentry
issues stand-in on one port, dispatched the way opsnb.sandbox.standins does it.
"""

from __future__ import annotations

import datetime as dt
import time
from types import SimpleNamespace

import pandas as pd
import pytest
from checks.asgi_server import serving

from opsnb.checks.clients.sentry import ISSUE_COLUMNS, Sentry, SentryError, issues_frame, issues_log_frame
from opsnb.checks.findings import could_not_look
from opsnb.checks.logs import COLUMNS, read_logs
from opsnb.checks.secrets import Secret
from opsnb.sandbox.sentry_api import SentryStandIn
from opsnb.sandbox.store import JsonStore, write_json
from opsnb.sandbox.vercel_api import VercelStandIn, build_state

TOKEN = "sentry-test-token-0123456789"
TOKEN_ENV = "OPSNB_TEST_SENTRY_TOKEN"
PRICE = "TypeError: Cannot read properties of undefined (reading 'price')"


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """SimpleNamespace(base, store, faults, state) of the stand-ins on a free port."""
    folder = tmp_path_factory.mktemp("standins")
    state = build_state(time.time(), "shop", "http://127.0.0.1:1")
    write_json(folder / "vercel.json", state)
    store = JsonStore(folder / "vercel.json")
    faults = {"500-burst": True}
    vercel_app = VercelStandIn(store, TOKEN, lambda: "http://127.0.0.1:1").app()
    sentry_app = SentryStandIn(store, TOKEN, lambda name: faults.get(name, False)).app()

    async def app(scope, receive, send):
        target = sentry_app if scope.get("path", "").startswith("/api/0/") else vercel_app
        await target(scope, receive, send)

    with serving(app) as base:
        yield SimpleNamespace(base=base, store=store, faults=faults, state=state)


@pytest.fixture
def token_env(monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    return TOKEN_ENV


@pytest.fixture
def burst(api):
    """500-burst on with the bad deployment live; restored afterwards."""
    before = api.store.load()
    api.faults["500-burst"] = True
    yield api
    api.faults["500-burst"] = True
    with api.store.update() as state:
        state.clear()
        state.update(before)


def sentry(api, token: str = TOKEN) -> Sentry:
    return Sentry(Secret("SENTRY_TOKEN", token), api.base)


# --- Sentry issues ------------------------------------------------------------------------------------------
def test_burst_gives_one_recent_price_issue(burst):
    with sentry(burst) as s:
        items = s.issues("acme")
    assert [i["level"] for i in items] == ["error", "warning"], "newest lastSeen first"
    issue = items[0]
    assert issue["title"] == PRICE and issue["metadata"] == {
        **issue["metadata"],
        "type": "TypeError",
        "value": "Cannot read properties of undefined (reading 'price')",
    }
    assert isinstance(issue["count"], str) and int(issue["count"]) > 0, "Sentry sends count as a string"
    for key in ("id", "shortId", "culprit", "userCount", "firstSeen", "permalink"):
        assert issue[key], key
    frame = issues_frame(items)
    assert list(frame.columns) == ISSUE_COLUMNS
    assert str(frame["count"].dtype) == "Int64" and str(frame["lastSeen"].dtype).startswith("datetime64")
    now = pd.Timestamp.now(tz="UTC")
    assert now - frame.loc[0, "lastSeen"] < pd.Timedelta(minutes=1)
    assert frame.loc[0, "firstSeen"] < frame.loc[0, "lastSeen"]
    assert now - frame.loc[1, "lastSeen"] > pd.Timedelta(days=1), "the warning is old"


def test_fault_off_no_recent_issue(burst):
    burst.faults["500-burst"] = False
    with sentry(burst) as s:
        frame = issues_frame(s.issues("acme"))
    assert list(frame["level"]) == ["warning"]
    assert pd.Timestamp.now(tz="UTC") - frame["lastSeen"].max() > pd.Timedelta(days=1)


def test_rolled_back_issue_stops_at_the_rollback(burst, token_env):
    with burst.store.update() as state:
        state["rollbacks"].append(
            {
                "fromDeploymentId": state["bad"],
                "toDeploymentId": state["deployments"][1]["uid"],
                "requestedAt": int((time.time() - 600) * 1000),
            }
        )
        state["current"] = state["deployments"][1]["uid"]
    read = read_logs("sentry://acme", api_base=burst.base, token_env=token_env)
    price = read.frame[read.frame["message"] == PRICE].iloc[0]
    age = pd.Timestamp.now(tz="UTC") - price["timestamp"]
    assert pd.Timedelta(minutes=10) < age < pd.Timedelta(minutes=11)


def test_read_logs_sentry_source_maps_issues_to_the_frame(burst, token_env):
    read = read_logs("sentry://acme", api_base=burst.base, token_env=token_env)
    frame = read.frame
    assert list(frame.columns) == [*COLUMNS, "count"]
    assert read.files == [] and read.garbage == 0 and read.lines == 2
    assert (
        str(frame["timestamp"].dtype) == "datetime64[ms, UTC]" and str(frame["statusCode"].dtype) == "Int64"
    )
    assert frame["timestamp"].is_monotonic_increasing
    error = frame[frame["level"] == "error"].iloc[0]
    assert error["message"] == PRICE and error["path"] == "POST /api/checkout"
    assert error["statusCode"] == 500 and error["source"] == "sentry" and error["count"] > 0
    assert error["requestId"].startswith("SHOP-") and error["projectId"] == "shop"
    warning = frame[frame["level"] == "warning"].iloc[0]
    assert pd.isna(warning["statusCode"]), "only error/fatal issues count as 500s"
    recent = read_logs("sentry://acme", since=dt.timedelta(hours=1), api_base=burst.base, token_env=token_env)
    assert list(recent.frame["level"]) == ["error"]


def test_sentry_errors_are_one_line(api, token_env):
    with pytest.raises(SentryError, match="HTTP 401: Invalid token") as refused, sentry(api, "wrong") as s:
        s.issues("acme")
    assert could_not_look(refused.value) and "wrong" not in str(refused.value)
    with pytest.raises(SentryError, match="HTTP 404"), sentry(api) as s:
        s.issues("other-org")
    with pytest.raises(SentryError, match="ConnectError"):
        Sentry(Secret("T", TOKEN), "http://127.0.0.1:1").issues("acme")
    with pytest.raises(ValueError, match="token_env"):
        read_logs("sentry://acme", api_base=api.base)
    with pytest.raises(ValueError, match="sentry://ORG"):
        read_logs("sentry://acme/x", api_base=api.base, token_env=token_env)
    with pytest.raises(ValueError, match="URL"):
        read_logs("https://example.com/logs")


def test_issues_as_log_rows_skip_non_objects():
    items = [
        {
            "id": "1",
            "shortId": "SHOP-1",
            "title": "boom",
            "culprit": "GET /x",
            "level": "fatal",
            "count": "3",
            "lastSeen": "2025-03-01T10:00:00.5Z",
            "project": {"slug": "shop"},
        },
        {"id": "2", "level": "info", "lastSeen": "2025-03-01T09:00:00Z"},
        "not an issue",
        {"id": "3", "level": "error"},  # no lastSeen: no time, no row
    ]
    frame = issues_log_frame(items)
    assert list(frame.columns) == [*COLUMNS, "count"] and frame["id"].tolist() == ["2", "1"]
    fatal = frame.iloc[1]
    assert fatal["statusCode"] == 500 and fatal["count"] == 3 and fatal["requestId"] == "SHOP-1"
    assert fatal["timestamp"] == pd.Timestamp("2025-03-01 10:00:00.5", tz="UTC")
    assert pd.isna(frame.iloc[0]["statusCode"])
