"""opsnb.checks.clients.vercel against the sandbox's Vercel stand-in served by uvicorn on 127.0.0.1 (real HTTP)."""

from __future__ import annotations

import time

import pandas as pd
import pytest
from checks.asgi_server import serving

from opsnb.checks.clients.vercel import (
    Vercel,
    VercelError,
    deployment_at,
    deployments_frame,
    live_deployment,
    previous_ready,
)
from opsnb.checks.secrets import Secret
from opsnb.sandbox.store import JsonStore, write_json
from opsnb.sandbox.vercel_api import VercelStandIn, build_state

TOKEN = "vercel-test-token-0123456789"


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """(base URL, state store) of a Vercel stand-in on a free port."""
    folder = tmp_path_factory.mktemp("vercel")
    write_json(folder / "vercel.json", build_state(time.time(), "shop", "http://127.0.0.1:1"))
    store = JsonStore(folder / "vercel.json")
    app = VercelStandIn(store, TOKEN, lambda: "http://127.0.0.1:1").app()
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
        assert live["uid"] == store.load()["bad"] and live["how"] == "project's production target"
        target = previous_ready(deps, live["uid"])
        assert target["uid"] == deps.iloc[1]["uid"]
        before = pd.Timestamp.now(tz="UTC").floor("s")
        assert v.rollback("shop", target["uid"]) == f"rolled back shop to {target['uid']}"
        after = live_deployment(v.project("shop"), deps)
    assert after["uid"] == target["uid"] and after["how"] == "instant rollback" and after["since"] >= before
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
    assert previous_ready(deps, "dpl_3")["uid"] == "dpl_1"  # skips the ERROR one
    assert previous_ready(deps, "dpl_1") is None
    assert deps.iloc[2]["commit"] == "abcdef1" and deps.iloc[2]["message"] == "first"
    at = pd.Timestamp(ms + 2500, unit="ms", tz="UTC")
    assert deployment_at(deps, at)["uid"] == "dpl_1"
    assert deployment_at(deps, pd.Timestamp(ms, unit="ms", tz="UTC")) is None
    fallback = live_deployment({}, deps)
    assert fallback["uid"] == "dpl_3" and fallback["since"] == pd.Timestamp(ms + 3500, unit="ms", tz="UTC")
