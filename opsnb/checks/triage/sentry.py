"""Runbook P0 checklist 4, "Check Sentry for errors": the organization's unresolved issues.

Check ``triage.sentry`` (``GET /api/0/organizations/{org}/issues/?query=is:unresolved``): issues at level
error/fatal last seen inside the judged window are recent. P2 while the log-based alert rule did not fire
(Sentry sees errors the logs do not); a pass naming them when it did (Sentry confirms the P1). Older issues
are listed, not judged. Not essential: the logs are what the error rate is judged on, Sentry is optional
(``sentry_token_env`` or ``sentry_org`` empty) — unconfigured or unreachable, it is inconclusive.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opsnb.checks import findings

if TYPE_CHECKING:
    import pandas as pd

    from opsnb.checks.triage.error_rate import Judged

SENTRY_HINT = "set sentry_token_env (a token with event:read), sentry_org and sentry_api_base"
RECENT_LEVELS = ("error", "fatal")


@findings.check("triage.sentry", essential=False, hint=SENTRY_HINT)
def check_sentry(judged: Judged, api_base: str, token_env: str, org: str) -> pd.DataFrame:
    """Unresolved Sentry error issues last seen in the judged window; returns every unresolved issue."""
    from opsnb.checks.clients.sentry import Sentry, issues_frame
    from opsnb.checks.secrets import secret

    if not token_env or not org:
        raise findings.CouldNotLook("Sentry is not configured (sentry_token_env or sentry_org is empty)")
    with Sentry(secret(token_env), api_base) as api:
        table = issues_frame(api.issues(org))
    window = judged.window
    recent = table[table["level"].isin(RECENT_LEVELS) & (table["lastSeen"] >= window.start)]
    if not len(recent):
        return findings.conclude(
            "pass",
            "No unresolved Sentry error issue in the judged window",
            detail=f"{len(table)} unresolved issue(s) in {org}, none at error level {window.text()}",
            evidence=table,
        )
    top = recent.sort_values("count", ascending=False).iloc[0]
    detail = (
        f"{top['shortId']} {top['title']} at {top['culprit']}: {top['count']} events, {top['userCount']} users, "
        f"{top['firstSeen']:%H:%M}–{top['lastSeen']:%H:%M} UTC; {window.text()}; {top['permalink']}"
    )
    if judged.rule.fired:  # Sentry confirms what the P1 alert already says
        return findings.conclude(
            "pass",
            f"Sentry confirms the errors: {len(recent)} unresolved error issue(s)",
            detail=detail,
            evidence=recent,
        )
    return findings.conclude(
        "warn",
        f"{len(recent)} unresolved Sentry error issue(s) in the judged window",
        severity="P2",
        detail=detail,
        evidence=recent,
    )
