"""opsnb.checks.triage: signatures, per-minute error rate, the runbook's alert rule, attribution, causes."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from opsnb.checks import findings, triage
from opsnb.checks.clients.vercel import deployments_frame

NOW = pd.Timestamp("2025-01-01 12:00", tz="UTC")


def frame(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    for col in ["level", "message", "path", "method", "deploymentId", "requestId", "source", "host"]:
        if col not in df:
            df[col] = None
    df["statusCode"] = df["statusCode"].astype("Int64")
    df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True)
    return df.sort_values("timestamp").reset_index(drop=True)


def traffic(
    start: pd.Timestamp, minutes: int, per_min: int, err_every: int, dep: str, msg: str = "boom"
) -> list[dict]:
    rows, k = [], 0
    for m in range(minutes):
        for j in range(per_min):
            k += 1
            bad = err_every and k % err_every == 0
            rows.append(
                {
                    "timestamp": start + pd.Timedelta(minutes=m, seconds=j * 60 / per_min),
                    "statusCode": 500 if bad else 200,
                    "message": f"{msg} {k}" if bad else "",
                    "path": "/api/x",
                    "deploymentId": dep,
                    "requestId": f"{dep}-{k}",
                }
            )
    return rows


@pytest.fixture(autouse=True)
def _fresh():
    findings.clear()
    yield
    findings.clear()


def test_signature_folds_ids_numbers_uuids_hex():
    a = "Checkout failed for cart_ab12cd34ef: TypeError: x (reading 'price')\n    at computeTotal (/var/task/a.js:1:2)"
    b = "Checkout failed for cart_zzzzqqqqyy: TypeError: x (reading 'price')\n    at other"
    assert (
        triage.signature(a)
        == triage.signature(b)
        == "Checkout failed for cart_<id>: TypeError: x (reading 'price')"
    )
    assert (
        triage.signature("user 3f2a9c1e-0b4d-4e8f-9a7b-1c2d3e4f5a6b at 10.0.0.12 req 9fa3bc01")
        == "user <uuid> at <n>.<n>.<n>.<n> req <hex>"
    )
    assert (
        triage.signature("tenant_3 failed 42 times, mail bob@example.com")
        == "tenant_<id> failed <n> times, mail <email>"
    )
    assert triage.signature("") == "(no message)"
    msgs = pd.Series([a, None, "tenant_3 failed 42 times"], index=[7, 8, 9])
    vec = triage.signatures(msgs)
    assert vec.index.tolist() == [7, 8, 9]
    assert vec.tolist() == [triage.signature(a), "(no message)", triage.signature("tenant_3 failed 42 times")]


def test_error_rate_and_alert_rule_fires_only_when_sustained():
    start = NOW - pd.Timedelta(minutes=20)
    clean = frame(traffic(start, 20, 30, 0, "dpl_a"))
    rule = triage.alert_rule(triage.error_rate(clean, start, NOW))
    assert not rule.fired and rule.windows_judged > 10 and rule.errors == 0
    # 10 % errors for 8 minutes → fires
    bad = frame(
        traffic(start, 12, 30, 0, "dpl_a") + traffic(start + pd.Timedelta(minutes=12), 8, 30, 10, "dpl_b")
    )
    per = triage.error_rate(bad, start, NOW)
    assert per["errors"].sum() == 24 and per["requests"].sum() == 600
    rule = triage.alert_rule(per)
    assert rule.fired and rule.worst["rate"] == pytest.approx(0.1)
    assert rule.first_breach >= start + pd.Timedelta(minutes=8)
    # a 2-minute spike at 10 % over 5 minutes stays ≤ 5 % → does not fire
    spike = frame(
        traffic(start, 18, 30, 0, "dpl_a") + traffic(start + pd.Timedelta(minutes=18), 2, 30, 10, "dpl_a2")
    )
    assert not triage.alert_rule(triage.error_rate(spike, start, NOW)).fired
    # too few requests are not judged
    few = frame(traffic(start, 20, 1, 2, "dpl_a"))
    rule = triage.alert_rule(triage.error_rate(few, start, NOW))
    assert not rule.fired and rule.windows_judged == 0 and rule.errors == 10


def test_duplicate_lines_of_one_request_count_once_and_crash_counts_as_error():
    t = NOW - pd.Timedelta(minutes=1)
    df = frame(
        [
            {"timestamp": t, "statusCode": 200, "requestId": "r1"},
            {"timestamp": t, "statusCode": 500, "requestId": "r1", "message": "x"},
            {"timestamp": t, "statusCode": -1, "requestId": "r2"},
            {"timestamp": t, "statusCode": None, "requestId": "r3"},
        ]
    )
    per = triage.error_rate(df, t, NOW)
    assert per["requests"].sum() == 2 and per["errors"].sum() == 2


def test_triage_names_the_deployment_and_top_signature():
    start = NOW - pd.Timedelta(minutes=40)
    rows = traffic(start, 20, 30, 0, "dpl_good") + traffic(
        start + pd.Timedelta(minutes=20),
        20,
        30,
        8,
        "dpl_bad",
        msg="TypeError: undefined price for cart_ab12cd34ef",
    )
    rows += [
        {
            "timestamp": NOW - pd.Timedelta(minutes=3),
            "statusCode": -1,
            "message": "Runtime exited 1",
            "path": "/api/x",
            "deploymentId": "dpl_bad",
            "requestId": "crash",
        }
    ]
    ms = int((start + pd.Timedelta(minutes=20)).timestamp() * 1000)
    deps = deployments_frame(
        [
            {
                "uid": "dpl_bad",
                "url": "b",
                "readyState": "READY",
                "target": "production",
                "createdAt": ms - 30_000,
                "meta": {"githubCommitMessage": "refactor totals"},
            },
            {
                "uid": "dpl_good",
                "url": "g",
                "readyState": "READY",
                "target": "production",
                "createdAt": ms - 3_600_000,
            },
        ]
    )
    changes = triage.Changes(
        deps, {"uid": "dpl_bad", "url": "b", "since": deps.iloc[0]["created"], "how": "test"}
    )
    read = type("R", (), {"frame": frame(rows)})()
    result = triage.triage_errors(read, changes, window_minutes=30, now=NOW)
    assert result.rule.fired and result.started_by["uid"] == "dpl_bad"
    assert result.top.iloc[0]["signature"] == "TypeError: undefined price for cart_<id> <n>"
    p1 = [f for f in findings.all_findings() if f.severity == "P1"]
    assert len(p1) == 1 and "dpl_bad" in p1[0].detail and "refactor totals" in p1[0].detail
    assert "TypeError: undefined price" in p1[0].detail
    crashed = triage.check_crashes(result)
    assert crashed.iloc[0]["count"] == 1
    # after a rollback to dpl_good "now", the burst is history and the verdict passes
    findings.clear()
    later = triage.Changes(
        deps,
        {"uid": "dpl_good", "url": "g", "since": NOW - pd.Timedelta(seconds=30), "how": "instant rollback"},
    )
    result = triage.triage_errors(read, later, window_minutes=30, now=NOW)
    assert not result.rule.fired and findings.verdict() == "PASS"
    assert any(f.title == "Earlier errors outside the judged window" for f in findings.all_findings())
    assert triage.rollback(result, later, "http://127.0.0.1:9", "X", "shop") is None


def test_unhandled_exceptions_group_by_exception_and_frame():
    t = NOW - pd.Timedelta(minutes=2)
    msg = (
        "Checkout failed for cart_{}: TypeError: Cannot read properties of undefined (reading 'price')\n"
        "    at computeTotal (/var/task/.next/server/app/api/checkout/route.js:1:2345)\n    at POST (x.js:1:1)"
    )
    df = frame(
        [
            {
                "timestamp": t,
                "statusCode": 500,
                "message": msg.format(c),
                "path": "/api/checkout",
                "deploymentId": "dpl_b",
            }
            for c in ("aaaaaaaa11", "bbbbbbbb22")
        ]
        + [{"timestamp": t, "statusCode": 500, "message": "no stack", "path": "/x", "deploymentId": "dpl_b"}]
    )
    table = triage.unhandled_exceptions(df)
    assert len(table) == 1
    row = table.iloc[0]
    assert row["exception"] == "TypeError: Cannot read properties of undefined (reading 'price')"
    assert row["top_frame"] == "computeTotal (app/api/checkout/route.js)" and row["count"] == 2


def test_env_vars_local_names_only(monkeypatch):
    monkeypatch.setenv("OPSNB_TEST_PRESENT", "super-secret-value")
    monkeypatch.delenv("OPSNB_TEST_MISSING", raising=False)
    table = triage.check_env_vars(["OPSNB_TEST_PRESENT", "OPSNB_TEST_MISSING"])
    assert table["present"].tolist() == [True, False]
    p1 = [f for f in findings.all_findings() if f.severity == "P1"]
    assert len(p1) == 1 and "OPSNB_TEST_MISSING" in p1[0].title
    assert "super-secret-value" not in repr(table) + repr(findings.all_findings())
    assert os.environ["OPSNB_TEST_PRESENT"]


def test_database_unreachable_is_p0(monkeypatch):
    monkeypatch.setenv("OPSNB_TEST_DSN", "postgresql://u:pw@127.0.0.1:9/db")
    table = triage.check_database("OPSNB_TEST_DSN")
    assert not table.iloc[0]["reachable"]
    assert [f.severity for f in findings.all_findings()] == ["P0"]


def test_database_connections_against_real_postgres(pg_cluster, monkeypatch):
    monkeypatch.setenv("OPSNB_TEST_DSN", pg_cluster.dsn)
    table = triage.check_database("OPSNB_TEST_DSN")
    row = table.iloc[0]
    assert row["reachable"] and row["connections"] >= 1 and row["max_connections"] > 0
    assert findings.verdict() == "PASS"
    findings.clear()
    triage.check_database("OPSNB_TEST_DSN", warn_pct=0.0001)
    assert [f.severity for f in findings.all_findings()] == ["P2"]


def test_verdict_and_notify_text(capsys):
    findings.add("P1", "High error rate", check="error-rate")
    text = triage.verdict_and_notify()
    assert "FAIL" in text and "< 15 minutes" in text and "< 4 hours" in text and "#incidents" in text
    assert "status page" in text and "P1 partial outage" in text
    assert "#incidents" in capsys.readouterr().out
    findings.clear()
    assert "nobody" in triage.verdict_and_notify()
