"""opsnb.checks.triage.crashes: crashed functions (statusCode -1) grouped, and the triage.crashed-functions check."""

from __future__ import annotations

import pandas as pd
from checks.triage.triage_data import NOW, changes, deployments, logs, traffic

from opsnb.checks import findings
from opsnb.checks.triage import crashes, error_rate

LIVE_SINCE = NOW - pd.Timedelta(hours=1)


def crash(minutes_ago: float, path: str, dep: str = "dpl_a") -> dict:
    return {
        "timestamp": NOW - pd.Timedelta(minutes=minutes_ago),
        "statusCode": -1,
        "message": "Error: Runtime exited with error: exit status 1\nRuntime.ExitError",
        "path": path,
        "deploymentId": dep,
        "requestId": f"crash-{path}-{minutes_ago}",
    }


def judged(rows: list[dict]) -> error_rate.Judged:
    what = changes(deployments(("dpl_a", LIVE_SINCE, "x")), "dpl_a", LIVE_SINCE)
    return error_rate.judge(logs(rows), what, window_minutes=30, now=NOW)


def test_crashes_grouped_by_path_and_deployment():
    table = crashes.crashed_functions(
        logs([crash(3, "/a"), crash(2, "/a"), crash(1, "/b"), crash(1, "/b", "dpl_b")]).frame
    )
    assert table[["path", "deploymentId", "count"]].values.tolist() == [
        ["/a", "dpl_a", 2],
        ["/b", "dpl_a", 1],
        ["/b", "dpl_b", 1],
    ]
    assert table.loc[0, "signature"] == "Error: Runtime exited with error: exit status <n>"


def test_crashes_under_the_alert_rule_are_p2():
    rows = traffic(NOW - pd.Timedelta(minutes=20), 20, 30, 0, "dpl_a") + [crash(3, "/a"), crash(40, "/old")]
    crashes.check_crashes(judged(rows))
    [c] = findings.all_conclusions()
    assert (c.check, c.status, c.severity) == ("triage.crashed-functions", "warn", "P2")
    assert (
        c.title == "1 function crash(es) in the judged window"
        and "/a on dpl_a: 1×" in c.detail
        and "/old" not in c.detail
    )


def test_no_crash_passes_and_crashes_under_a_fired_rule_are_named_only():
    quiet = traffic(NOW - pd.Timedelta(minutes=20), 20, 30, 0, "dpl_a")
    crashes.check_crashes(judged(quiet))
    assert [(c.status, c.title) for c in findings.all_conclusions()] == [
        ("pass", "No function crashed in the judged window")
    ]
    findings.clear()
    burst = traffic(NOW - pd.Timedelta(minutes=20), 20, 30, 4, "dpl_a") + [crash(3, "/a")]
    judgement = judged(burst)
    assert judgement.rule.fired
    crashes.check_crashes(judgement)
    [c] = findings.all_conclusions()
    assert c.status == "pass" and c.title == "1 function crash(es) in the judged window"
