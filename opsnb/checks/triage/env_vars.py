"""Runbook "Cause 3: Missing environment variables" (`vercel env ls`), by NAME only — values are never read.

Check ``triage.env-vars``: the required names against the Vercel project's variables for the production
target (``GET /v9/projects/{project}/env``), or against the local environment when no project is given.
Any missing → P1 (the app fails where it reads them). Vercel unreadable → inconclusive.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from opsnb.checks import findings

if TYPE_CHECKING:
    import pandas as pd

ENV_HINT = "check vercel_api_base, vercel_project and the token in vercel_token_env (it needs read access)"


def vercel_names(api_base: str, token_env: str, project: str, target: str = "production") -> set[str]:
    """Names of the project's variables that apply to ``target`` (a variable without targets applies to all)."""
    from opsnb.checks.clients.vercel import Vercel
    from opsnb.checks.secrets import secret

    with Vercel(secret(token_env), api_base) as api:
        envs = api.env_names(project)
    applies = envs["target"].str.split(",").apply(lambda targets: target in targets or not any(targets))
    return set(envs.loc[applies, "key"])


@findings.check("triage.env-vars", hint=ENV_HINT)
def check_env_vars(
    required: Sequence[str],
    api_base: str = "",
    token_env: str = "",
    project: str = "",
    target: str = "production",
) -> pd.DataFrame:
    """Cause 3: every name in ``required`` is set for ``target``; returns name, present, where."""
    import os

    import pandas as pd

    if not required:
        raise findings.CouldNotLook("no variable name to check (required_env_vars is empty)")
    if project and api_base:
        names = vercel_names(api_base, token_env, project, target)
        where = f"Vercel project {project} ({target})"
    else:
        names, where = set(os.environ), "local environment"
    table = pd.DataFrame(
        [{"name": n, "present": n in names, "where": where} for n in required],
        columns=["name", "present", "where"],
    )
    missing = [n for n in required if n not in names]
    if missing:
        return findings.conclude(
            "fail",
            f"Missing environment variables: {', '.join(missing)}",
            severity="P1",
            detail=f"not set in {where}; add each with `vercel env add NAME {target}` and redeploy",
            evidence=table,
        )
    return findings.conclude(
        "pass",
        "Every required environment variable is set",
        detail=f"{len(required)} names checked in {where}",
        evidence=table,
    )
