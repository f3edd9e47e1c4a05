"""opsnb.checks.triage.signatures: folding messages into signatures, grouping errors, the top-signatures check."""

from __future__ import annotations

import pandas as pd
import pytest
from checks.triage.triage_data import NOW, changes, deployments, logs, traffic

from opsnb.checks import findings
from opsnb.checks.logs.frame import LogRead
from opsnb.checks.triage import error_rate, signatures


def test_signature_folds_ids_numbers_uuids_hex():
    a = "Checkout failed for cart_ab12cd34ef: TypeError: x (reading 'price')\n    at computeTotal (/var/task/a.js:1:2)"
    b = "Checkout failed for cart_zzzzqqqqyy: TypeError: x (reading 'price')\n    at other"
    assert (
        signatures.signature(a)
        == signatures.signature(b)
        == "Checkout failed for cart_<id>: TypeError: x (reading 'price')"
    )
    assert (
        signatures.signature("user 3f2a9c1e-0b4d-4e8f-9a7b-1c2d3e4f5a6b at 10.0.0.12 req 9fa3bc01")
        == "user <uuid> at <n>.<n>.<n>.<n> req <hex>"
    )
    assert (
        signatures.signature("tenant_3 failed 42 times, mail bob@example.com")
        == "tenant_<id> failed <n> times, mail <email>"
    )
    assert signatures.signature("") == "(no message)"
    msgs = pd.Series([a, None, "tenant_3 failed 42 times"], index=[7, 8, 9])
    vec = signatures.signatures(msgs)
    assert vec.index.tolist() == [7, 8, 9]
    assert vec.tolist() == [
        signatures.signature(a),
        "(no message)",
        signatures.signature("tenant_3 failed 42 times"),
    ], "pyarrow's RE2 and Python's re agree"


def test_top_signatures_and_the_lean_summary_agree():
    start = NOW - pd.Timedelta(minutes=10)
    rows = traffic(start, 10, 20, 4, "dpl_a", msg="cart_ab12cd34ef failed") + [
        {
            "timestamp": NOW - pd.Timedelta(minutes=1),
            "statusCode": -1,
            "message": "Runtime exited",
            "path": None,
        }
    ]
    frame = logs(rows).frame
    top = signatures.top_signatures(frame)
    assert top["signature"].tolist() == ["cart_<id> failed <n>", "Runtime exited"]
    assert top["count"].tolist() == [50, 1] and top.loc[1, "path"] == "(none)"
    assert top.loc[0, "deployments"] == "dpl_a" and top.loc[0, "example"].startswith("cart_ab12cd34ef failed")
    lean = signatures.summarize_5xx(frame)
    assert lean["count"].tolist() == [50, 1] and list(lean.columns)[:3] == ["signature", "path", "statusCode"]
    assert len(signatures.top_signatures(frame, n=1)) == 1
    assert signatures.top_signatures(frame[frame["statusCode"] == 200]).empty


def judged_with(err_every: int, fired_minutes: int = 10) -> error_rate.Judged:
    """30 minutes of traffic on dpl_a, the last ``fired_minutes`` with every ``err_every``-th request failing."""
    start = NOW - pd.Timedelta(minutes=30)
    rows = traffic(start, 30 - fired_minutes, 30, 0, "dpl_a") + traffic(
        NOW - pd.Timedelta(minutes=fired_minutes),
        fired_minutes,
        30,
        err_every,
        "dpl_a",
        msg="cart_ab12cd34ef failed",
    )
    what = changes(
        deployments(("dpl_a", start - pd.Timedelta(hours=1), "x")), "dpl_a", start - pd.Timedelta(hours=1)
    )
    return error_rate.judge(logs(rows), what, window_minutes=30, now=NOW)


@pytest.mark.parametrize(
    ("err_every", "status", "severity", "title"),
    [
        (0, "pass", "info", "No 5xx errors in the judged window"),
        (100, "warn", "P2", "3 errors under the alert rule; top signature: cart_<id> failed <n>"),
        # the P1 alert already stands for these errors: the check names them and passes
        (5, "pass", "info", "Top error signature: cart_<id> failed <n>"),
    ],
)
def test_check_top_signatures(err_every, status, severity, title):
    judged = judged_with(err_every)
    table = signatures.check_top_signatures(judged)
    [c] = findings.all_conclusions()
    assert (c.check, c.status, c.severity, c.title) == ("triage.top-signatures", status, severity, title)
    assert len(table) == (0 if not err_every else 1)
    assert judged.rule.fired is (err_every == 5)


def test_no_logs_or_no_requests_is_inconclusive_never_a_pass():
    judged = judged_with(0)
    judged.logs = LogRead.unreadable("FileNotFoundError: log source /nope does not exist")
    assert signatures.check_top_signatures(judged) is None
    [c] = findings.all_conclusions()
    assert c.status == "inconclusive" and "/nope does not exist" in c.detail and not c.essential
    quiet = error_rate.judge(logs([]), changes(deployments(), "dpl_a", NOW), now=NOW)
    signatures.check_top_signatures(quiet)
    [c] = findings.all_conclusions()
    assert c.status == "inconclusive" and "no request logged" in c.detail
