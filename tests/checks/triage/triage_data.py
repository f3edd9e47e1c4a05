"""Test data of the triage tests: log frames built row by row, deployments and what changed."""

from __future__ import annotations

import pandas as pd

from opsnb.checks.clients.vercel import LiveDeployment, deployments_frame
from opsnb.checks.logs.frame import LogRead, log_frame
from opsnb.checks.triage.deploys import Changes

NOW = pd.Timestamp("2025-01-01 12:00", tz="UTC")
TOKEN = "triage-test-token-0123456789"
TOKEN_ENV = "OPSNB_TEST_TRIAGE_TOKEN"
PRICE = "TypeError: Cannot read properties of undefined (reading 'price')"


def logs(rows: list[dict]) -> LogRead:
    """A LogRead over ``rows`` (dicts with some of the log frame's columns)."""
    return LogRead(log_frame(rows), lines=len(rows))


def traffic(
    start: pd.Timestamp, minutes: int, per_min: int, err_every: int, dep: str, msg: str = "boom"
) -> list[dict]:
    """``per_min`` requests a minute on /api/x for ``minutes`` from ``start``; every ``err_every``-th a 500."""
    rows, k = [], 0
    for m in range(minutes):
        for j in range(per_min):
            k += 1
            bad = err_every and k % err_every == 0
            rows.append(
                {
                    "timestamp": start + pd.Timedelta(minutes=m, seconds=j * 60 / per_min),
                    "statusCode": 500 if bad else 200,
                    "message": f"{msg} {k}" if bad else "",
                    "path": "/api/x",
                    "deploymentId": dep,
                    "requestId": f"{dep}-{k}",
                }
            )
    return rows


def deployments(*items: tuple[str, pd.Timestamp, str]) -> pd.DataFrame:
    """A deployments frame of READY production deployments (uid, created, commit message), newest first."""
    return deployments_frame(
        [
            {
                "uid": uid,
                "url": f"{uid}.vercel.app",
                "readyState": "READY",
                "target": "production",
                "createdAt": int(created.timestamp() * 1000),
                "meta": {"githubCommitMessage": message},
            }
            for uid, created, message in items
        ]
    )


def changes(deps: pd.DataFrame, live: str, since: pd.Timestamp, how: str = "test") -> Changes:
    """What changed: ``deps`` with ``live`` serving since ``since``."""
    return Changes("shop", deps, LiveDeployment(live, f"{live}.vercel.app", since, how))
