"""The app's webhook route (runbook Investigation 3, "Test webhook endpoint"): one unsigned POST, judged
twice: by its status (is the route there and does it verify signatures?) and by its ``Date`` header (is the
app's clock within Stripe's signature tolerance?)."""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from opsnb.checks.findings import CouldNotLook, check, conclude
from opsnb.checks.http import Probe, Prober

if TYPE_CHECKING:  # pandas stays a lazy import (kernel start time)
    import pandas as pd

WEBHOOK_PATH = "/api/webhooks/stripe"  # the app's route (runbook: curl -X POST …/api/webhooks/stripe)
TOLERANCE_S = 300  # stripe.Webhook.DEFAULT_TOLERANCE: the SDK rejects signatures older than this
SIGNATURE_WORDS = ("signature", "stripe-signature", "webhook error")
REACH_HINT = "check that this machine reaches app_url; if the whole site is down, run the 500-triage runbook"


@dataclass
class RouteAnswer:
    """What the webhook route answered to an unsigned POST, and the app's clock read from that answer."""

    probe: Probe
    clock_skew_s: float | None  # seconds the app's Date header is ahead of this machine; None without one

    def table(self) -> pd.DataFrame:
        """One row: method, url, status, latency, clock skew and the start of the body (or the error)."""
        import pandas as pd

        p = self.probe
        row = {
            "method": p.method,
            "url": p.url,
            "status": p.status,
            "latency_ms": p.latency_ms,
            "clock_skew_s": self.clock_skew_s,
            "body": p.body[:160] or p.error,
        }
        return pd.DataFrame([row])


def webhook_url(app_url: str) -> str:
    """The app's webhook route under ``app_url``."""
    return app_url.rstrip("/") + WEBHOOK_PATH


def post_unsigned(app_url: str, prober: Prober | None = None) -> RouteAnswer:
    """POST an empty event to the webhook route without a Stripe-Signature (never raises: a network error
    is an answer without a status)."""
    own = prober is None
    prober = prober or Prober()
    try:
        found = prober.probe(
            webhook_url(app_url),
            method="POST",
            expect=400,
            content=b'{"object": "event"}',
            headers={"Content-Type": "application/json"},
        )
        response = prober.responses[-1]
    finally:
        if own:
            prober.close()
    date = response.headers.get("date") if response is not None else None
    return RouteAnswer(found, clock_skew_s(date))


def clock_skew_s(date_header: str | None, now: float | None = None) -> float | None:
    """Seconds an HTTP ``Date`` header is ahead of local time (negative: behind); None when absent or bad."""
    if not date_header:
        return None
    try:
        server = email.utils.parsedate_to_datetime(date_header).timestamp()
    except (TypeError, ValueError):
        return None
    local = time.time() if now is None else now
    return round(server - local, 1)


@check("payments.webhook-route", hint=REACH_HINT)
def check_route(answer: RouteAnswer) -> pd.DataFrame:
    """The runbook's `curl -X POST …/api/webhooks/stripe`, judged: an unsigned event must get a 400."""
    p, evidence = answer.probe, answer.table()
    status, body = p.status, p.body[:200]
    if status is None:
        raise CouldNotLook(f"no answer from POST {p.url}: {p.error}", REACH_HINT)
    if status == 400:
        names_it = any(word in body.lower() for word in SIGNATURE_WORDS)
        title = "The webhook route rejects an unsigned event (400" + (
            ", signature error)" if names_it else ")"
        )
        detail = body if names_it else f"the body does not name the signature: {body}"
        return conclude("pass", title, detail=detail, evidence=evidence)
    no_redirects = "Stripe delivers with POST and does not follow redirects"
    if 200 <= status < 300:
        title = "The webhook route accepts an unsigned event"
        detail = (
            f"HTTP {status} without a Stripe-Signature: anyone can post a fake payment_intent.succeeded. Verify "
            "with stripe.webhooks.constructEvent(rawBody, sig, STRIPE_WEBHOOK_SECRET)."
        )
    elif 300 <= status < 400:
        title = f"The webhook route redirects (HTTP {status})"
        detail = f"{no_redirects}: point the endpoint at the final URL."
    elif status in (401, 403):
        title = f"The webhook route refuses callers without credentials (HTTP {status})"
        detail = "An auth layer (middleware, deployment protection) sits in front of the route; exempt it."
    elif status in (404, 405):
        title = f"The webhook route is missing (HTTP {status})"
        detail = f"POST {WEBHOOK_PATH} is not served by this deployment; {no_redirects}."
    elif status >= 500:
        title = f"The webhook route crashes (HTTP {status})"
        detail = (
            f"The handler fails before verifying (STRIPE_WEBHOOK_SECRET unset? body parsed twice?): {body}"
        )
    else:
        return conclude(
            "warn",
            f"The webhook route answers HTTP {status} to an unsigned event",
            severity="P2",
            detail=body,
            evidence=evidence,
        )
    return conclude("fail", title, severity="P1", detail=detail, evidence=evidence)


@check("payments.clock-skew", essential=False, hint=REACH_HINT)
def check_clock(answer: RouteAnswer, tolerance_s: int = TOLERANCE_S) -> pd.DataFrame:
    """The app's clock (its answer's Date header) against this machine's, within Stripe's tolerance?"""
    evidence = answer.table()
    skew = answer.clock_skew_s
    if answer.probe.status is None:
        raise CouldNotLook(f"no answer from POST {answer.probe.url}: {answer.probe.error}", REACH_HINT)
    if skew is None:
        raise CouldNotLook(
            "the app's answer carries no Date header",
            "compare the app server's clock with real time by hand (date -u on the server)",
        )
    if skew > tolerance_s:
        return conclude(
            "fail",
            f"The app's clock is {skew:+.0f} s ahead: Stripe's signatures look expired to it",
            severity="P1",
            detail=f"Stripe's timestamps are older than the {tolerance_s} s tolerance on arrival; "
            "fix the server's time (NTP).",
            evidence=evidence,
        )
    if skew < -tolerance_s:
        return conclude(
            "warn",
            f"The app's clock is {skew:+.0f} s behind this machine's",
            severity="P3",
            detail="That alone does not break verification, but one of the two clocks is wrong; "
            "check this machine's too.",
            evidence=evidence,
        )
    seconds = round(abs(skew))
    where = f"{seconds} s {'ahead of' if skew > 0 else 'behind'}" if seconds else "in step with"
    return conclude(
        "pass",
        f"The app's clock is {where} this machine's (Stripe's tolerance: {tolerance_s} s)",
        evidence=evidence,
    )
