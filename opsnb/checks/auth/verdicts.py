"""Rule verdicts: one rule of the runbook applied to one subject, and the one conclusion a check draws from
several of them (the worst problem sets the severity; every verdict goes into the evidence table)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opsnb.checks.auth.facts import listing
from opsnb.checks.severity import ORDER

if TYPE_CHECKING:
    import pandas as pd

MAX_SUBJECTS_IN_TITLE = 3  # the rest are counted; the evidence table lists them all


@dataclass(frozen=True)
class Verdict:
    """One rule applied to one subject: ``finding`` says what is true, whether the rule passed or not."""

    subject: str  # what was looked at: "NEXTAUTH_URL", "__Host-next-auth.csrf-token", "provider google"
    rule: str  # the rule, as the runbook puts it: "equals the public URL"
    passed: bool
    finding: str  # what is true: "equals the public URL" or "differs from the public URL"
    severity: str = "info"  # P0-P3 when the rule failed
    detail: str = ""  # why it matters and how to fix it; never a secret's value


def passed(subject: str, rule: str, finding: str = "", detail: str = "") -> Verdict:
    """A rule that holds; its finding is the rule itself unless told otherwise."""
    return Verdict(subject, rule, True, finding or rule, "info", detail)


def failed(subject: str, rule: str, finding: str, severity: str, detail: str) -> Verdict:
    """A rule that does not hold: what is true instead, how bad it is, why and how to fix it."""
    return Verdict(subject, rule, False, finding, severity, detail)


@dataclass(frozen=True)
class Judgement:
    """The one conclusion drawn from a check's verdicts (the arguments of ``findings.conclude``)."""

    status: str
    title: str
    severity: str
    detail: str

    def conclude(self, evidence: Any = None) -> Any:
        """Record this judgement as the running check's conclusion; returns ``evidence``."""
        from opsnb.checks.findings import conclude

        return conclude(
            self.status, self.title, severity=self.severity, detail=self.detail, evidence=evidence
        )


def problems(verdicts: list[Verdict]) -> list[Verdict]:
    """The failed verdicts, worst first (ties keep their order)."""
    return sorted((v for v in verdicts if not v.passed), key=lambda v: ORDER.index(v.severity))


def judge(verdicts: list[Verdict], pass_title: str, pass_detail: str = "") -> Judgement:
    """Pass with ``pass_title`` when every rule holds; else fail (P0/P1) or warn (P2/P3) titled by what is true
    of each subject that broke a rule, worst subject first."""
    bad = problems(verdicts)
    if not bad:
        detail = pass_detail or "; ".join(f"{v.subject} {v.finding}" for v in verdicts)
        return Judgement("pass", pass_title, "info", detail)
    worst = bad[0].severity
    by_subject: dict[str, list[str]] = {}
    for v in bad:
        by_subject.setdefault(v.subject, []).append(v.finding)
    statements = [f"{subject} {listing(found)}" for subject, found in by_subject.items()]
    title = "; ".join(statements[:MAX_SUBJECTS_IN_TITLE])
    if len(statements) > MAX_SUBJECTS_IN_TITLE:
        title += f"; and {len(statements) - MAX_SUBJECTS_IN_TITLE} more"
    detail = " ".join(dict.fromkeys(v.detail for v in bad if v.detail))
    return Judgement("fail" if worst in ("P0", "P1") else "warn", title, worst, detail)


def table(verdicts: list[Verdict]) -> pd.DataFrame:
    """The verdicts as evidence: subject, rule, verdict (PASS or the severity), what is true, detail."""
    import pandas as pd

    rows = [
        {
            "subject": v.subject,
            "rule": v.rule,
            "verdict": "PASS" if v.passed else v.severity,
            "finding": v.finding,
            "detail": v.detail,
        }
        for v in verdicts
    ]
    return pd.DataFrame(rows, columns=["subject", "rule", "verdict", "finding", "detail"])
