"""Gated actions: headless runs apply only with allow_writes; the plan is always recorded."""

from __future__ import annotations

import pytest

from opsnb.checks import findings
from opsnb.checks.actions import action


@pytest.fixture(autouse=True)
def headless(monkeypatch):
    findings.clear()
    monkeypatch.setenv("OPSNB_HEADLESS", "1")
    monkeypatch.setenv("OPSNB_ENV", "staging")
    yield
    findings.clear()


def test_plan_only_without_allow_writes(monkeypatch, capsys) -> None:
    monkeypatch.setenv("OPSNB_ALLOW_WRITES", "0")
    calls = []
    entry = action("Create index", ["CREATE INDEX CONCURRENTLY x ON t(c)"], lambda: calls.append(1))
    assert calls == []
    assert entry["status"] == "planned" and entry["environment"] == "staging"
    out = capsys.readouterr().out
    assert "plan: CREATE INDEX CONCURRENTLY x ON t(c)" in out and "--allow-writes" in out
    assert findings._run.actions[0]["title"] == "Create index"


def test_applied_with_allow_writes(monkeypatch) -> None:
    monkeypatch.setenv("OPSNB_ALLOW_WRITES", "1")
    entry = action("Resend", "POST /v1/events/evt_1/retry", lambda: "resent 1 event")
    assert entry["status"] == "applied" and entry["result"] == "resent 1 event"


def test_failed_apply_is_recorded_and_raised(monkeypatch) -> None:
    monkeypatch.setenv("OPSNB_ALLOW_WRITES", "1")

    def boom():
        raise RuntimeError("lock timeout")

    with pytest.raises(RuntimeError):
        action("Kill", "SELECT pg_terminate_backend(1)", boom)
    assert findings._run.actions[0]["status"] == "failed"
    assert "lock timeout" in findings._run.actions[0]["result"]


def test_an_action_shows_as_one_line_not_a_dict(monkeypatch) -> None:
    from opsnb.checks.actions import action

    monkeypatch.setenv("OPSNB_HEADLESS", "1")
    monkeypatch.setenv("OPSNB_ALLOW_WRITES", "1")
    entry = action("Terminate pid 42", ["SELECT pg_terminate_backend(42)"], lambda: "terminated 1")
    assert entry["status"] == "applied" and entry["plan"] == ["SELECT pg_terminate_backend(42)"]
    assert repr(entry) == "[applied] Terminate pid 42 — terminated 1"
    from IPython.lib.pretty import pretty

    assert pretty(entry) == repr(entry) and "{" not in pretty(entry)
