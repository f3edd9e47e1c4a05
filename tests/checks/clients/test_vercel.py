"""opsnb.checks.clients.vercel against the sandbox's Vercel stand-in served by uvicorn on 127.0.0.1 (real HTTP):
deployments, the live one, rollback, env names, runtime logs (also as read_logs' vercel:// source)."""

from __future__ import annotations

import json
import time

import pandas as pd
import pytest
from checks.asgi_server import serving

from opsnb.checks.clients.vercel import (
    Deployment,
    LiveDeployment,
    Vercel,
    VercelError,
    deployment_at,
    deployments_frame,
    live_deployment,
    previous_ready,
    runtime_logs_frame,
)
from opsnb.checks.findings import could_not_look
from opsnb.checks.logs import COLUMNS, read_logs
from opsnb.checks.logs.frame import Garbage
from opsnb.checks.secrets import Secret
from opsnb.sandbox.store import JsonStore, write_json
from opsnb.sandbox.vercel_api import VercelStandIn, build_state

TOKEN = "vercel-test-token-0123456789"
TOKEN_ENV = "OPSNB_TEST_VERCEL_TOKEN"


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """(base URL, state store) of a Vercel stand-in on a free port; its drain folder is ``store.path.parent / 'drain'``."""
    folder = tmp_path_factory.mktemp("vercel")
    (folder / "drain").mkdir()
    write_json(folder / "vercel.json", build_state(time.time(), "shop", "http://127.0.0.1:1"))
    store = JsonStore(folder / "vercel.json")
    app = VercelStandIn(store, TOKEN, lambda: "http://127.0.0.1:1", log_dir=folder / "drain").app()
    with serving(app) as base:
        yield base, store


def client(base: str, token: str = TOKEN) -> Vercel:
    return Vercel(Secret("VERCEL_TOKEN", token), base)


def test_deployments_newest_first_with_columns(api):
    base, store = api
    with client(base) as v:
        deps = v.deployments("shop")
    state = store.load()
    assert list(deps.columns) == [
        "uid",
        "url",
        "state",
        "target",
        "created",
        "ready",
        "creator",
        "commit",
        "message",
    ]
    assert deps["uid"].tolist() == [d["uid"] for d in state["deployments"]]
    assert deps["created"].is_monotonic_decreasing and str(deps["created"].dt.tz) == "UTC"
    assert deps.iloc[0]["message"].startswith("refactor: compute checkout totals")
    with client(base) as v:
        assert len(v.deployments("other-project")) == 0


def test_live_deployment_and_rollback(api):
    base, store = api
    with client(base) as v:
        deps = v.deployments("shop")
        live = live_deployment(v.project("shop"), deps)
        assert isinstance(live, LiveDeployment)
        assert live.uid == store.load()["bad"] and live.how == "project's production target"
        target = previous_ready(deps, live.uid)
        assert isinstance(target, Deployment) and target.uid == deps.iloc[1]["uid"]
        assert target.state == "READY" and target.message and target.created < deps.iloc[0]["created"]
        before = pd.Timestamp.now(tz="UTC").floor("s")
        assert v.rollback("shop", target.uid) == f"rolled back shop to {target.uid}"
        after = live_deployment(v.project("shop"), deps)
    assert after.uid == target.uid and after.how == "instant rollback" and after.since >= before
    with store.update() as state:  # back to the bad deployment for the other tests
        state["current"] = state["bad"]


def test_env_names_never_values(api):
    base, _ = api
    with client(base) as v:
        envs = v.env_names("shop")
    assert list(envs.columns) == ["key", "type", "target"]
    assert {"DATABASE_URL", "NEXTAUTH_URL", "STRIPE_WEBHOOK_SECRET"} <= set(envs["key"])
    assert "value" not in envs.columns
    assert not envs.astype(str).apply(lambda col: col.str.contains("googleusercontent|sentry.io")).any().any()


def test_errors_are_one_line_without_the_token(api):
    base, _ = api
    with client(base, "wrong-token-value") as v, pytest.raises(VercelError) as err:
        v.deployments("shop")
    assert "401" in str(err.value) and "Not authorized" in str(err.value)
    assert "wrong-token-value" not in str(err.value) and "\n" not in str(err.value)
    assert could_not_look(err.value), "a check that meets it concludes inconclusive, not a bug"
    with client(base) as v, pytest.raises(VercelError, match="404"):
        v.rollback("shop", "dpl_doesnotexist")
    with client("http://127.0.0.1:9") as v, pytest.raises(VercelError, match="ConnectError"):
        v.deployments("shop")


def test_pure_helpers():
    ms = 1_700_000_000_000
    items = [
        {
            "uid": "dpl_3",
            "url": "u3",
            "readyState": "READY",
            "target": "production",
            "createdAt": ms + 3000,
            "ready": ms + 3500,
        },
        {"uid": "dpl_2", "url": "u2", "readyState": "ERROR", "target": "production", "createdAt": ms + 2000},
        {
            "uid": "dpl_1",
            "url": "u1",
            "readyState": "READY",
            "target": "production",
            "createdAt": ms + 1000,
            "meta": {"githubCommitSha": "abcdef1234", "githubCommitMessage": "first\nbody"},
        },
    ]
    deps = deployments_frame(items)
    assert previous_ready(deps, "dpl_3").uid == "dpl_1"  # skips the ERROR one
    assert previous_ready(deps, "dpl_1") is None
    assert deps.iloc[2]["commit"] == "abcdef1" and deps.iloc[2]["message"] == "first"
    at = pd.Timestamp(ms + 2500, unit="ms", tz="UTC")
    assert deployment_at(deps, at) == Deployment(
        "dpl_1", "u1", "READY", "production", pd.Timestamp(ms + 1000, unit="ms", tz="UTC"), "first"
    )
    assert deployment_at(deps, pd.Timestamp(ms, unit="ms", tz="UTC")) is None
    fallback = live_deployment({}, deps)
    assert fallback == LiveDeployment(
        "dpl_3", "u3", pd.Timestamp(ms + 3500, unit="ms", tz="UTC"), "newest READY deployment"
    )
    assert live_deployment({}, deployments_frame([])) is None, "nothing deployed: no live deployment"
    assert previous_ready(deployments_frame([]), "dpl_3") is None


# --- runtime logs -------------------------------------------------------------------------------------------
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


def test_runtime_logs_of_one_deployment(api, monkeypatch):
    base, store = api
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    state = store.load()
    bad, other = state["deployments"][0]["uid"], state["deployments"][1]["uid"]
    lines = [
        json.dumps(drain_record(k, bad if k % 2 else other, 500 if k % 4 == 1 else 200)) for k in range(8)
    ]
    (store.path.parent / "drain" / "vercel-20240101T00.ndjson").write_text("\n".join(lines) + '\n{"cut\n\n')
    with client(base) as v:
        raw = v.runtime_logs("shop", bad)
    assert len(raw) == 4 and all(
        json.loads(line)["rowId"] in ("row1", "row3", "row5", "row7") for line in raw
    )
    read = read_logs(f"vercel://shop/{bad}", api_base=base, token_env=TOKEN_ENV)
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
    with pytest.raises(VercelError, match="HTTP 404"), client(base) as v:
        v.runtime_logs("shop", "dpl_nope")
    with pytest.raises(ValueError, match="vercel://PROJECT/DEPLOYMENT"):
        read_logs("vercel://shop", api_base=base, token_env=TOKEN_ENV)


def test_runtime_logs_frame_counts_garbage():
    garbage = Garbage()
    good = json.dumps({"timestampInMs": 1_700_000_000_000, "level": "error", "responseStatusCode": -1})
    frame = runtime_logs_frame([good.encode(), b"", b'{"cut', b"[1]", b"\xff\xfe"], garbage)
    assert len(frame) == 1 and frame.loc[0, "statusCode"] == -1
    assert garbage.count == 4 and garbage.kinds == {"empty": 1, "invalid JSON": 2, "not an object": 1}
    assert list(runtime_logs_frame([]).columns) == COLUMNS
