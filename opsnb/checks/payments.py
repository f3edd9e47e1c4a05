"""Stripe payments and webhooks: the runbook's "Issue: Stripe Payments Failing", as checks.

Named ``stripe_checks`` rather than ``stripe``: with absolute imports ``import stripe`` inside
``opsnb/stripe.py`` would still load the SDK, but anything that puts ``opsnb/`` itself on
``sys.path`` (running a file from that folder, a tool's cwd) would make the module shadow the SDK.

One function per HTTP call or query (PgHero's model); thresholds are keyword arguments with their
source in a comment. ``check_*`` functions call those, record findings and return a table for the
notebook; ``diagnose_*``/``*_findings`` functions are pure and return ``Verdict`` rows (unit-tested).
Secrets come in as :class:`opsnb.checks.secrets.Secret` and are only revealed to the SDK or the HMAC.
"""

from __future__ import annotations

import datetime as _dt
import email.utils
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import stripe

from opsnb.checks import findings
from opsnb.checks.http import Probe, Prober
from opsnb.checks.secrets import Secret, scrub

if TYPE_CHECKING:  # pandas stays a lazy import (kernel start time)
    import pandas as pd

    from opsnb.checks.postgres import Database

WEBHOOK_PATH = "/api/webhooks/stripe"  # the app's route (runbook: curl -X POST …/api/webhooks/stripe)
TOLERANCE_S = 300  # stripe.Webhook.DEFAULT_TOLERANCE: signatures older than this are rejected
PENDING_MINUTES = (
    15  # a PaymentIntent's webhook normally lands within seconds; Stripe's first retry within minutes
)
HANDLED_EVENTS = ("payment_intent.succeeded", "payment_intent.payment_failed")
# Events whose loss leaves an order wrong (the app marks orders paid on these).
PAYMENT_EVENTS = ("payment_intent.succeeded", "checkout.session.completed", "charge.succeeded")
SIGNATURE_WORDS = ("signature", "stripe-signature", "webhook error")
STRIPE_ID = r"\b(evt_opsnb_probe|evt|pi|ch|cs_test|cs_live|cs|we|req)_[A-Za-z0-9_]+"
PROBE_EVENT_TYPE = "opsnb.probe"  # a type no app handles: verified, then ignored with a 2xx


@dataclass
class Verdict:
    """What a pure check concluded; ``record`` turns it into a finding."""

    severity: str
    title: str
    detail: str = ""
    evidence: Any = None

    def record(self, check: str) -> None:
        """Add this verdict as a finding under ``check``."""
        findings.add(self.severity, self.title, self.detail, evidence=self.evidence, check=check)


def _record(verdicts: Iterable[Verdict], check: str) -> list[Verdict]:
    out = list(verdicts)
    for v in out:
        v.record(check)
    return out


# --------------------------------------------------------------------------- keys and clients


def key_mode(key: Secret | str) -> str:
    """'test', 'live' or 'unknown' from a secret or restricted key's prefix (sk_test_, rk_live_, …)."""
    value = key.reveal() if isinstance(key, Secret) else key
    value = value.strip()
    for prefix in ("sk_", "rk_"):
        if value.startswith(prefix + "test_"):
            return "test"
        if value.startswith(prefix + "live_"):
            return "live"
    return "unknown"


def client(
    api_base: str, key: Secret, timeout_s: float = 20.0, max_network_retries: int = 1
) -> stripe.StripeClient:
    """A StripeClient for ``api_base`` with its own key, base address and HTTP client (no global state)."""
    return stripe.StripeClient(
        key.reveal().strip(),
        base_addresses={"api": api_base.rstrip("/")},
        http_client=stripe.HTTPXClient(timeout=timeout_s, allow_sync_methods=True),
        max_network_retries=max_network_retries,
    )


def webhook_url(app_url: str) -> str:
    """The app's webhook route under ``app_url``."""
    return app_url.rstrip("/") + WEBHOOK_PATH


def _plain(obj: Any) -> dict[str, Any]:
    """A StripeObject (not a dict in SDK v16) as nested plain dicts."""
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def _error_line(exc: Exception) -> str:
    """One scrubbed line for a Stripe/HTTP error (never the key)."""
    message = getattr(exc, "user_message", None) or str(exc) or type(exc).__name__
    return scrub(f"{type(exc).__name__}: {message.strip().splitlines()[0] if message.strip() else ''}")


# --------------------------------------------------------------------------- the app's webhook route


def probe_unsigned(app_url: str, prober: Prober | None = None) -> tuple[Probe, Any]:
    """POST an empty event to the webhook route without a Stripe-Signature; returns the probe and response."""
    prober = prober or Prober()
    found = prober.probe(
        webhook_url(app_url),
        method="POST",
        expect=400,
        content=b'{"object": "event"}',
        headers={"Content-Type": "application/json"},
    )
    return found, prober.responses[-1]


def clock_skew_s(response: Any, now: float | None = None) -> float | None:
    """Seconds the server's ``Date`` header is ahead of local time (negative: behind); None without one."""
    if response is None:
        return None
    header = response.headers.get("date")
    if not header:
        return None
    try:
        server = email.utils.parsedate_to_datetime(header).timestamp()
    except (TypeError, ValueError):
        return None
    local = time.time() if now is None else now
    return round(server - local, 1)


def diagnose_unsigned(status: int | None, body: str, error: str = "") -> Verdict:
    """What the answer to an unsigned POST says about the route (400 naming the signature = healthy)."""
    url_hint = "Stripe delivers with POST and does not follow redirects"
    if status is None:
        return Verdict(
            "P1", "Webhook route unreachable", f"POST failed: {error}. Stripe cannot deliver either."
        )
    if status == 400:
        if any(word in body.lower() for word in SIGNATURE_WORDS):
            return Verdict("info", "Webhook route rejects unsigned events (400, signature error)", body[:200])
        return Verdict(
            "info",
            "Webhook route rejects unsigned events (400)",
            f"body does not name the signature: {body[:200]}",
        )
    if 200 <= status < 300:
        return Verdict(
            "P1",
            "Webhook route accepts unsigned events",
            f"HTTP {status} without a Stripe-Signature: anyone can post a fake payment_intent.succeeded. "
            "Verify with stripe.webhooks.constructEvent(rawBody, sig, STRIPE_WEBHOOK_SECRET).",
        )
    if 300 <= status < 400:
        return Verdict(
            "P1",
            f"Webhook route redirects (HTTP {status})",
            f"{url_hint}: point the endpoint at the final URL.",
        )
    if status in (401, 403):
        return Verdict(
            "P1",
            f"Webhook route refuses Stripe (HTTP {status})",
            "An auth layer (middleware, deployment protection) sits in front of the route; exempt it.",
        )
    if status in (404, 405):
        return Verdict(
            "P1",
            f"Webhook route missing (HTTP {status})",
            f"POST {WEBHOOK_PATH} is not served by this deployment; {url_hint}.",
        )
    if status >= 500:
        return Verdict(
            "P1",
            f"Webhook route crashes (HTTP {status})",
            "The handler fails before verifying (STRIPE_WEBHOOK_SECRET unset? body parsed twice?): "
            + body[:200],
        )
    return Verdict("P2", f"Webhook route answers HTTP {status} to an unsigned event", body[:200])


def diagnose_clock(skew_s: float | None, tolerance_s: int = TOLERANCE_S) -> Verdict:
    """Clock skew between the app and this machine, against Stripe's signature tolerance."""
    if skew_s is None:
        return Verdict("P3", "Clock skew unknown", "the app's answer had no Date header")
    if skew_s > tolerance_s:
        return Verdict(
            "P1",
            f"App clock {skew_s:+.0f} s ahead: signatures look expired",
            f"Stripe's timestamps are older than the {tolerance_s} s tolerance on arrival; fix the server's time (NTP).",
        )
    if skew_s < -tolerance_s:
        return Verdict(
            "P3",
            f"App clock {skew_s:+.0f} s behind this machine",
            "Does not break verification by itself, but one of the two clocks is wrong; check this machine's too.",
        )
    return Verdict("info", f"Clock skew {round(skew_s) or 0:+d} s (tolerance {tolerance_s} s)")


def check_route(app_url: str, prober: Prober | None = None) -> pd.DataFrame:
    """Runbook step 3, done right: unsigned POST must get a 400 signature error; also measures clock skew."""
    import pandas as pd

    found, response = probe_unsigned(app_url, prober)
    skew = clock_skew_s(response)
    _record([diagnose_unsigned(found.status, found.body, found.error), diagnose_clock(skew)], "stripe.route")
    return pd.DataFrame(
        [
            {
                "method": found.method,
                "url": found.url,
                "status": found.status,
                "latency_ms": found.latency_ms,
                "clock_skew_s": skew,
                "body": found.body[:160] or found.error,
            }
        ]
    )


# --------------------------------------------------------------------------- signed test event


def test_event(livemode: bool, created: int | None = None) -> str:
    """A minimal event body of a type no app acts on, shaped like Stripe's (compact JSON, as sent)."""
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
        "data": {"object": {"id": f"opsnb_probe_{created}", "object": "opsnb.probe"}},
    }
    return json.dumps(event, separators=(",", ":"))


def sign(body: str, secret: Secret | str, timestamp: int | None = None) -> str:
    """The Stripe-Signature header Stripe would send: ``t=<unix>,v1=HMAC-SHA256(secret, "<t>.<body>")``."""
    value = secret.reveal() if isinstance(secret, Secret) else secret
    return stripe.WebhookSignature.generate_signature_header(body, value, timestamp=timestamp)


def post_signed(app_url: str, body: str, signature: str, prober: Prober | None = None) -> Probe:
    """POST ``body`` with ``signature`` to the webhook route; 2xx expected."""
    prober = prober or Prober()
    return prober.probe(
        webhook_url(app_url),
        method="POST",
        expect=(200, 201, 202, 204),
        content=body.encode(),
        headers={"Content-Type": "application/json; charset=utf-8", "Stripe-Signature": signature},
    )


def whitespace(secret: Secret) -> dict[str, Any]:
    """Facts about the secret's shape, never its value: surrounding whitespace, whsec_ prefix, length."""
    value = secret.reveal()
    return {
        "leading_whitespace": value != value.lstrip(),
        "trailing_whitespace": value != value.rstrip(),
        "whsec_prefix": value.strip().startswith("whsec_"),
        "length": len(value),
    }


def signed_attempts(
    app_url: str, secret: Secret, livemode: bool, prober: Prober | None = None, now: int | None = None
) -> pd.DataFrame:
    """POST a signed test event as configured, and (when the secret has whitespace) with it trimmed."""
    import pandas as pd

    prober = prober or Prober()
    value = secret.reveal()
    variants = [("as configured", value)]
    if value.strip() != value:
        variants.append(("whitespace trimmed", value.strip()))
    rows = []
    for label, candidate in variants:
        created = int(time.time()) if now is None else now
        body = test_event(livemode, created)
        found = post_signed(app_url, body, sign(body, candidate, created), prober)
        rows.append(
            {
                "secret": label,
                "status": found.status,
                "accepted": found.ok,
                "latency_ms": found.latency_ms,
                "answer": scrub(found.body[:200] or found.error),
            }
        )
    return pd.DataFrame(rows, columns=["secret", "status", "accepted", "latency_ms", "answer"])


def diagnose_signature(attempts: Sequence[dict[str, Any]], shape: dict[str, Any]) -> list[Verdict]:
    """Tell apart the known causes from the signed attempts and the secret's shape.

    ``attempts`` are rows of :func:`signed_attempts`; ``shape`` is :func:`whitespace`'s result.
    """
    out: list[Verdict] = []
    by_label = {a["secret"]: a for a in attempts}
    configured = by_label.get("as configured", {})
    trimmed = by_label.get("whitespace trimmed")
    has_ws = shape["leading_whitespace"] or shape["trailing_whitespace"]
    where = ", ".join(
        w for w, k in (("leading", "leading_whitespace"), ("trailing", "trailing_whitespace")) if shape[k]
    )

    if not shape["whsec_prefix"]:
        out.append(
            Verdict(
                "P2",
                "Webhook secret does not start with whsec_",
                "The variable holds something else (an API key? a quoted value?); copy the endpoint's signing secret.",
            )
        )
    if has_ws and configured.get("accepted"):
        out.append(
            Verdict(
                "P1",
                "Whitespace in the app's webhook secret",
                f"The app accepts signatures made with {where} whitespace included, so it rejects Stripe's "
                "(Stripe signs with the bare whsec_ value). Remove the whitespace from STRIPE_WEBHOOK_SECRET "
                "in the app's environment and redeploy.",
            )
        )
        return out
    if has_ws and trimmed and trimmed.get("accepted"):
        out.append(
            Verdict(
                "P3",
                "Whitespace in this environment's copy of the webhook secret",
                f"{where} whitespace in the variable the runbook reads; the app's copy is clean.",
            )
        )
        return out
    if configured.get("accepted"):
        out.append(
            Verdict(
                "info", "App accepts an event signed with the endpoint secret", f"HTTP {configured['status']}"
            )
        )
        return out

    status = configured.get("status")
    answer = str(configured.get("answer", ""))
    low = answer.lower()
    if status is None:
        out.append(Verdict("P1", "Signed test event not delivered", answer))
    elif "tolerance" in low or "timestamp" in low:
        out.append(
            Verdict(
                "P1",
                "App rejects fresh signatures as too old (clock skew)",
                f"HTTP {status}: {answer}. Compare the app's clock (Date header) with real time.",
            )
        )
    elif status == 400 and ("no signatures found matching" in low or "signature" in low):
        out.append(
            Verdict(
                "P1",
                "App rejects events signed with the endpoint secret (wrong webhook secret)",
                f"HTTP {status}: {answer}. The app verifies with another secret than the endpoint's: the CLI's "
                "`stripe listen` whsec_ instead of the Dashboard endpoint's, the test-mode endpoint's secret in a "
                "live deployment (or the reverse), or a rolled secret not updated in the app. Set "
                "STRIPE_WEBHOOK_SECRET to the endpoint's signing secret and redeploy.",
            )
        )
    else:
        out.append(Verdict("P1", f"Signed test event refused (HTTP {status})", answer))
    return out


def check_signature(app_url: str, secret: Secret, key: Secret, prober: Prober | None = None) -> pd.DataFrame:
    """Sign a test event as Stripe does and POST it; records which known cause fits the answer."""
    livemode = key_mode(key) == "live"
    attempts = signed_attempts(app_url, secret, livemode, prober)
    _record(diagnose_signature(attempts.to_dict(orient="records"), whitespace(secret)), "stripe.signature")
    return attempts


def signature_accepted() -> bool:
    """True when the last signed test event of this run was accepted (read back from the findings)."""
    bad = [f for f in findings.all_findings() if f.check == "stripe.signature" and f.severity in ("P0", "P1")]
    tried = [f for f in findings.all_findings() if f.check == "stripe.signature"]
    return bool(tried) and not bad


# --------------------------------------------------------------------------- the app's logs


def webhook_log_summary(frame: pd.DataFrame, path: str = WEBHOOK_PATH) -> pd.DataFrame:
    """Requests to the webhook route grouped by status and message: count, first and last seen."""
    import pandas as pd

    columns = ["statusCode", "message", "requests", "first", "last"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    hits = frame[frame["path"] == path].copy()
    if hits.empty:
        return pd.DataFrame(columns=columns)
    # Ids differ per request; without them the same failure groups into one row.
    hits["message"] = hits["message"].fillna("").str.replace(STRIPE_ID, r"\1_…", regex=True).str.slice(0, 120)
    grouped = hits.groupby(["statusCode", "message"], dropna=False)["timestamp"]
    out = grouped.agg(requests="count", first="min", last="max").reset_index()
    return out.sort_values("last", ascending=False).reset_index(drop=True)[columns]


def check_logs(log_source: str, window_hours: float = 24) -> pd.DataFrame:
    """Runbook step 2 (`vercel logs | grep stripe`): the webhook route's requests in the app's logs.

    Evidence only (info): the failures it shows are judged by the Stripe-side and database checks.
    """
    import pandas as pd

    from opsnb.checks.logs import read_logs

    if not log_source:
        findings.add("info", "Webhook logs not read", "no log_source given", check="stripe.logs")
        return pd.DataFrame()
    try:
        read = read_logs(log_source, since=_dt.timedelta(hours=window_hours))
    except (OSError, ValueError) as exc:
        findings.add("info", "Webhook logs not read", scrub(str(exc)), check="stripe.logs")
        return pd.DataFrame()
    table = webhook_log_summary(read.frame)
    if table.empty:
        findings.add(
            "info", f"No webhook requests in the logs of the last {window_hours:g} h", check="stripe.logs"
        )
        return table
    by_status = table.groupby("statusCode")["requests"].sum()
    detail = ", ".join(f"HTTP {int(code)}: {int(n)}" for code, n in by_status.items())
    # Stripe always signs: "No Stripe-Signature header" failures are probes (this runbook's own included).
    failing = table[
        (table["statusCode"] >= 400) & ~table["message"].str.contains("No Stripe-Signature header")
    ]
    if not failing.empty:
        detail += f"; latest failure: {failing.iloc[0]['message'] or 'no message'}"
    findings.add(
        "info", f"{int(table['requests'].sum())} webhook requests in the logs", detail, check="stripe.logs"
    )
    return table


# --------------------------------------------------------------------------- Stripe side


def diagnose_mode(key: Secret | str, expected: str = "") -> Verdict:
    """Key's mode against the mode this environment should run in ('' = no expectation)."""
    mode = key_mode(key)
    if mode == "unknown":
        return Verdict(
            "P2", "Stripe key is neither sk_/rk_ test nor live", "check the variable the runbook reads"
        )
    if expected and mode != expected:
        return Verdict(
            "P1",
            f"Test vs live mismatch: {mode} key where {expected} is expected",
            "Keys, webhook endpoints and their secrets exist per mode; all three must be of the same mode.",
        )
    return Verdict("info", f"Stripe key is a {mode}-mode key")


def webhook_endpoints(api: stripe.StripeClient, limit: int = 100) -> pd.DataFrame:
    """Every webhook endpoint of the account (id, url, status, livemode, enabled_events)."""
    import pandas as pd

    rows = []
    for item in api.v1.webhook_endpoints.list(params={"limit": min(limit, 100)}).auto_paging_iter():
        ep = _plain(item)
        rows.append(
            {
                "id": ep.get("id"),
                "url": ep.get("url"),
                "status": ep.get("status"),
                "livemode": ep.get("livemode"),
                "enabled_events": list(ep.get("enabled_events") or []),
                "api_version": ep.get("api_version"),
            }
        )
        if len(rows) >= limit:
            break
    return pd.DataFrame(rows, columns=["id", "url", "status", "livemode", "enabled_events", "api_version"])


def _norm_url(url: str) -> str:
    return (url or "").strip().rstrip("/").lower()


def endpoint_findings(
    endpoints: Sequence[dict[str, Any]], app_url: str, handled_events: Sequence[str], mode: str
) -> list[Verdict]:
    """Is there an enabled endpoint at the app's route, subscribed to what the app handles, in the key's mode?"""
    want = webhook_url(app_url)
    exact = [e for e in endpoints if (e.get("url") or "") == want]
    close = [e for e in endpoints if _norm_url(e.get("url")) == _norm_url(want) and e not in exact]
    out: list[Verdict] = []
    if not exact:
        if close:
            out.append(
                Verdict(
                    "P1",
                    "Webhook endpoint URL differs from the app's route",
                    f"expected {want}; found {', '.join(e['url'] for e in close)} (a trailing slash or case "
                    "difference means a redirect, which Stripe does not follow)",
                    evidence=[e["id"] for e in close],
                )
            )
        else:
            urls = ", ".join(str(e.get("url")) for e in endpoints) or "none"
            out.append(
                Verdict(
                    "P1", "No webhook endpoint for the app's route", f"expected {want}; endpoints: {urls}"
                )
            )
        return out
    for ep in exact:
        if ep.get("status") != "enabled":
            out.append(
                Verdict(
                    "P1",
                    f"Webhook endpoint {ep['id']} is {ep.get('status')}",
                    "Stripe disables an endpoint after days of failures; re-enable it once deliveries succeed.",
                )
            )
        subscribed = set(ep.get("enabled_events") or [])
        if "*" not in subscribed:
            missing = [e for e in handled_events if e not in subscribed]
            if missing:
                out.append(
                    Verdict(
                        "P1",
                        f"Webhook endpoint {ep['id']} not subscribed to events the app handles",
                        "missing: " + ", ".join(missing),
                        evidence=missing,
                    )
                )
        ep_mode = "live" if ep.get("livemode") else "test"
        if mode in ("test", "live") and ep.get("livemode") is not None and ep_mode != mode:
            out.append(
                Verdict(
                    "P1", f"Test vs live mismatch: {ep_mode}-mode endpoint, {mode}-mode key", str(ep["id"])
                )
            )
    if not out:
        ids = ", ".join(e["id"] for e in exact)
        out.append(
            Verdict("info", "Webhook endpoint enabled at the app's route with the handled events", ids)
        )
    return out


def check_endpoints(
    api: stripe.StripeClient,
    app_url: str,
    handled_events: Sequence[str],
    key: Secret,
    expected_mode: str = "",
) -> pd.DataFrame:
    """Runbook step 4 (Dashboard > Webhooks) through the API; records endpoint and mode findings."""
    diagnose_mode(key, expected_mode).record("stripe.mode")
    try:
        table = webhook_endpoints(api)
    except stripe.StripeError as exc:
        findings.add("P1", "Cannot list webhook endpoints", _error_line(exc), check="stripe.endpoints")
        import pandas as pd

        return pd.DataFrame()
    _record(
        endpoint_findings(table.to_dict(orient="records"), app_url, handled_events, key_mode(key)),
        "stripe.endpoints",
    )
    return table


def _ts(value: Any) -> _dt.datetime | None:
    return _dt.datetime.fromtimestamp(int(value), _dt.UTC) if value else None


def events(
    api: stripe.StripeClient,
    since: int,
    until: int | None = None,
    delivery_success: bool | None = None,
    types: Sequence[str] | None = None,
    limit: int = 1000,
) -> pd.DataFrame:
    """Events created in [since, until] (one paged list call), flattened with their PaymentIntent facts."""
    import pandas as pd

    params: dict[str, Any] = {"limit": 100, "created": {"gte": int(since)}}
    if until is not None:
        params["created"]["lte"] = int(until)
    if delivery_success is not None:
        params["delivery_success"] = delivery_success
    if types:
        params["types"] = list(types)[:20]  # the API takes at most 20
    rows = []
    for item in api.v1.events.list(params=params).auto_paging_iter():
        ev = _plain(item)
        obj = (ev.get("data") or {}).get("object") or {}
        err = obj.get("last_payment_error") or {}
        rows.append(
            {
                "id": ev.get("id"),
                "type": ev.get("type"),
                "created": _ts(ev.get("created")),
                "livemode": ev.get("livemode"),
                "pending_webhooks": ev.get("pending_webhooks"),
                "object_id": obj.get("id"),
                "order_id": (obj.get("metadata") or {}).get("orderId"),
                "amount": obj.get("amount"),
                "decline_code": err.get("decline_code") or err.get("code"),
            }
        )
        if len(rows) >= limit:
            break
    columns = [
        "id",
        "type",
        "created",
        "livemode",
        "pending_webhooks",
        "object_id",
        "order_id",
        "amount",
        "decline_code",
    ]
    return pd.DataFrame(rows, columns=columns)


def delivery_findings(failed: Sequence[dict[str, Any]], mode: str, window_hours: float) -> list[Verdict]:
    """Events whose delivery is failing or pending: payment events are P1 (orders stay pending)."""
    if not failed:
        return [Verdict("info", f"No failed webhook deliveries in the last {window_hours:g} h")]
    out: list[Verdict] = []
    payment = [e for e in failed if e.get("type") in PAYMENT_EVENTS]
    other = [e for e in failed if e.get("type") not in PAYMENT_EVENTS]
    if payment:
        out.append(
            Verdict(
                "P1",
                f"{len(payment)} payment events not delivered to the app",
                f"delivery_success=false in the last {window_hours:g} h (still pending or failed every attempt): "
                + ", ".join(str(e["id"]) for e in payment[:20]),
                evidence=[
                    {"id": e["id"], "type": e["type"], "pending_webhooks": e.get("pending_webhooks")}
                    for e in payment
                ],
            )
        )
    if other:
        out.append(
            Verdict(
                "P2",
                f"{len(other)} other events not delivered to the app",
                ", ".join(f"{e['id']} ({e['type']})" for e in other[:20]),
            )
        )
    wrong_mode = [
        e
        for e in failed
        if mode in ("test", "live")
        and e.get("livemode") is not None
        and bool(e["livemode"]) != (mode == "live")
    ]
    if wrong_mode:
        out.append(
            Verdict("P1", "Test vs live mismatch: events of the other mode", f"{len(wrong_mode)} events")
        )
    return out


def check_deliveries(api: stripe.StripeClient, key: Secret, window_hours: float = 24) -> pd.DataFrame:
    """Runbook step 1 (Dashboard > Events): events of the window whose webhook delivery failed."""
    since = int(time.time() - window_hours * 3600)
    try:
        failed = events(api, since, delivery_success=False)
    except stripe.StripeError as exc:
        findings.add("P1", "Cannot list Stripe events", _error_line(exc), check="stripe.deliveries")
        import pandas as pd

        return pd.DataFrame()
    _record(
        delivery_findings(failed.to_dict(orient="records"), key_mode(key), window_hours), "stripe.deliveries"
    )
    return failed


def decline_counts(failed_payments: pd.DataFrame) -> pd.DataFrame:
    """payment_intent.payment_failed events counted by decline code, most frequent first."""
    import pandas as pd

    if failed_payments.empty:
        return pd.DataFrame(columns=["decline_code", "payments"])
    codes = failed_payments["decline_code"].fillna("unknown")
    counts = codes.value_counts().rename_axis("decline_code").reset_index(name="payments")
    return counts


def check_declines(api: stripe.StripeClient, window_hours: float = 24):
    """Payment failures of the window by decline code, as a bar chart (the runbook's "Payment intent fails")."""
    import matplotlib.pyplot as plt

    since = int(time.time() - window_hours * 3600)
    failed = events(api, since, types=["payment_intent.payment_failed"])
    counts = decline_counts(failed)
    total = int(counts["payments"].sum()) if not counts.empty else 0
    detail = ", ".join(f"{r.decline_code}: {r.payments}" for r in counts.itertuples()) or "none"
    # Declines are the customer's bank answering; they are evidence, not an outage. authentication_required
    # means 3D Secure was asked for: the checkout must confirm the PaymentIntent client-side to pass it.
    findings.add(
        "info", f"{total} failed payments in the last {window_hours:g} h", detail, check="stripe.declines"
    )
    fig, ax = plt.subplots(figsize=(6, 2.6))
    if total:
        from matplotlib.ticker import MaxNLocator

        ax.barh(counts["decline_code"][::-1], counts["payments"][::-1], color="#c0392b")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    else:
        ax.text(0.5, 0.5, "no failed payments", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("failed payments")
    ax.set_title(f"Payment failures by decline code, last {window_hours:g} h")
    fig.tight_layout()
    plt.close(fig)
    return counts, fig


# --------------------------------------------------------------------------- database side


def open_database(dsn_env: str) -> Database | None:
    """A read-only session on the shop database; None (and a P1 finding) when it cannot be reached,
    so that the Stripe-side checks still run during an outage."""
    from opsnb.checks.postgres import DatabaseError, connect

    try:
        return connect(dsn_env)
    except DatabaseError as exc:
        findings.add("P1", "Cannot reach the shop database", str(exc), check="stripe.orders")
        return None


def pending_orders(db: Database, older_than_minutes: int = PENDING_MINUTES, limit: int = 200) -> pd.DataFrame:
    """Orders still "pending" after ``older_than_minutes`` (oldest first), with their PaymentIntent id."""
    return db.query(
        'SELECT "id" AS order_id, "userId" AS user_id, "total", "stripePaymentIntentId" AS payment_intent, '
        '"createdAt" AS created_at, round(extract(epoch FROM (now() - "createdAt")) / 60)::int AS age_minutes '
        'FROM "Order" WHERE "status" = \'pending\' AND "createdAt" < now() - make_interval(mins => %s) '
        'ORDER BY "createdAt" LIMIT %s',
        (int(older_than_minutes), int(limit)),
    )


def payment_intent(api: stripe.StripeClient, intent_id: str) -> dict[str, Any]:
    """One PaymentIntent's status (or the error Stripe gave for it)."""
    try:
        pi = _plain(api.v1.payment_intents.retrieve(intent_id))
    except stripe.StripeError as exc:
        return {
            "payment_intent": intent_id,
            "stripe_status": None,
            "livemode": None,
            "error": _error_line(exc),
        }
    return {
        "payment_intent": intent_id,
        "stripe_status": pi.get("status"),
        "livemode": pi.get("livemode"),
        "error": "",
    }


def diagnose_order(db_status: str, stripe_status: str | None, error: str) -> str:
    """One pending order's diagnosis from its PaymentIntent."""
    if not stripe_status:
        if "similar object exists in" in error:
            return "test/live mismatch"
        return "no PaymentIntent" if not error else "lookup failed"
    if stripe_status == "succeeded":
        return "missed webhook"
    if stripe_status in ("processing", "requires_capture"):
        return "payment in progress"
    if stripe_status == "canceled":
        return "abandoned (canceled)"
    return "awaiting customer"  # requires_payment_method / requires_action / requires_confirmation


def stuck_findings(rows: Sequence[dict[str, Any]], older_than_minutes: int) -> list[Verdict]:
    """Findings for pending orders and their PaymentIntents: succeeded-but-pending is a missed webhook (P1)."""
    if not rows:
        return [Verdict("info", f"No order pending for more than {older_than_minutes} min")]
    out: list[Verdict] = []
    missed = [r for r in rows if r["diagnosis"] == "missed webhook"]
    if missed:
        out.append(
            Verdict(
                "P1",
                f"{len(missed)} orders stuck in pending although Stripe says succeeded (missed webhook)",
                "orders: " + ", ".join(str(r["order_id"]) for r in missed),
                evidence=[{"order": r["order_id"], "payment_intent": r["payment_intent"]} for r in missed],
            )
        )
    mismatch = [r for r in rows if r["diagnosis"] == "test/live mismatch"]
    if mismatch:
        out.append(
            Verdict(
                "P1",
                "Test vs live mismatch: pending orders' PaymentIntents exist only in the other mode",
                ", ".join(str(r["order_id"]) for r in mismatch),
            )
        )
    failed = [r for r in rows if r["diagnosis"] in ("lookup failed", "no PaymentIntent")]
    if failed:
        out.append(
            Verdict(
                "P2",
                f"{len(failed)} pending orders whose PaymentIntent could not be checked",
                "; ".join(f"{r['order_id']}: {r['error'] or 'no PaymentIntent id'}" for r in failed[:10]),
            )
        )
    rest = len(rows) - len(missed) - len(mismatch) - len(failed)
    if rest:
        out.append(
            Verdict(
                "info",
                f"{rest} pending orders still waiting on the customer or the bank",
                "not a webhook problem",
            )
        )
    return out


def check_stuck_orders(
    db: Database | None,
    api: stripe.StripeClient,
    older_than_minutes: int = PENDING_MINUTES,
    max_lookups: int = 100,
) -> pd.DataFrame:
    """Pending orders older than N minutes with their PaymentIntent's status in Stripe and a diagnosis."""
    import pandas as pd

    if db is None:
        print("No database session: pending orders not checked.")
        return pd.DataFrame(columns=["order_id", "payment_intent", "stripe_status", "diagnosis"])
    orders = pending_orders(db, older_than_minutes, limit=max_lookups)
    rows = []
    for order in orders.to_dict(orient="records"):
        pi_id = order.get("payment_intent")
        pi = payment_intent(api, pi_id) if pi_id else {"stripe_status": None, "livemode": None, "error": ""}
        row = {**order, **pi, "payment_intent": pi_id}
        row["diagnosis"] = diagnose_order("pending", pi.get("stripe_status"), pi.get("error", ""))
        rows.append(row)
    _record(stuck_findings(rows, older_than_minutes), "stripe.orders")
    columns = [*orders.columns, "stripe_status", "livemode", "diagnosis", "error"]
    return pd.DataFrame(rows, columns=list(dict.fromkeys(columns)))


# --------------------------------------------------------------------------- mitigation


def retry_event(api: stripe.StripeClient, event_id: str, endpoint_id: str | None = None) -> dict[str, Any]:
    """POST /v1/events/{id}/retry (what `stripe events resend` calls): one redelivery of one event."""
    params = {"webhook_endpoint": endpoint_id} if endpoint_id else {}
    try:
        api.raw_request("post", f"/v1/events/{event_id}/retry", **params)
    except stripe.StripeError as exc:
        return {"event": event_id, "resent": False, "error": _error_line(exc)}
    return {"event": event_id, "resent": True, "error": ""}


def resend(
    api: stripe.StripeClient, event_ids: Sequence[str], endpoint_id: str | None = None
) -> pd.DataFrame:
    """Resend each event to the endpoint; a table of what Stripe answered."""
    import pandas as pd

    return pd.DataFrame(
        [retry_event(api, e, endpoint_id) for e in event_ids], columns=["event", "resent", "error"]
    )


def resend_failed(
    api: stripe.StripeClient, failed: pd.DataFrame, endpoints: pd.DataFrame, app_url: str
) -> dict[str, Any] | None:
    """Gated action: resend the payment events whose delivery failed to the app's endpoint.

    Held back (recorded, not offered) while the app still rejects a correctly signed event: a resend
    would only fail again.
    """
    from opsnb.checks import context
    from opsnb.checks.actions import action

    ids = (
        []
        if failed.empty
        else [e for e, t in zip(failed["id"], failed["type"], strict=True) if t in PAYMENT_EVENTS]
    )
    if not ids:
        print("Nothing to resend: no payment event with a failed delivery.")
        return None
    ours = endpoints[endpoints["url"] == webhook_url(app_url)] if not endpoints.empty else endpoints
    endpoint_id = str(ours["id"].iloc[0]) if not ours.empty else None
    title = f"Resend {len(ids)} failed payment events to the app"
    plan = [
        f"POST /v1/events/{{id}}/retry (webhook_endpoint={endpoint_id or 'all'}) for: " + ", ".join(ids),
        "then re-check the pending orders (next cell)",
    ]
    if not signature_accepted():
        entry = {
            "title": title,
            "plan": plan,
            "environment": context.environment(),
            "status": "blocked",
            "result": "the app still rejects a correctly signed event: fix STRIPE_WEBHOOK_SECRET first, then re-run",
        }
        findings.note_action(entry)
        print(f"Action: {title}\n  blocked: {entry['result']}")
        return entry

    def apply() -> str:
        table = resend(api, ids, endpoint_id)
        bad = table[~table["resent"]]
        if not bad.empty:
            findings.add(
                "P1",
                f"Resend failed for {len(bad)} events",
                "; ".join(f"{r.event}: {r.error}" for r in bad.itertuples()),
                check="stripe.resend",
            )
        return f"{int(table['resent'].sum())}/{len(table)} events resent"

    return action(title, plan, apply)


def recheck_orders(
    db: Database | None,
    stuck: pd.DataFrame,
    resent: dict[str, Any] | None,
    timeout_s: float = 15.0,
    interval_s: float = 0.5,
) -> pd.DataFrame:
    """The orders found stuck (missed webhook), read again after the resend.

    When the resend was applied, polls until none is pending or ``timeout_s`` passes and records
    the outcome; otherwise only shows their current status.
    """
    import pandas as pd

    ids = [] if stuck.empty else list(stuck.loc[stuck["diagnosis"] == "missed webhook", "order_id"])
    if not ids or db is None:
        print("No order was stuck with a missed webhook.")
        return pd.DataFrame(columns=["order_id", "status"])
    if not resent or resent.get("status") != "applied":
        print("Resend not applied: current status of the stuck orders (re-run this cell after applying).")
        return db.query(
            'SELECT "id" AS order_id, "status" FROM "Order" WHERE "id" = ANY(%s) ORDER BY "id"', (ids,)
        )
    deadline = time.monotonic() + timeout_s
    while True:
        now = db.query(
            'SELECT "id" AS order_id, "status" FROM "Order" WHERE "id" = ANY(%s) ORDER BY "id"', (ids,)
        )
        pending = now[now["status"] == "pending"]
        if pending.empty or time.monotonic() >= deadline:
            break
        time.sleep(interval_s)
    if pending.empty:
        findings.add("info", f"Re-check: all {len(ids)} stuck orders are now paid", check="stripe.recheck")
    else:
        findings.add(
            "P1",
            f"Re-check: {len(pending)} of {len(ids)} stuck orders still pending",
            ", ".join(pending["order_id"]),
            check="stripe.recheck",
        )
    return now
