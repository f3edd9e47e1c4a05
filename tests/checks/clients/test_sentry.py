"""opsnb.checks.clients.sentry, Vercel runtime logs and read_logs' API sources against the sandbox's stand-ins over real HTTP.

One uvicorn server on 127.0.0.1 serves the Vercel stand-in (with a drain folder) and the Sentry issues
stand-in on one port, dispatched the way opsnb.sandbox.standins does it.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from types import SimpleNamespace

import pandas as pd
import pytest
from checks.asgi_server import serving

from opsnb.checks import findings, triage
from opsnb.checks.clients.sentry import ISSUE_COLUMNS, Sentry, SentryError, issues_frame
from opsnb.checks.clients.vercel import Vercel, VercelError
from opsnb.checks.logs import COLUMNS, read_logs, runtime_logs_frame
from opsnb.checks.secrets import Secret
from opsnb.sandbox.sentry_api import SentryStandIn
from opsnb.sandbox.store import JsonStore, write_json
from opsnb.sandbox.vercel_api import VercelStandIn, build_state

TOKEN = "sentry-test-token-0123456789"
TOKEN_ENV = "OPSNB_TEST_SENTRY_TOKEN"
PRICE = "TypeError: Cannot read properties of undefined (reading 'price')"


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """SimpleNamespace(base, store, faults, state, drain) of the stand-ins on a free port."""
    folder = tmp_path_factory.mktemp("standins")
    drain = folder / "drain"
    drain.mkdir()
    state = build_state(time.time(), "shop", "http://127.0.0.1:1")
    write_json(folder / "vercel.json", state)
    store = JsonStore(folder / "vercel.json")
    faults = {"500-burst": True}
    vercel_app = VercelStandIn(store, TOKEN, lambda: "http://127.0.0.1:1", log_dir=drain).app()
    sentry_app = SentryStandIn(store, TOKEN, lambda name: faults.get(name, False)).app()

    async def app(scope, receive, send):
        target = sentry_app if scope.get("path", "").startswith("/api/0/") else vercel_app
        await target(scope, receive, send)

    with serving(app) as base:
        yield SimpleNamespace(base=base, store=store, faults=faults, state=state, drain=drain)


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
    with pytest.raises(SentryError, match="HTTP 401: Invalid token"), sentry(api, "wrong") as s:
        s.issues("acme")
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


# --- check_sentry (the runbook step) --------------------------------------------------------------------------
def judged(minutes: int = 30, fired: bool = False):
    start = pd.Timestamp.now(tz="UTC") - pd.Timedelta(minutes=minutes)
    return SimpleNamespace(
        window_start=start, window_why=f"last {minutes} min", rule=SimpleNamespace(fired=fired)
    )


def test_check_sentry_recent_issue_is_p2_or_info(burst, token_env):
    table = triage.check_sentry(judged(), burst.base, token_env, "acme")
    assert len(table) == 2
    [f] = findings.all_findings()
    assert f.severity == "P2" and f.check == "sentry" and "SHOP-42" in f.detail and PRICE in f.detail
    findings.clear()
    triage.check_sentry(judged(fired=True), burst.base, token_env, "acme")
    assert [f.severity for f in findings.all_findings()] == ["info"], "the P1 alert already says it"


def test_check_sentry_quiet_skipped_and_failing(burst, token_env):
    burst.faults["500-burst"] = False
    triage.check_sentry(judged(), burst.base, token_env, "acme")
    triage.check_sentry(judged(), burst.base, "", "acme")
    triage.check_sentry(judged(), burst.base, token_env, "nope")
    got = sorted((f.severity, f.title) for f in findings.all_findings())
    assert got == [
        ("P2", "Cannot read Sentry issues"),
        ("info", "Sentry not configured: step skipped"),
        ("info", "Sentry: no unresolved error issue seen in the judged window"),
    ]


# --- Vercel runtime logs --------------------------------------------------------------------------------------
def drain_record(k: int, dep: str, status: int, path: str = "/api/checkout") -> dict:
    ts = int(time.time() * 1000) - 60_000 + k
    return {
        "id": f"row{k}",
        "message": "boom" if status >= 500 else "",
        "timestamp": ts,
        "source": "lambda",
        "projectId": "prj_x",
        "deploymentId": dep,
        "host": "shop-abc-acme.vercel.app",
        "path": path,
        "statusCode": status,
        "level": "error" if status >= 500 else "info",
        "proxy": {"method": "POST", "host": "shop.example.com", "path": path, "statusCode": status},
    }


def test_runtime_logs_of_one_deployment(api, token_env):
    bad, other = api.state["deployments"][0]["uid"], api.state["deployments"][1]["uid"]
    lines = [
        json.dumps(drain_record(k, bad if k % 2 else other, 500 if k % 4 == 1 else 200)) for k in range(8)
    ]
    (api.drain / "vercel-20240101T00.ndjson").write_text("\n".join(lines) + '\n{"cut\n\n')
    with Vercel(Secret("VERCEL_TOKEN", TOKEN), api.base) as v:
        raw = v.runtime_logs("shop", bad)
    assert len(raw) == 4 and all(
        json.loads(line)["rowId"] in ("row1", "row3", "row5", "row7") for line in raw
    )
    read = read_logs(f"vercel://shop/{bad}", api_base=api.base, token_env=token_env)
    frame = read.frame
    assert list(frame.columns) == COLUMNS and len(frame) == 4 and read.garbage == 0
    assert list(frame["id"]) == ["row1", "row3", "row5", "row7"]
    assert list(frame["statusCode"]) == [500, 200, 500, 200]
    first = frame.iloc[0]
    assert (first["path"], first["method"], first["host"], first["deploymentId"], first["projectId"]) == (
        "/api/checkout",
        "POST",
        "shop.example.com",
        bad,
        "shop",
    )
    assert first["level"] == "error" and first["message"] == "boom" and first["source"] == "serverless"
    assert first["timestamp"] == pd.Timestamp(json.loads(lines[1])["timestamp"], unit="ms", tz="UTC")
    with pytest.raises(VercelError, match="HTTP 404"), Vercel(Secret("T", TOKEN), api.base) as v:
        v.runtime_logs("shop", "dpl_nope")
    with pytest.raises(ValueError, match="vercel://PROJECT/DEPLOYMENT"):
        read_logs("vercel://shop", api_base=api.base, token_env=token_env)


def test_runtime_logs_frame_counts_garbage():
    from opsnb.checks.logs import _Garbage

    garbage = _Garbage()
    good = json.dumps({"timestampInMs": 1_700_000_000_000, "level": "error", "responseStatusCode": -1})
    frame = runtime_logs_frame([good.encode(), b"", b'{"cut', b"[1]", b"\xff\xfe"], garbage)
    assert len(frame) == 1 and frame.loc[0, "statusCode"] == -1
    assert garbage.count == 4 and garbage.kinds == {"empty": 1, "invalid JSON": 2, "not an object": 1}
