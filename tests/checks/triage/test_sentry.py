"""opsnb.checks.triage.sentry (P0 checklist 4) against the sandbox's Sentry stand-in over real HTTP."""

from __future__ import annotations

import pandas as pd
import pytest
from checks.triage.triage_data import PRICE, TOKEN_ENV, logs, traffic

from opsnb.checks import findings
from opsnb.checks.triage import deploys, error_rate, sentry


def judged(burst, token_env: str, fired: bool) -> error_rate.Judged:
    """The last 30 minutes, with the alert rule fired or not (the window is what Sentry is judged on)."""
    changes = deploys.what_changed(burst.base, token_env, "shop")
    now = pd.Timestamp.now(tz="UTC")
    rows = traffic(now - pd.Timedelta(minutes=10), 10, 30, 4 if fired else 0, changes.live.uid)
    result = error_rate.judge(logs(rows), changes, now=now)
    assert result.rule.fired is fired
    return result


def test_recent_issue_is_p2_when_the_logs_saw_nothing(burst, token_env):
    table = sentry.check_sentry(judged(burst, token_env, False), burst.base, token_env, "acme")
    [c] = findings.all_conclusions()
    assert (c.check, c.status, c.severity) == ("triage.sentry", "warn", "P2")
    assert c.title == "1 unresolved Sentry error issue(s) in the judged window"
    assert "SHOP-42" in c.detail and PRICE in c.detail and table["shortId"].tolist() == ["SHOP-42"]


def test_recent_issue_confirms_a_fired_alert(burst, token_env):
    sentry.check_sentry(judged(burst, token_env, True), burst.base, token_env, "acme")
    [c] = findings.all_conclusions()
    assert (c.status, c.severity) == ("pass", "info") and c.title.startswith("Sentry confirms the errors")
    assert "SHOP-42" in c.detail


def test_quiet_sentry_passes_and_lists_old_issues(burst, token_env):
    burst.faults["500-burst"] = False
    table = sentry.check_sentry(judged(burst, token_env, False), burst.base, token_env, "acme")
    [c] = findings.all_conclusions()
    assert (c.status, c.title) == ("pass", "No unresolved Sentry error issue in the judged window")
    assert table["level"].tolist() == ["warning"], "the old warning is listed, not judged"


@pytest.mark.parametrize(
    ("token_name", "org", "why"),
    [("", "acme", "not configured"), (TOKEN_ENV, "", "not configured"), (TOKEN_ENV, "nope", "HTTP 404")],
)
def test_unconfigured_or_failing_is_inconclusive_not_essential(burst, token_env, token_name, org, why):
    assert sentry.check_sentry(judged(burst, token_env, False), burst.base, token_name, org) is None
    [c] = [c for c in findings.all_conclusions() if c.check == "triage.sentry"]
    assert c.status == "inconclusive" and not c.essential and why in c.detail
