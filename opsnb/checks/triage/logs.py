"""The log window triage reads: the last ``lookback_minutes`` of the request/app logs.

Runbook "Investigation 2: Check error logs" (`vercel logs | grep ERROR`), as data: every log line of the
lookback in one frame (opsnb.checks.logs.read_logs), the lines that are not log-drain JSON counted and skipped.

Check ``triage.logs``: the logs could be read and hold lines. Unreadable or empty → inconclusive (essential:
the error rate is judged on them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opsnb.checks import findings
from opsnb.checks.logs.frame import LogRead

if TYPE_CHECKING:
    import pandas as pd

LOGS_HINT = (
    "point log_source at the Vercel log drain (an NDJSON file, a .gz or a folder of them) or at "
    "vercel://PROJECT/DEPLOYMENT, and check that the drain delivers"
)


def read_window(source: str, lookback_minutes: int = 60) -> LogRead:
    """``read_logs`` over the last ``lookback_minutes``: what the error rate is judged and plotted on.

    A source that cannot be read gives an empty read whose ``error`` says why (the checks then conclude
    inconclusive); a bug in opsnb still raises.
    """
    from opsnb.checks.logs import read_logs
    from opsnb.checks.logs.window import window_start
    from opsnb.checks.secrets import scrub

    try:
        return read_logs(source, since=window_start(lookback_minutes))
    except Exception as exc:
        if not findings.could_not_look(exc):
            raise
        return LogRead.unreadable(scrub(f"{type(exc).__name__}: {exc}"))


@findings.check("triage.logs", hint=LOGS_HINT)
def check_logs(read: LogRead, lookback_minutes: int = 60) -> pd.DataFrame:
    """The log window could be read and holds log lines; garbage lines are counted (kinds, samples)."""
    if read.error:
        raise findings.CouldNotLook(f"could not read the logs: {read.error}", LOGS_HINT)
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(read.garbage_kinds.items())) or "none"
    detail = (
        f"{len(read.files)} files, {read.lines} lines, {len(read.frame)} rows in the last {lookback_minutes} min; "
        f"{read.garbage} garbage lines ({kinds})"
    )
    if not len(read.frame):
        raise findings.CouldNotLook(f"no log line in the last {lookback_minutes} min: {detail}", LOGS_HINT)
    if read.garbage:
        detail += "; samples: " + " | ".join(read.garbage_samples)
    title = f"{len(read.frame)} log lines read from the last {lookback_minutes} min" + (
        f", {read.garbage} garbage lines skipped" if read.garbage else ""
    )
    return findings.conclude("pass", title, detail=detail, evidence=read.summary())
