"""What changed: recent production deployments, the one serving now — and rolling back to the one before.

Runbook "Investigation 1: Check recent deployments" (`vercel ls`) and P0 checklist 6 (`vercel alias set
<previous-deployment>`), through Vercel's REST API (opsnb.checks.clients.vercel).

Check ``triage.deployments``: which deployment serves production and since when (the error-rate window starts
there). Vercel unreadable, or no telling which deployment serves → inconclusive (essential: without it no
error can be tied to a deployment).

The rollback is a gated action (opsnb.checks.actions), offered only when the alert rule fired for the
deployment that serves now.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opsnb.checks import findings

if TYPE_CHECKING:
    import pandas as pd

    from opsnb.checks.clients.vercel import LiveDeployment
    from opsnb.checks.triage.error_rate import Judged

VERCEL_HINT = "check vercel_api_base, vercel_project and the token in vercel_token_env (it needs read access)"


@dataclass
class Changes:
    """Recent deployments and which one serves production (``error`` says why Vercel could not be read)."""

    project: str
    deployments: pd.DataFrame  # opsnb.checks.clients.vercel.deployments_frame, newest first
    live: LiveDeployment | None
    error: str = ""


def what_changed(api_base: str, token_env: str, project: str, limit: int = 10) -> Changes:
    """Recent production deployments (``GET /v6/deployments``) and the live one (``GET /v9/projects``).

    A failure to reach Vercel is kept in ``Changes.error`` (triage continues without deployments; the
    deployments check says why); a bug in opsnb still raises.
    """
    from opsnb.checks.clients.vercel import Vercel, VercelError, deployments_frame, live_deployment
    from opsnb.checks.secrets import scrub, secret

    try:
        with Vercel(secret(token_env), api_base) as api:
            deployments = api.deployments(project, limit=limit)
            try:
                settings = api.project(project)
            except VercelError:  # without the project's target, the newest READY deployment is assumed live
                settings = {}
    except Exception as exc:
        if not findings.could_not_look(exc):
            raise
        return Changes(project, deployments_frame([]), None, scrub(str(exc)) or type(exc).__name__)
    return Changes(project, deployments, live_deployment(settings, deployments))


@findings.check("triage.deployments", hint=VERCEL_HINT)
def check_deployments(changes: Changes) -> pd.DataFrame:
    """Which deployment serves production, since when, and what was deployed recently."""
    import pandas as pd

    if changes.error:
        raise findings.CouldNotLook(
            f"could not read the deployments from Vercel: {changes.error}", VERCEL_HINT
        )
    table = changes.deployments
    if not len(table):
        raise findings.CouldNotLook(
            f"Vercel lists no production deployment of project {changes.project}", VERCEL_HINT
        )
    live = changes.live
    if live is None:
        raise findings.CouldNotLook(
            f"could not tell which deployment serves {changes.project}: the project names no production target "
            f"and none of its {len(table)} latest deployments is READY",
            VERCEL_HINT,
        )
    table = table.assign(live=table["uid"] == live.uid)
    newest = table.iloc[0]
    detail = f"{len(table)} deployments; newest {newest['uid']} ({newest['message'] or 'no commit message'})"
    if pd.notna(newest["created"]):
        detail += f" at {newest['created']:%Y-%m-%d %H:%M} UTC"
    since = f" since {live.since:%Y-%m-%d %H:%M} UTC" if live.since is not None else ""
    return findings.conclude(
        "pass",
        f"Production serves {live.uid}{since}",
        detail=f"{detail}; live: {live.uid}{since} ({live.how})",
        evidence=table,
    )


def offer_rollback(
    judged: Judged, changes: Changes, api_base: str, token_env: str, project: str
) -> dict[str, Any] | None:
    """Mitigation: roll production back to the READY deployment before the one that started the errors
    (the runbook's `vercel alias set <previous-deployment>`), as a gated action. None when not proposed."""
    from opsnb.checks.actions import action
    from opsnb.checks.clients.vercel import Vercel, previous_ready

    live = changes.live.uid if changes.live else None
    culprit = judged.started_by.uid if judged.started_by else None
    if not judged.rule.fired or not culprit:
        print("No rollback proposed: the alert rule did not fire for the live deployment.")
        return None
    if culprit != live:
        print(
            f"No rollback proposed: the errors started on {culprit}, which no longer serves (live: {live})."
        )
        return None
    target = previous_ready(changes.deployments, culprit)
    if target is None:
        print(f"No rollback possible: no READY production deployment older than {culprit}; fix forward.")
        return None
    created = f", created {target.created:%Y-%m-%d %H:%M} UTC" if target.created is not None else ""
    plan = [
        f"roll back project {project}: POST {api_base.rstrip('/')}/v1/projects/{project}/rollback/{target.uid}",
        f"  = `vercel alias set {target.url} <production domain>` (runbook P0 checklist 6)",
        f"from {culprit} (the deployment live when errors started) to {target.uid} ({target.message}{created})",
        "then re-run this runbook: health 200 and the error rate back under the alert rule",
    ]

    def apply() -> str:
        from opsnb.checks.secrets import secret

        with Vercel(secret(token_env), api_base) as api:
            return api.rollback(project, target.uid)

    return action(f"Roll back production to {target.uid}", plan, apply)
