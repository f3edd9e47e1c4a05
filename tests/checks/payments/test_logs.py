"""opsnb.checks.payments.logs: the webhook route's requests in Vercel log-drain NDJSON files, grouped, and the
latest delivery attempt judged."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import pytest
from checks.payments.conftest import conclusion

from opsnb.checks.payments import logs

CHECK = "payments.webhook-logs"
ROUTE = "/api/webhooks/stripe"
MISMATCH = "⚠️  Webhook signature verification failed. No signatures found matching the expected signature"
UNSIGNED = "⚠️  Webhook signature verification failed. No Stripe-Signature header value was provided."


def drain_line(age_s: float, path: str, status: int, message: str) -> str:
    """One Vercel log-drain line ``age_s`` seconds old."""
    ts_ms = int((time.time() - age_s) * 1000)
    proxy = {"method": "POST", "path": path, "statusCode": status}
    return json.dumps(
        {
            "id": str(ts_ms),
            "message": message,
            "timestamp": ts_ms,
            "source": "lambda",
            "path": path,
            "statusCode": status,
            "level": "warning" if status >= 400 else "info",
            "proxy": proxy,
        }
    )


def write_drain(folder: Path, lines: list[str]) -> str:
    (folder / "drain.ndjson").write_text("\n".join(lines) + "\n")
    return str(folder)


def test_requests_are_grouped_without_their_ids_and_a_rejected_latest_attempt_warns(tmp_path):
    source = write_drain(
        tmp_path,
        [
            drain_line(50, ROUTE, 200, "Stripe webhook payment_intent.succeeded evt_3AbC handled"),
            drain_line(40, ROUTE, 200, "Stripe webhook payment_intent.succeeded evt_3XyZ handled"),
            drain_line(30, ROUTE, 400, MISMATCH),
            drain_line(20, ROUTE, 400, MISMATCH),
            drain_line(10, ROUTE, 400, UNSIGNED),  # a probe (this runbook's own): not a delivery attempt
            drain_line(5, "/api/health", 500, "boom"),
            drain_line(3 * 86_400, ROUTE, 500, "outside the window"),
        ],
    )
    table = logs.check_webhook_logs(source, window_hours=24)
    assert sorted(table["requests"]) == [1, 2, 2]  # event ids do not split a message into rows
    assert "Stripe webhook payment_intent.succeeded evt_… handled" in set(table["message"])
    assert set(table["statusCode"]) == {200, 400}
    found = conclusion(CHECK)
    assert (found.status, found.severity) == ("warn", "P2")
    assert found.title == "The app rejected its latest webhook request (HTTP 400)"
    assert found.detail.startswith(MISMATCH) and "2 of 4 signed requests" in found.detail
    assert not found.essential


def test_an_accepted_latest_attempt_passes_although_the_window_holds_failures(tmp_path):
    source = write_drain(
        tmp_path,
        [
            drain_line(60, ROUTE, 400, MISMATCH),
            drain_line(30, ROUTE, 200, "Stripe webhook payment_intent.succeeded evt_1 handled"),
            drain_line(10, ROUTE, 400, UNSIGNED),
        ],
    )
    logs.check_webhook_logs(source)
    found = conclusion(CHECK)
    assert (found.status, found.title) == ("pass", "The app accepted its latest webhook request (HTTP 200)")
    assert "1 of 2 signed requests" in found.detail


def test_only_probes_or_nothing_at_the_route_pass(tmp_path):
    source = write_drain(
        tmp_path, [drain_line(10, ROUTE, 400, UNSIGNED), drain_line(5, "/api/health", 200, "")]
    )
    logs.check_webhook_logs(source)
    assert (
        conclusion(CHECK).title == "No signed request reached the webhook route in the logs of the last 24 h"
    )
    assert logs.webhook_requests(pd.DataFrame(columns=["path"])).empty


@pytest.mark.parametrize("source", ["", "missing-folder", "https://logs.example.com/drain"])
def test_no_readable_source_is_inconclusive(tmp_path, source):
    source = str(tmp_path / source) if source == "missing-folder" else source
    assert logs.check_webhook_logs(source) is None
    found = conclusion(CHECK)
    assert found.status == "inconclusive" and "log_source" in found.detail
