"""opsnb.checks.triage.error_rate: per-minute error rate, the runbook's alert rule, the judged window, attribution
to a deployment, and the triage.error-rate check."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from checks.triage.triage_data import NOW, changes, deployments, logs, traffic
from matplotlib.figure import Figure

from opsnb.checks import findings
from opsnb.checks.logs.frame import LogRead
from opsnb.checks.triage import error_rate
from opsnb.checks.triage.deploys import Changes


def rate(rows: list[dict], start: pd.Timestamp) -> pd.DataFrame:
    return error_rate.error_rate(logs(rows).frame, start, NOW)


def test_error_rate_and_alert_rule_fires_only_when_sustained():
    start = NOW - pd.Timedelta(minutes=20)
    rule = error_rate.alert_rule(rate(traffic(start, 20, 30, 0, "dpl_a"), start))
    assert not rule.fired and rule.windows_judged > 10 and rule.errors == 0
    # 10 % errors for 8 minutes → fires
    per = rate(
        traffic(start, 12, 30, 0, "dpl_a") + traffic(start + pd.Timedelta(minutes=12), 8, 30, 10, "dpl_b"),
        start,
    )
    assert per["errors"].sum() == 24 and per["requests"].sum() == 600
    rule = error_rate.alert_rule(per)
    assert rule.fired and rule.worst.rate == pytest.approx(0.1) and rule.worst.errors == 15
    assert rule.first_breach >= start + pd.Timedelta(minutes=8)
    # a 2-minute spike at 10 % over 5 minutes stays ≤ 5 % → does not fire
    spike = traffic(start, 18, 30, 0, "dpl_a") + traffic(
        start + pd.Timedelta(minutes=18), 2, 30, 10, "dpl_a2"
    )
    assert not error_rate.alert_rule(rate(spike, start)).fired
    # too few requests are not judged
    rule = error_rate.alert_rule(rate(traffic(start, 20, 1, 2, "dpl_a"), start))
    assert not rule.fired and rule.windows_judged == 0 and rule.errors == 10 and rule.worst is None


def test_duplicate_lines_of_one_request_count_once_and_crash_counts_as_error():
    t = NOW - pd.Timedelta(minutes=1)
    rows = [
        {"timestamp": t, "statusCode": 200, "requestId": "r1"},
        {"timestamp": t, "statusCode": 500, "requestId": "r1", "message": "x"},
        {"timestamp": t, "statusCode": -1, "requestId": "r2"},
        {"timestamp": t, "statusCode": None, "requestId": "r3"},
    ]
    per = rate(rows, t)
    assert per["requests"].sum() == 2 and per["errors"].sum() == 2


def burst_rows() -> list[dict]:
    """20 good minutes on dpl_good, then 20 minutes on dpl_bad with 1 request in 8 failing."""
    start = NOW - pd.Timedelta(minutes=40)
    return traffic(start, 20, 30, 0, "dpl_good") + traffic(
        start + pd.Timedelta(minutes=20),
        20,
        30,
        8,
        "dpl_bad",
        msg="TypeError: undefined price for cart_ab12cd34ef",
    )


BAD_AT = NOW - pd.Timedelta(minutes=20, seconds=30)
DEPS = deployments(
    ("dpl_bad", BAD_AT, "refactor totals"), ("dpl_good", NOW - pd.Timedelta(hours=2), "wishlist")
)


def test_judge_names_the_deployment_and_the_top_signature():
    judged = error_rate.judge(
        logs(burst_rows()), changes(DEPS, "dpl_bad", BAD_AT), window_minutes=30, now=NOW
    )
    assert judged.window.start == BAD_AT and judged.window.why == "since dpl_bad went live (test)"
    assert (
        judged.rule.fired
        and judged.started_by.uid == "dpl_bad"
        and judged.started_by.message == "refactor totals"
    )
    assert (
        judged.onset >= BAD_AT
        and judged.top.iloc[0]["signature"] == "TypeError: undefined price for cart_<id> <n>"
    )
    assert judged.earlier is None, "the good deployment's minutes before the window had no errors"
    table = error_rate.check_error_rate(judged)
    [c] = findings.all_conclusions()
    assert (c.check, c.status, c.severity, c.essential) == ("triage.error-rate", "fail", "P1", True)
    assert re.fullmatch(r"Error rate 1\d\.\d % over 5 minutes, above the 5 % alert rule", c.title), c.title
    assert "right after deployment dpl_bad (refactor totals, created" in c.detail
    assert "top signature: TypeError: undefined price for cart_<id> <n> on /api/x" in c.detail
    assert table.loc[0, "alert_rule_fired"] and table.loc[0, "started_by"] == "dpl_bad"


def test_after_a_rollback_the_burst_is_history_and_the_check_passes():
    rolled = changes(DEPS, "dpl_good", NOW - pd.Timedelta(minutes=8), how="instant rollback")
    rows = burst_rows()
    rows = [r for r in rows if r["timestamp"] < rolled.live.since] + traffic(
        rolled.live.since, 8, 30, 0, "dpl_good"
    )
    judged = error_rate.judge(logs(rows), rolled, window_minutes=30, now=NOW)
    assert judged.window.why == "since dpl_good went live (instant rollback)" and not judged.rule.fired
    assert judged.earlier.errors > 0 and judged.earlier.deployments == "dpl_bad"
    error_rate.check_error_rate(judged)
    [c] = findings.all_conclusions()
    assert c.status == "pass" and c.title.startswith("Error rate stays under the alert rule")
    assert (
        "earlier errors outside the judged window" in c.detail
        and "on dpl_bad (history, not judged)" in c.detail
    )
    assert findings.verdict() == "PASS"


def test_since_moves_the_window_forward():
    since = "2025-01-01T11:58:00"  # naive: UTC
    what = changes(DEPS, "dpl_bad", BAD_AT)
    judged = error_rate.judge(logs(burst_rows()), what, window_minutes=30, since=since, now=NOW)
    assert judged.window.start == NOW - pd.Timedelta(minutes=2) and judged.window.why == f"since {since}"
    assert judged.earlier.deployments == "dpl_bad" and judged.rule.requests == 60


def test_too_little_traffic_passes_with_that_title():
    quiet = traffic(NOW - pd.Timedelta(minutes=15), 15, 1, 5, "dpl_bad")  # 15 requests, 3 of them failing
    judged = error_rate.judge(logs(quiet), changes(DEPS, "dpl_bad", BAD_AT), window_minutes=30, now=NOW)
    error_rate.check_error_rate(judged)
    [c] = findings.all_conclusions()
    assert c.status == "pass" and c.title == "Too little traffic to apply the alert rule"
    assert "3 errors in 15 requests" in c.detail and "no 5-minute window with ≥ 20 requests" in c.detail


def test_unknown_deployments_attribute_to_the_logged_deployment():
    unknown = Changes("shop", deployments(), None, "VercelError: HTTP 401")
    judged = error_rate.judge(logs(burst_rows()), unknown, window_minutes=30, now=NOW)
    assert (
        judged.window.why == "last 30 min"
        and judged.started_by.uid == "dpl_bad"
        and judged.started_by.created is None
    )
    error_rate.check_error_rate(judged)
    [c] = findings.all_conclusions()
    assert c.severity == "P1" and "right after deployment dpl_bad;" in c.detail


@pytest.mark.parametrize(
    ("read", "why"),
    [
        (LogRead.unreadable("FileNotFoundError: log source /nope does not exist"), "/nope does not exist"),
        (logs([]), "no request logged"),
    ],
)
def test_blind_is_inconclusive_and_essential(read, why):
    judged = error_rate.judge(read, changes(DEPS, "dpl_bad", BAD_AT), now=NOW)
    assert error_rate.check_error_rate(judged) is None
    [c] = findings.all_conclusions()
    assert c.status == "inconclusive" and why in c.detail and c.essential and findings.verdict() == "WARN"


def test_plot_marks_deployments_even_without_logs():
    what = changes(DEPS, "dpl_bad", BAD_AT)
    figure = error_rate.plot_error_rate(error_rate.judge(logs(burst_rows()), what, now=NOW), what)
    assert isinstance(figure, Figure)
    texts = [t.get_text() for t in figure.axes[0].texts]
    assert any("dpl_bad (live)" in t for t in texts) and any("dpl_good" not in t for t in texts)
    legend = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    assert "requests/min" in legend and "error rate %" in legend  # every series labelled, twin axis included
    figure.canvas.draw()
    assert figure.axes[0].get_legend().get_window_extent().x0 >= figure.axes[0].get_window_extent().x1
    blind = error_rate.judge(LogRead.unreadable("OSError: gone"), what, now=NOW)
    empty = error_rate.plot_error_rate(blind, what)
    assert isinstance(empty, Figure) and all(bar.get_height() == 0 for bar in empty.axes[0].containers[0])


def test_an_unreadable_since_is_refused_not_ignored():
    with pytest.raises(ValueError, match="'yesterday' is not a time"):
        error_rate.judge(logs(burst_rows()), changes(DEPS, "dpl_bad", BAD_AT), since="yesterday", now=NOW)
