"""Runbook P0 checklist 7–8 and the workflow's ESCALATE step: who to tell, by the highest severity found.

Not a check (it looks at nothing new): it prints the runbook's response and resolution times and who to notify
for the conclusions recorded so far. The verdict itself is findings.record()'s.
"""

from __future__ import annotations

from opsnb.checks import findings
from opsnb.checks.severity import describe, highest

NOTIFY = {
    "P0": "Page the on-call engineer now; post in the #incidents Slack channel; update the status page "
    "(major outage); post-mortem afterwards.",
    "P1": "Post in the #incidents Slack channel; update the status page (partial outage); post-mortem afterwards.",
    "P2": "Notify #engineering during business hours.",
    "P3": "Track it as a ticket.",
}


def who_to_notify() -> str:
    """Print (and return) the highest severity so far with its response/resolution times and who to tell."""
    worst = highest([c.severity for c in findings.all_conclusions() if c.status in ("warn", "fail")])
    lines = [f"Highest severity: {describe(worst)}"]
    lines.append(f"Notify: {NOTIFY[worst]}" if worst in NOTIFY else "Notify: nobody — no incident.")
    blind = findings.blind_spots()
    if blind:
        lines.append(
            f"Could not check: {', '.join(c.check for c in blind)} — the picture is incomplete; say so when you notify."
        )
    text = "\n".join(lines)
    print(text)
    return text
