"""The runbook's severity levels (operations-runbook.md, "Severity Levels")."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Level:
    """A severity level with the runbook's response and resolution times."""

    name: str
    label: str
    response: str
    resolution: str


LEVELS: dict[str, Level] = {
    "P0": Level("P0", "Critical (site down)", "Immediate (24/7)", "< 1 hour"),
    "P1": Level("P1", "High (major impact)", "< 15 minutes", "< 4 hours"),
    "P2": Level("P2", "Medium (minor impact)", "< 1 hour", "< 24 hours"),
    "P3": Level("P3", "Low (minor issues)", "< 8 hours", "< 1 week"),
    "info": Level("info", "Information", "-", "-"),
}
ORDER = ["P0", "P1", "P2", "P3", "info"]


def highest(severities: list[str]) -> str | None:
    """The most severe of ``severities`` (P0 first), None when empty."""
    ranked = [s for s in ORDER if s in severities]
    return ranked[0] if ranked else None


def verdict_for(severities: list[str]) -> str:
    """FAIL on any P0/P1, WARN on any P2/P3, else PASS."""
    if any(s in ("P0", "P1") for s in severities):
        return "FAIL"
    if any(s in ("P2", "P3") for s in severities):
        return "WARN"
    return "PASS"


def describe(severity: str | None) -> str:
    """'P1 High (major impact): respond < 15 minutes, resolve < 4 hours' for a level name."""
    if not severity or severity not in LEVELS or severity == "info":
        return "no severity"
    lv = LEVELS[severity]
    return f"{lv.name} {lv.label}: respond {lv.response}, resolve {lv.resolution}"
