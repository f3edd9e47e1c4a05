"""Findings a runbook records, and the verdict that follows from them.

A finding is what a check concluded: a severity (P0-P3 or info), a title, a
detail and evidence. ``record()`` at the end of a notebook hands findings,
verdict and actions to the runner through scrapbook (wrapped in ``opsnb.scraps``).
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from opsnb.severity import LEVELS, highest, verdict_for


@dataclass
class Finding:
    """One conclusion of a check."""

    severity: str
    title: str
    detail: str = ""
    evidence: Any = None
    check: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe form (numpy numbers, datetimes and frames become plain values)."""
        return jsonable(asdict(self))


@dataclass
class _Run:
    findings: list[Finding] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)


_run = _Run()


def add(severity: str, title: str, detail: str = "", evidence: Any = None, check: str = "") -> Finding:
    """Record a finding; one with the same check and title replaces it (re-running a cell)."""
    if severity not in LEVELS:
        raise ValueError(f"severity must be one of {', '.join(LEVELS)}, got {severity!r}")
    found = Finding(severity, title, detail, evidence, check)
    _run.findings[:] = [f for f in _run.findings if (f.check, f.title) != (check, title)]
    _run.findings.append(found)
    return found


def ok(title: str, detail: str = "", check: str = "") -> Finding:
    """Record that a check passed (an info finding), so the evidence says what was looked at."""
    return add("info", title, detail, check=check)


def clear_check(check: str) -> None:
    """Forget the findings of one check (a re-run cell whose finding's title changed)."""
    _run.findings[:] = [f for f in _run.findings if f.check != check]


def all_findings() -> list[Finding]:
    """Findings recorded so far, most severe first."""
    order = list(LEVELS)
    return sorted(_run.findings, key=lambda f: order.index(f.severity))


def clear() -> None:
    """Forget every finding and action (a fresh run in the same kernel)."""
    _run.findings.clear()
    _run.actions.clear()


def note_action(entry: dict[str, Any]) -> None:
    """Remember what a gated action planned or did (see opsnb.actions)."""
    _run.actions[:] = [a for a in _run.actions if a.get("title") != entry.get("title")]
    _run.actions.append(jsonable(entry))


def verdict() -> str:
    """PASS, WARN or FAIL from the recorded findings."""
    return verdict_for([f.severity for f in _run.findings])


def table():
    """The findings as a DataFrame (severity, title, detail)."""
    import pandas as pd

    rows = [{"severity": f.severity, "title": f.title, "detail": f.detail} for f in all_findings()]
    return pd.DataFrame(rows, columns=["severity", "title", "detail"])


def record():
    """Hand findings, actions and verdict to the runner; return the findings table for display."""
    from opsnb import scraps
    from opsnb.secrets import resolved_names

    severities = [f.severity for f in _run.findings]
    scraps.glue("opsnb_findings", [f.as_dict() for f in all_findings()])
    scraps.glue("opsnb_actions", list(_run.actions))
    scraps.glue("opsnb_secret_names", resolved_names())
    scraps.glue("opsnb_verdict", {"verdict": verdict(), "highest": highest(severities)})
    print(
        f"Verdict: {verdict()}"
        + (f" (highest severity {highest(severities)})" if highest(severities) else "")
    )
    return table()


def jsonable(value: Any) -> Any:
    """``value`` turned into plain JSON types (str for anything unknown)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        return value if value == value else None  # NaN → null
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [jsonable(v) for v in value]
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    if hasattr(value, "to_dict") and hasattr(value, "columns"):  # a DataFrame
        return jsonable(value.to_dict(orient="records"))
    if hasattr(value, "item"):  # numpy scalar
        return jsonable(value.item())
    try:
        json.dumps(value)
        return value
    except TypeError:
        return str(value)
