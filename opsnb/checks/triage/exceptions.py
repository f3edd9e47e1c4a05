"""Runbook "Cause 2: Unhandled exception in API route": error lines that carry a stack trace.

The exception line and the top stack frame (the route file) say where to add the runbook's try/catch.

Check ``triage.unhandled-exceptions``: stack traces in the judged window, grouped by exception and top frame.
P2 while the alert rule did not fire; a pass naming the exception when the P1 alert already stands for it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from opsnb.checks import findings
from opsnb.checks.triage.signatures import signature

if TYPE_CHECKING:
    import pandas as pd

    from opsnb.checks.triage.error_rate import Judged

STACK_FRAME = re.compile(r"^\s+at (?:async )?(?P<fn>[^\s(]+)?\s*\(?(?P<file>[^():]+)", re.M)
EXCEPTION = re.compile(
    r"\b(?P<type>[A-Z][A-Za-z]*(?:Error|Exception)|Runtime\.[A-Za-z]+)\b:?\s*(?P<text>[^\n]*)"
)
# Build and bundle folders before the app's own source path, dropped so frames read like the repository.
BUILD_PREFIX = re.compile(r"^.*?/(?:\.next/server/)?(app|pages|src|lib)/")
SHOWN = 3  # exception groups named in the conclusion's detail (the evidence lists all)
EXCEPTION_COLUMNS = ["exception", "top_frame", "paths", "count", "first_seen", "last_seen", "deployments"]


def exception_of(message: str | None) -> tuple[str, str] | None:
    """(exception signature, top stack frame) when the message carries a stack trace, else None."""
    if not message or "\n" not in message:
        return None
    frame = STACK_FRAME.search(message)
    if frame is None and "Traceback (most recent call last)" not in message:
        return None
    found = EXCEPTION.search(message)
    exc = f"{found.group('type')}: {found.group('text')}".strip().rstrip(":") if found else signature(message)
    top = ""
    if frame is not None:
        file = BUILD_PREFIX.sub(r"\1/", frame.group("file").strip())
        top = f"{frame.group('fn') or '<anonymous>'} ({file})"
    return signature(exc), top


def unhandled_exceptions(frame: pd.DataFrame) -> pd.DataFrame:
    """Log lines that carry a stack trace, grouped by exception and top frame, most frequent first."""
    import pandas as pd

    traced = frame[frame["message"].fillna("").str.contains("\n", regex=False)]
    rows = []
    for ts, msg, path, dep in zip(
        traced["timestamp"], traced["message"], traced["path"], traced["deploymentId"], strict=True
    ):
        found = exception_of(msg)
        if found:
            rows.append(
                {"exception": found[0], "top_frame": found[1], "path": path, "deploymentId": dep, "ts": ts}
            )
    if not rows:
        return pd.DataFrame(columns=EXCEPTION_COLUMNS)
    out = (
        pd.DataFrame(rows)
        .groupby(["exception", "top_frame"])
        .agg(
            paths=("path", lambda s: ", ".join(sorted(s.dropna().unique()))),
            count=("ts", "size"),
            first_seen=("ts", "min"),
            last_seen=("ts", "max"),
            deployments=("deploymentId", lambda s: ", ".join(sorted(s.dropna().unique()))),
        )
        .reset_index()
        .sort_values("count", ascending=False)
    )
    return out[EXCEPTION_COLUMNS].reset_index(drop=True)


@findings.check(
    "triage.unhandled-exceptions",
    essential=False,  # the blind spot (no logs) is already triage.logs' and triage.error-rate's
    hint="make log_source readable (see triage.logs)",
)
def check_unhandled_exceptions(judged: Judged) -> pd.DataFrame:
    """Cause 2: stack traces in the judged window, grouped by exception and top frame."""
    judged.require_requests()
    table = unhandled_exceptions(judged.rows())
    if not len(table):
        return findings.conclude(
            "pass", "No stack trace in the judged window", detail=judged.window.text(), evidence=table
        )
    first = table.iloc[0]
    title = f"Unhandled exception in an API route: {first['exception']}"
    where = "; ".join(
        f"{row.exception} at {row.top_frame} on {row.paths}: {row.count}× (deployment {row.deployments})"
        for row in table.head(SHOWN).itertuples()
    )
    more = f" and {len(table) - SHOWN} more" if len(table) > SHOWN else ""
    detail = f"{where}{more}; {judged.window.text()}; fix: try/catch in each route, then redeploy"
    if judged.rule.fired:  # the P1 alert already stands for these errors: this says where they come from
        return findings.conclude("pass", title, detail=detail, evidence=table)
    return findings.conclude("warn", title, severity="P2", detail=detail, evidence=table)
