"""Findings are recorded, de-duplicated on re-run, and made JSON-safe."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from opsnb import findings


@pytest.fixture(autouse=True)
def fresh():
    findings.clear()
    yield
    findings.clear()


def test_add_replaces_same_check_and_title() -> None:
    findings.add("P2", "slow", "first", check="q")
    findings.add("P1", "slow", "second", check="q")
    findings.add("info", "fine")
    assert [(f.severity, f.detail) for f in findings.all_findings()] == [("P1", "second"), ("info", "")]
    assert findings.verdict() == "FAIL"


def test_unknown_severity_rejected() -> None:
    with pytest.raises(ValueError):
        findings.add("P9", "x")


def test_jsonable_evidence() -> None:
    import numpy as np
    import pandas as pd

    f = findings.add(
        "P3",
        "t",
        evidence={
            "n": np.int64(3),
            "when": dt.datetime(2026, 1, 1),
            "nan": float("nan"),
            "df": pd.DataFrame({"a": [1]}),
        },
    )
    data = f.as_dict()
    json.dumps(data)
    assert data["evidence"] == {"n": 3, "when": "2026-01-01T00:00:00", "nan": None, "df": [{"a": 1}]}
