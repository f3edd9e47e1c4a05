"""opsnb.checks.triage.deploys against the sandbox's Vercel stand-in over real HTTP: what changed, the
triage.deployments check, and the gated rollback."""

from __future__ import annotations

import pandas as pd
import pytest
from checks.triage.triage_data import TOKEN, TOKEN_ENV, logs, traffic

from opsnb.checks import findings
from opsnb.checks.triage import deploys, error_rate


def test_what_changed_names_the_live_deployment(burst, token_env):
    state = burst.store.load()
    changes = deploys.what_changed(burst.base, token_env, "shop")
    assert changes.error == "" and changes.deployments["uid"].tolist() == [
        d["uid"] for d in state["deployments"]
    ]
    assert changes.live.uid == state["bad"] and changes.live.how == "project's production target"
    table = deploys.check_deployments(changes)
    [c] = findings.all_conclusions()
    assert (c.check, c.status) == ("triage.deployments", "pass")
    assert c.title.startswith(f"Production serves {state['bad']} since ")
    assert "refactor: compute checkout totals" in c.detail and table["live"].tolist() == [
        True,
        False,
        False,
        False,
    ]


@pytest.mark.parametrize(
    ("token", "project", "why"),
    [
        ("wrong-token", "shop", "HTTP 401"),
        (None, "shop", "is not set"),
        (TOKEN, "no-such-project", "no production"),
    ],
)
def test_blind_to_vercel_is_inconclusive_and_essential(burst, monkeypatch, token, project, why):
    if token is None:
        monkeypatch.delenv(TOKEN_ENV, raising=False)
    else:
        monkeypatch.setenv(TOKEN_ENV, token)
    changes = deploys.what_changed(burst.base, TOKEN_ENV, project)
    assert changes.live is None and changes.deployments.empty
    assert deploys.check_deployments(changes) is None
    [c] = findings.all_conclusions()
    assert c.status == "inconclusive" and c.essential and why in c.detail and "wrong-token" not in c.detail
    assert findings.verdict() == "WARN"


def judged_burst(changes: deploys.Changes) -> error_rate.Judged:
    """Ten failing minutes right after the live deployment went live."""
    start = changes.live.since + pd.Timedelta(seconds=30)
    rows = traffic(start, 10, 30, 4, changes.live.uid)
    return error_rate.judge(logs(rows), changes, now=start + pd.Timedelta(minutes=10))


def test_rollback_is_planned_headless_and_applied_only_with_allow_writes(
    burst, token_env, monkeypatch, capsys
):
    monkeypatch.setenv("OPSNB_HEADLESS", "1")
    monkeypatch.setenv("OPSNB_ALLOW_WRITES", "0")
    state = burst.store.load()
    previous = state["deployments"][1]["uid"]
    changes = deploys.what_changed(burst.base, token_env, "shop")
    judged = judged_burst(changes)
    assert judged.rule.fired and judged.started_by.uid == state["bad"]
    planned = deploys.offer_rollback(judged, changes, burst.base, token_env, "shop")
    assert planned["status"] == "planned" and previous in planned["title"]
    assert any(f"/v1/projects/shop/rollback/{previous}" in step for step in planned["plan"])
    assert burst.store.load()["current"] == state["bad"], "nothing applied without --allow-writes"
    monkeypatch.setenv("OPSNB_ALLOW_WRITES", "1")
    applied = deploys.offer_rollback(judged, changes, burst.base, token_env, "shop")
    assert applied["status"] == "applied" and burst.store.load()["current"] == previous
    after = deploys.what_changed(burst.base, token_env, "shop")
    assert after.live.uid == previous and after.live.how == "instant rollback"
    assert deploys.offer_rollback(judged, after, burst.base, token_env, "shop") is None, (
        "the culprit no longer serves"
    )
    assert "no longer serves" in capsys.readouterr().out
    assert not findings.all_conclusions(), "offering an action concludes nothing"


def test_no_rollback_when_the_rule_did_not_fire(burst, token_env, capsys):
    changes = deploys.what_changed(burst.base, token_env, "shop")
    start = changes.live.since + pd.Timedelta(seconds=30)
    quiet = error_rate.judge(
        logs(traffic(start, 10, 30, 0, changes.live.uid)), changes, now=start + pd.Timedelta(minutes=10)
    )
    assert deploys.offer_rollback(quiet, changes, burst.base, token_env, "shop") is None
    assert "alert rule did not fire" in capsys.readouterr().out
