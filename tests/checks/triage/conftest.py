"""Fixtures of the triage tests: the sandbox's Vercel and Sentry stand-ins served over real HTTP on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from checks.asgi_server import serving
from checks.triage.triage_data import TOKEN, TOKEN_ENV

from opsnb.sandbox.sentry_api import SentryStandIn
from opsnb.sandbox.store import JsonStore, write_json
from opsnb.sandbox.vercel_api import VercelStandIn, build_state


@pytest.fixture
def token_env(monkeypatch: pytest.MonkeyPatch) -> str:
    """The NAME of an environment variable holding the stand-ins' token."""
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    return TOKEN_ENV


@pytest.fixture(scope="module")
def standins(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """SimpleNamespace(base, store, faults) of the Vercel and Sentry stand-ins on one free port."""
    folder = tmp_path_factory.mktemp("standins")
    write_json(folder / "vercel.json", build_state(time.time(), "shop", "http://127.0.0.1:1"))
    store = JsonStore(folder / "vercel.json")
    faults = {"500-burst": True}
    vercel_app = VercelStandIn(store, TOKEN, lambda: "http://127.0.0.1:1").app()
    sentry_app = SentryStandIn(store, TOKEN, lambda name: faults.get(name, False)).app()

    async def app(scope, receive, send):
        target = sentry_app if scope.get("path", "").startswith("/api/0/") else vercel_app
        await target(scope, receive, send)

    with serving(app) as base:
        yield SimpleNamespace(base=base, store=store, faults=faults)


@pytest.fixture
def burst(standins: SimpleNamespace) -> Iterator[SimpleNamespace]:
    """The stand-ins with the 500-burst fault on and the bad deployment live; restored afterwards."""
    before = standins.store.load()
    standins.faults["500-burst"] = True
    yield standins
    standins.faults["500-burst"] = True
    with standins.store.update() as state:
        state.clear()
        state.update(before)
