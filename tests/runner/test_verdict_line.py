"""The verdict line cron mails: one line that says what is wrong and what was changed."""

from __future__ import annotations

import os
from pathlib import Path

from opsnb.runner.run import top_conclusions, verdict_line


def _manifest(**extra) -> dict:
    base = {
        "outcome": "FAIL",
        "runbook": "500-triage",
        "env": "sandbox",
        "highest_severity": "P1",
        "duration_s": 7.04,
        "html_path": "/srv/opsnb/outputs/500-triage/x.html",
        "findings": [],
        "actions": [],
    }
    return {**base, **extra}


def test_the_line_names_the_top_conclusion_and_counts_the_rest() -> None:
    findings = [
        {"status": "pass", "severity": "info", "title": "The site answers"},
        {"status": "warn", "severity": "P2", "title": "Sentry shows 3 new issues"},
        {"status": "fail", "severity": "P1", "title": "Error rate 41 % since deployment dpl_9 (over 5 %)"},
        {"status": "inconclusive", "severity": "info", "title": "Could not check triage.env-vars"},
        {"status": "inconclusive", "severity": "info", "title": "pg_amcheck was not run", "essential": False},
    ]
    line = verdict_line(_manifest(findings=findings))
    assert "\n" not in line
    assert "Error rate 41 % since deployment dpl_9 (over 5 %) (and 2 more)" in line
    assert [c["title"][:5] for c in top_conclusions(findings)] == ["Error", "Sentr", "Could"]


def test_the_line_lists_applied_actions() -> None:
    actions = [
        {"title": "Terminate pid 4242", "status": "applied"},
        {"title": "Create index on Order(userId)", "status": "failed"},
        {"title": "Archive orders", "status": "planned"},
    ]
    line = verdict_line(_manifest(actions=actions))
    assert "2 action(s): Terminate pid 4242 (applied); Create index on Order(userId) (failed)" in line
    assert "Archive orders" not in line


def test_the_report_path_is_absolute_unless_below_the_current_folder(tmp_path, monkeypatch) -> None:
    report = tmp_path / "outputs" / "r" / "x.html"
    monkeypatch.chdir(tmp_path)
    assert verdict_line(_manifest(html_path=str(report))).endswith(
        "| " + os.path.join("outputs", "r", "x.html")
    )
    monkeypatch.chdir("/")
    assert verdict_line(_manifest(html_path=str(report))).endswith("| " + str(report))
    monkeypatch.chdir(Path(tmp_path).parent)
    other = Path("/elsewhere/outputs/x.html")
    assert verdict_line(_manifest(html_path=str(other))).endswith("| /elsewhere/outputs/x.html")
