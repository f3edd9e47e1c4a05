"""opsnb.checks.triage.exceptions: stack traces grouped by exception and top frame (runbook Cause 2)."""

from __future__ import annotations

import pandas as pd
from checks.triage.triage_data import NOW, PRICE, changes, deployments, logs, traffic

from opsnb.checks import findings
from opsnb.checks.triage import error_rate, exceptions

CHECKOUT = (
    "Checkout failed for cart_{}: " + PRICE + "\n"
    "    at computeTotal (/var/task/.next/server/app/api/checkout/route.js:1:2345)\n    at POST (x.js:1:1)"
)
PRODUCTS = "Error listing products: " + PRICE + "\n    at async formatPrice (/var/task/src/lib/price.ts:3:9)"


def error(minutes_ago: float, message: str, path: str) -> dict:
    return {
        "timestamp": NOW - pd.Timedelta(minutes=minutes_ago),
        "statusCode": 500,
        "message": message,
        "path": path,
        "deploymentId": "dpl_b",
        "requestId": f"{path}-{minutes_ago}",
    }


def test_exception_and_top_frame():
    assert exceptions.exception_of(CHECKOUT.format("aaaaaaaa11")) == (
        PRICE,
        "computeTotal (app/api/checkout/route.js)",
    )
    assert exceptions.exception_of(PRODUCTS) == (PRICE, "formatPrice (src/lib/price.ts)")
    assert exceptions.exception_of("no stack") is None and exceptions.exception_of(None) is None
    python = 'Traceback (most recent call last):\n  File "x.py", line 1\nKeyError: 42'
    assert exceptions.exception_of(python) == ("KeyError: <n>", "")


def test_grouped_by_exception_and_frame():
    frame = logs(
        [error(2, CHECKOUT.format(c), "/api/checkout") for c in ("aaaaaaaa11", "bbbbbbbb22")]
        + [error(1, PRODUCTS, "/api/products"), error(1, "no stack", "/x")]
    ).frame
    table = exceptions.unhandled_exceptions(frame)
    assert table[["exception", "top_frame", "paths", "count"]].values.tolist() == [
        [PRICE, "computeTotal (app/api/checkout/route.js)", "/api/checkout", 2],
        [PRICE, "formatPrice (src/lib/price.ts)", "/api/products", 1],
    ]


def test_check_names_every_route_and_is_p2_under_the_alert_rule():
    rows = traffic(NOW - pd.Timedelta(minutes=20), 20, 30, 0, "dpl_b") + [
        error(2, CHECKOUT.format("aaaaaaaa11"), "/api/checkout"),
        error(1, PRODUCTS, "/api/products"),
    ]
    live = NOW - pd.Timedelta(hours=1)
    judged = error_rate.judge(logs(rows), changes(deployments(("dpl_b", live, "x")), "dpl_b", live), now=NOW)
    table = exceptions.check_unhandled_exceptions(judged)
    [c] = findings.all_conclusions()
    assert (c.check, c.status, c.severity) == ("triage.unhandled-exceptions", "warn", "P2")
    assert c.title == f"Unhandled exception in an API route: {PRICE}" and len(table) == 2
    assert "computeTotal (app/api/checkout/route.js) on /api/checkout: 1×" in c.detail
    assert "formatPrice (src/lib/price.ts) on /api/products: 1×" in c.detail and "try/catch" in c.detail
