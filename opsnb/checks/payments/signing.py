"""Signature verification (runbook Solution "Webhook signature verification failing"): a test event signed
exactly as Stripe signs, POSTed to the app's route; its answer tells the known causes apart.

The event's type (``opsnb.probe``) is one no app acts on: a verifying app answers 2xx and ignores it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import stripe

from opsnb.checks.findings import CouldNotLook, check, conclude
from opsnb.checks.http import Probe, Prober
from opsnb.checks.payments.route import REACH_HINT, webhook_url
from opsnb.checks.secrets import scrub, secret

if TYPE_CHECKING:  # pandas stays a lazy import (kernel start time)
    import pandas as pd

PROBE_EVENT_TYPE = "opsnb.probe"
AS_CONFIGURED, TRIMMED = "as configured", "whitespace trimmed"
WRONG_SECRET_CAUSES = (
    "The app verifies with another secret than the endpoint's: the CLI's `stripe listen` whsec_ instead of the "
    "Dashboard endpoint's, the test-mode endpoint's secret in a live deployment (or the reverse), or a rolled "
    "secret not updated in the app. Set STRIPE_WEBHOOK_SECRET to the endpoint's signing secret and redeploy."
)


@dataclass(frozen=True)
class SecretShape:
    """Facts about a webhook secret's shape, never its value."""

    leading_whitespace: bool
    trailing_whitespace: bool
    whsec_prefix: bool
    length: int

    @property
    def whitespace(self) -> str:
        """'leading', 'trailing', 'leading and trailing' or '' (where the value has whitespace)."""
        where = [
            w
            for w, has in (("leading", self.leading_whitespace), ("trailing", self.trailing_whitespace))
            if has
        ]
        return " and ".join(where)


def secret_shape(value: str) -> SecretShape:
    """The shape of a webhook secret: surrounding whitespace, the whsec_ prefix, its length."""
    return SecretShape(
        leading_whitespace=value != value.lstrip(),
        trailing_whitespace=value != value.rstrip(),
        whsec_prefix=value.strip().startswith("whsec_"),
        length=len(value),
    )


def probe_event(livemode: bool, created: int | None = None) -> str:
    """A minimal event body shaped like Stripe's (compact JSON, as sent), of a type no app acts on."""
    created = int(time.time()) if created is None else created
    event = {
        "id": f"evt_opsnb_probe_{created}",
        "object": "event",
        "api_version": stripe.api_version,
        "created": created,
        "livemode": livemode,
        "pending_webhooks": 1,
        "type": PROBE_EVENT_TYPE,
        "request": {"id": None, "idempotency_key": None},
        "data": {"object": {"id": f"opsnb_probe_{created}", "object": PROBE_EVENT_TYPE}},
    }
    return json.dumps(event, separators=(",", ":"))


def sign(body: str, signing_secret: str, timestamp: int | None = None) -> str:
    """The Stripe-Signature header Stripe would send: ``t=<unix>,v1=HMAC-SHA256(secret, "<t>.<body>")``."""
    return stripe.WebhookSignature.generate_signature_header(body, signing_secret, timestamp=timestamp)


def post_signed(app_url: str, body: str, signature: str, prober: Prober) -> Probe:
    """POST ``body`` with ``signature`` to the webhook route; a 2xx is expected."""
    return prober.probe(
        webhook_url(app_url),
        method="POST",
        expect=(200, 201, 202, 204),
        content=body.encode(),
        headers={"Content-Type": "application/json; charset=utf-8", "Stripe-Signature": signature},
    )


def signed_attempts(
    app_url: str, signing_secret: str, livemode: bool, now: int | None = None
) -> pd.DataFrame:
    """POST a signed test event with the secret as configured and, when it has surrounding whitespace, once
    more with it trimmed: secret, status, accepted, latency_ms, answer (scrubbed)."""
    import pandas as pd

    variants = [(AS_CONFIGURED, signing_secret)]
    if signing_secret.strip() != signing_secret:
        variants.append((TRIMMED, signing_secret.strip()))
    rows = []
    with Prober() as prober:
        for label, candidate in variants:
            created = int(time.time()) if now is None else now
            body = probe_event(livemode, created)
            found = post_signed(app_url, body, sign(body, candidate, created), prober)
            answer = found.body[:200] if found.status is not None else found.error
            rows.append(
                {
                    "secret": label,
                    "status": found.status,
                    "accepted": found.ok,
                    "latency_ms": found.latency_ms,
                    "answer": scrub(answer),
                }
            )
    return pd.DataFrame(rows, columns=["secret", "status", "accepted", "latency_ms", "answer"])


@check(
    "payments.webhook-signature",
    hint=f"set the variable named by stripe_webhook_secret_env to the endpoint's signing secret; {REACH_HINT}",
)
def check_signature(app_url: str, webhook_secret_env: str, stripe_mode: str = "") -> pd.DataFrame:
    """Does the app accept an event signed with the endpoint's secret? If not, which known cause fits:
    whitespace in the app's secret or in this copy, a wrong secret, or a clock outside the tolerance."""
    value = secret(webhook_secret_env).reveal()
    shape = secret_shape(value)
    attempts = signed_attempts(app_url, value, livemode=stripe_mode == "live")
    by_label = {row["secret"]: row for row in attempts.to_dict(orient="records")}
    configured, trimmed = by_label[AS_CONFIGURED], by_label.get(TRIMMED)
    prefix_note = (
        ""
        if shape.whsec_prefix
        else f" Besides, ${webhook_secret_env} does not start with whsec_: it holds something else than an "
        "endpoint's signing secret (an API key? a quoted value?)."
    )
    if shape.whitespace and configured["accepted"]:
        return conclude(
            "fail",
            "The app's webhook secret contains whitespace",
            severity="P1",
            detail=f"The app accepts signatures made with the {shape.whitespace} whitespace included, so it "
            "rejects Stripe's (Stripe signs with the bare whsec_ value). Remove the whitespace from "
            "STRIPE_WEBHOOK_SECRET in the app's environment and redeploy.",
            evidence=attempts,
        )
    if shape.whitespace and trimmed is not None and trimmed["accepted"]:
        return conclude(
            "warn",
            f"${webhook_secret_env} (this environment's copy) has {shape.whitespace} whitespace; the app's is clean",
            severity="P3",
            detail="The app accepts the trimmed secret; remove the whitespace from the variable the runbook reads.",
            evidence=attempts,
        )
    if configured["accepted"]:
        if not shape.whsec_prefix:
            return conclude(
                "warn",
                f"The app accepts events signed with ${webhook_secret_env}, which is not a whsec_ signing secret",
                severity="P2",
                detail="Stripe signs with the endpoint's whsec_ secret: the app and this copy share another value, "
                "so Stripe's deliveries fail." + prefix_note,
                evidence=attempts,
            )
        return conclude(
            "pass",
            "The app accepts an event signed with the endpoint's secret",
            detail=f"HTTP {configured['status']}",
            evidence=attempts,
        )
    status, answer = configured["status"], str(configured["answer"])
    low = answer.lower()
    if status is None:
        raise CouldNotLook(f"the signed test event was not delivered: {answer}", REACH_HINT)
    if "tolerance" in low or "timestamp" in low:
        title = "The app rejects fresh signatures as too old (clock skew)"
        detail = f"HTTP {status}: {answer}. Compare the app's clock (payments.clock-skew) with real time."
    elif status == 400 and "signature" in low:
        title = "The app rejects events signed with the endpoint's secret (wrong webhook secret)"
        detail = f"HTTP {status}: {answer}. {WRONG_SECRET_CAUSES}"
    else:
        title = f"The app refuses a correctly signed test event (HTTP {status})"
        detail = answer
    return conclude("fail", title, severity="P1", detail=detail + prefix_note, evidence=attempts)
