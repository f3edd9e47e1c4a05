"""Findings are recorded, de-duplicated on re-run, and made JSON-safe."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from opsnb.checks import findings


@pytest.fixture(autouse=True)
def fresh():
    findings.clear()
    yield
    findings.clear()


def test_unknown_severity_rejected() -> None:
    with pytest.raises(ValueError):
        findings.conclude("fail", "x", severity="P9", check_id="demo.x")


def test_jsonable_evidence() -> None:
    import numpy as np
    import pandas as pd

    findings.conclude(
        "warn",
        "t",
        severity="P3",
        check_id="demo.evidence",
        evidence={
            "n": np.int64(3),
            "when": dt.datetime(2026, 1, 1),
            "nan": float("nan"),
            "df": pd.DataFrame({"a": [1]}),
        },
    )
    [f] = findings.all_conclusions()
    data = f.as_dict()
    json.dumps(data)
    assert data["evidence"] == {"n": 3, "when": "2026-01-01T00:00:00", "nan": None, "df": [{"a": 1}]}


# --- the check contract -------------------------------------------------------------------------------


def test_a_check_records_one_conclusion_and_returns_its_evidence() -> None:
    @findings.check("demo.sessions")
    def check_sessions(n: int):
        rows = [{"pid": i} for i in range(n)]
        if not rows:
            return findings.conclude("pass", "No session is idle in a transaction", evidence=rows)
        return findings.conclude(
            "warn", f"{n} session(s) idle in a transaction", severity="P2", evidence=rows
        )

    assert check_sessions(2) == [{"pid": 0}, {"pid": 1}]
    [c] = findings.all_conclusions()
    assert (c.check, c.status, c.severity, c.title) == (
        "demo.sessions",
        "warn",
        "P2",
        "2 session(s) idle in a transaction",
    )
    check_sessions(0)  # a re-run replaces the conclusion, it does not add one
    [c] = findings.all_conclusions()
    assert (c.status, c.severity) == ("pass", "info")
    assert findings.verdict() == "PASS"


@pytest.mark.parametrize(
    "exc",
    [
        OSError("connection refused"),
        TimeoutError("timed out"),
        findings.CouldNotLook("role lacks pg_read_all_stats", "GRANT pg_monitor TO reader"),
    ],
)
def test_a_check_that_could_not_look_is_inconclusive_and_never_passes(exc) -> None:
    @findings.check("demo.blind")
    def check_blind():
        raise exc

    assert check_blind() is None  # no crash
    [c] = findings.all_conclusions()
    assert c.status == "inconclusive" and c.title == "Could not check demo.blind"
    assert str(exc.args[0]) in c.detail
    if isinstance(exc, findings.CouldNotLook):
        assert "GRANT pg_monitor TO reader" in c.detail
    assert findings.verdict() == "WARN"  # an essential blind spot is at least WARN


def test_a_non_essential_blind_spot_does_not_warn() -> None:
    @findings.check("demo.optional", essential=False)
    def check_optional():
        raise ConnectionError("down")

    check_optional()
    assert findings.all_conclusions()[0].status == "inconclusive"
    assert findings.verdict() == "PASS"


def test_a_bug_in_a_check_still_raises_but_keeps_its_conclusion() -> None:
    @findings.check("demo.bug")
    def check_bug():
        return {}["missing"]

    with pytest.raises(KeyError):
        check_bug()
    [c] = findings.all_conclusions()
    assert c.status == "inconclusive" and "bug in opsnb" in c.detail


def test_a_check_without_a_conclusion_is_a_bug() -> None:
    @findings.check("demo.silent")
    def check_silent():
        return 1

    with pytest.raises(RuntimeError, match="without recording a conclusion"):
        check_silent()


@pytest.mark.parametrize("bad", ["Demo", "demo", "demo check", "demo.Check", "slow statements"])
def test_check_ids_have_one_style(bad) -> None:
    with pytest.raises(ValueError):
        findings.check(bad)


def test_warn_and_fail_need_a_severity() -> None:
    with pytest.raises(ValueError):
        findings.conclude("fail", "x", check_id="demo.x")
    with pytest.raises(ValueError):
        findings.conclude("maybe", "x", check_id="demo.x")


def test_verdict_from_conclusions() -> None:
    def c(status, sev="info", essential=True):
        return {"status": status, "severity": sev, "essential": essential}

    assert findings.verdict_of([c("pass"), c("fail", "P1")]) == "FAIL"
    assert findings.verdict_of([c("pass"), c("warn", "P3")]) == "WARN"
    assert findings.verdict_of([c("pass"), c("inconclusive")]) == "WARN"
    assert findings.verdict_of([c("pass"), c("inconclusive", essential=False)]) == "PASS"
    assert findings.verdict_of([]) == "PASS"


def test_one_conclusion_can_say_it_is_no_blind_spot() -> None:
    @findings.check("demo.sample")
    def check_sample(n: int):
        if n < 10:
            return findings.conclude("inconclusive", "Sample too small", essential=False)
        return findings.conclude("pass", "Enough data")

    check_sample(3)
    assert findings.all_conclusions()[0].essential is False and findings.verdict() == "PASS"
