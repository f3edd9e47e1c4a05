"""Crashed functions: log-drain lines with statusCode -1 (the serverless function died; the proxy answered 502).

Check ``triage.crashed-functions``: crashes in the judged window, grouped by path and deployment. P2 while the
alert rule did not fire; a pass naming them when the P1 alert already stands for these errors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opsnb.checks import findings
from opsnb.checks.triage.signatures import signatures

if TYPE_CHECKING:
    import pandas as pd

    from opsnb.checks.triage.error_rate import Judged

CRASH_COLUMNS = ["path", "deploymentId", "count", "first_seen", "last_seen", "signature"]


def crashed_functions(frame: pd.DataFrame) -> pd.DataFrame:
    """Crashed invocations (statusCode -1) by path and deployment: count, first/last seen, signature."""
    import pandas as pd

    crashed = frame[(frame["statusCode"] == -1).fillna(False).astype(bool)]
    if not len(crashed):
        return pd.DataFrame(columns=CRASH_COLUMNS)
    crashed = crashed.assign(signature=signatures(crashed["message"]))
    out = (
        crashed.groupby(["path", "deploymentId"], dropna=False)
        .agg(
            count=("timestamp", "size"),
            first_seen=("timestamp", "min"),
            last_seen=("timestamp", "max"),
            signature=("signature", "first"),
        )
        .reset_index()
        .sort_values("count", ascending=False)
    )
    return out[CRASH_COLUMNS].reset_index(drop=True)


@findings.check(
    "triage.crashed-functions",
    essential=False,  # the blind spot (no logs) is already triage.logs' and triage.error-rate's
    hint="make log_source readable (see triage.logs)",
)
def check_crashes(judged: Judged) -> pd.DataFrame:
    """Crashed functions (statusCode -1) in the judged window."""
    judged.require_requests()
    table = crashed_functions(judged.rows())
    if not len(table):
        return findings.conclude(
            "pass", "No function crashed in the judged window", detail=judged.window.text(), evidence=table
        )
    total = int(table["count"].sum())
    detail = "; ".join(
        f"{r.path} on {r.deploymentId}: {r.count}× ({r.signature})" for r in table.head(3).itertuples()
    )
    title = f"{total} function crash(es) in the judged window"
    if judged.rule.fired:  # the P1 alert already counts them as errors
        return findings.conclude("pass", title, detail=detail, evidence=table)
    return findings.conclude("warn", title, severity="P2", detail=detail, evidence=table)
