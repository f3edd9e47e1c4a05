"""The app's logs (runbook Investigation 2, `vercel logs | grep stripe`): requests to the webhook route, in
the app's own words ("Webhook signature verification failed …").

The logs show *that* the app rejects deliveries, not always why; the cause is told by
payments.webhook-signature, and which payments it cost by payments.webhook-deliveries.
"""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING

from opsnb.checks.findings import CouldNotLook, check, conclude
from opsnb.checks.logs import read_logs
from opsnb.checks.payments.route import WEBHOOK_PATH
from opsnb.checks.secrets import scrub

if TYPE_CHECKING:  # pandas stays a lazy import (kernel start time)
    import pandas as pd

STRIPE_ID = r"\b(evt_opsnb_probe|evt|pi|ch|cs_test|cs_live|cs|we|req)_[A-Za-z0-9_]+"
COLUMNS = ["statusCode", "message", "requests", "first", "last"]
# Stripe always signs: a request without a Stripe-Signature is a probe (this runbook's own included).
UNSIGNED_PROBE = "No Stripe-Signature header"
LOGS_HINT = "set log_source to a file or folder of the app's Vercel log-drain NDJSON"


def webhook_requests(frame: pd.DataFrame, path: str = WEBHOOK_PATH) -> pd.DataFrame:
    """Requests to the webhook route grouped by status and message: requests, first and last seen (latest
    first). Stripe ids are cut from the messages so that one failure groups into one row."""
    import pandas as pd

    hits = frame[frame["path"] == path].copy() if not frame.empty else frame
    if hits.empty:
        return pd.DataFrame(columns=COLUMNS)
    hits["message"] = hits["message"].fillna("").str.replace(STRIPE_ID, r"\1_…", regex=True).str.slice(0, 120)
    grouped = hits.groupby(["statusCode", "message"], dropna=False)["timestamp"]
    out = grouped.agg(requests="count", first="min", last="max").reset_index()
    return out.sort_values("last", ascending=False).reset_index(drop=True)[COLUMNS]


@check("payments.webhook-logs", essential=False, hint=LOGS_HINT)
def check_webhook_logs(log_source: str, window_hours: float = 24) -> pd.DataFrame:
    """The webhook route's requests in the app's logs over the window, by status and message; judged by the
    latest delivery attempt (a request that carried a signature): was it accepted?

    Only the latest counts: the window keeps the failures of an incident after it was fixed.
    """
    if not log_source:
        raise CouldNotLook("no log_source given", LOGS_HINT)
    try:
        read = read_logs(log_source, since=_dt.timedelta(hours=window_hours))
    except ValueError as exc:  # a source read_logs does not support
        raise CouldNotLook(scrub(str(exc)), LOGS_HINT) from None
    if read.error:
        raise CouldNotLook(scrub(read.error), LOGS_HINT)
    table = webhook_requests(read.frame)
    window = f"the last {window_hours:g} h"
    # A line without a status cannot say whether the app accepted the request.
    attempts = table[
        table["statusCode"].notna() & ~table["message"].str.contains(UNSIGNED_PROBE, regex=False)
    ]
    if attempts.empty:
        return conclude(
            "pass",
            f"No signed request reached the webhook route in the logs of {window}",
            detail=f"{int(table['requests'].sum())} requests to the route, none with both a signature and a status",
            evidence=table,
        )
    rejected = attempts[(attempts["statusCode"] >= 400) | (attempts["statusCode"] < 0)]  # -1: crashed
    detail = (
        f"{int(rejected['requests'].sum())} of {int(attempts['requests'].sum())} signed requests of {window} "
        "rejected; the cause is judged by payments.webhook-signature"
    )
    latest = attempts.iloc[0]  # the table is sorted by last seen, latest first
    if latest["statusCode"] >= 400 or latest["statusCode"] < 0:
        return conclude(
            "warn",
            f"The app rejected its latest webhook request (HTTP {int(latest['statusCode'])})",
            severity="P2",
            detail=f"{latest['message'] or 'no message'} (at {latest['last']}); {detail}",
            evidence=table,
        )
    return conclude(
        "pass",
        f"The app accepted its latest webhook request (HTTP {int(latest['statusCode'])})",
        detail=detail,
        evidence=table,
    )
