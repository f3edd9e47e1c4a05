"""opsnb.checks.auth.verdicts: several rule verdicts make one conclusion (worst severity, titled by what is true)."""

from __future__ import annotations

from opsnb.checks.auth.verdicts import failed, judge, passed, problems, table


def test_all_rules_holding_is_a_pass_with_the_given_title() -> None:
    verdicts = [passed("X", "is set"), passed("X", "is short", "is 3 characters")]
    found = judge(verdicts, "X is fine")
    assert (found.status, found.title, found.severity) == ("pass", "X is fine", "info")
    assert found.detail == "X is set; X is 3 characters"
    assert judge(verdicts, "X is fine", "custom").detail == "custom"


def test_the_worst_problem_sets_status_and_severity() -> None:
    verdicts = [
        failed("X", "no slash", "ends with a slash", "P3", "drop it."),
        passed("X", "is set"),
        failed("X", "same origin", "differs from the public URL", "P1", "fix it."),
    ]
    found = judge(verdicts, "unused")
    assert (found.status, found.severity) == ("fail", "P1")
    assert found.title == "X differs from the public URL and ends with a slash"  # worst first
    assert found.detail == "fix it. drop it."
    assert [v.severity for v in problems(verdicts)] == ["P1", "P3"]
    assert judge(verdicts[:2], "unused").status == "warn"  # P2/P3 only


def test_titles_group_by_subject_and_count_what_does_not_fit() -> None:
    verdicts = [failed(f"cookie{i}", "r", f"breaks rule {i}", "P2", "same detail") for i in range(5)]
    verdicts.append(failed("cookie0", "r2", "is huge", "P2", "same detail"))
    found = judge(verdicts, "unused")
    assert (
        found.title
        == "cookie0 breaks rule 0 and is huge; cookie1 breaks rule 1; cookie2 breaks rule 2; and 2 more"
    )
    assert found.detail == "same detail"  # repeated details are given once


def test_table_lists_every_verdict() -> None:
    frame = table([passed("X", "is set"), failed("X", "short", "is short", "P2", "why")])
    assert list(frame.columns) == ["subject", "rule", "verdict", "finding", "detail"]
    assert list(frame["verdict"]) == ["PASS", "P2"]
