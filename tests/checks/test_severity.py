"""Verdict and severity follow the runbook's levels."""

from __future__ import annotations

import pytest

from opsnb.checks.severity import describe, highest, verdict_for


@pytest.mark.parametrize(
    "severities,verdict",
    [
        ([], "PASS"),
        (["info"], "PASS"),
        (["P3"], "WARN"),
        (["P2", "info"], "WARN"),
        (["P1", "P3"], "FAIL"),
        (["P0"], "FAIL"),
    ],
)
def test_verdict(severities, verdict) -> None:
    assert verdict_for(severities) == verdict


def test_highest_and_describe() -> None:
    assert highest(["P3", "info", "P1"]) == "P1"
    assert highest([]) is None
    assert describe("P0") == "P0 Critical (site down): respond Immediate (24/7), resolve < 1 hour"
    assert describe("P3").endswith("resolve < 1 week")
