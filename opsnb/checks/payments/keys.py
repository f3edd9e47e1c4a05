"""The Stripe key: its mode (test or live) and the API client built from it.

Keys, webhook endpoints and their signing secrets exist once per mode; the runbook's "Test vs Live keys
mismatch" is a key of one mode talking to objects of the other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import stripe

from opsnb.checks.findings import CouldNotLook, check, conclude
from opsnb.checks.secrets import Secret, scrub, secret

if TYPE_CHECKING:  # pandas stays a lazy import (kernel start time)
    import pandas as pd

MODES = ("test", "live")


def key_mode(key: Secret) -> str:
    """'test', 'live' or 'unknown' from a secret or restricted key's prefix (sk_test_, rk_live_, …)."""
    value = key.reveal().strip()
    for prefix in ("sk_", "rk_"):
        for mode in MODES:
            if value.startswith(f"{prefix}{mode}_"):
                return mode
    return "unknown"


def client(
    api_base: str, key_env: str, timeout_s: float = 20.0, max_network_retries: int = 1
) -> stripe.StripeClient:
    """A StripeClient on ``api_base`` with the key held by ``key_env``: its own key, base address and HTTP
    client, so nothing is set on the SDK's module-level globals."""
    return stripe.StripeClient(
        secret(key_env).reveal().strip(),
        base_addresses={"api": api_base.rstrip("/")},
        http_client=stripe.HTTPXClient(timeout=timeout_s, allow_sync_methods=True),
        max_network_retries=max_network_retries,
    )


def plain(obj: Any) -> dict[str, Any]:
    """A StripeObject (not a dict since SDK v16) as nested plain dicts."""
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def error_line(exc: Exception) -> str:
    """One scrubbed line for a Stripe error: its class and Stripe's message (never the key)."""
    message = (getattr(exc, "user_message", None) or str(exc) or "").strip()
    first = message.splitlines()[0] if message else ""
    return scrub(f"{type(exc).__name__}: {first}")


@check("payments.key-mode", hint="set the variable named by stripe_key_env to the Stripe key (sk_… or rk_…)")
def check_key_mode(stripe_key_env: str, expected_mode: str = "") -> pd.DataFrame:
    """Runbook "Payment intent fails", common issue 1: is the key of the mode this environment runs in?

    ``expected_mode`` is 'test' or 'live'; '' only reports the key's mode.
    """
    import pandas as pd

    if expected_mode not in ("", *MODES):
        raise CouldNotLook(f"stripe_mode must be 'test', 'live' or '', not {expected_mode!r}")
    mode = key_mode(secret(stripe_key_env))
    evidence = pd.DataFrame(
        [{"variable": stripe_key_env, "key_mode": mode, "expected": expected_mode or "-"}]
    )
    if mode == "unknown":
        return conclude(
            "warn",
            f"${stripe_key_env} holds neither a test nor a live Stripe key",
            severity="P2",
            detail="A Stripe secret key starts with sk_test_/sk_live_, a restricted key with rk_test_/rk_live_; "
            "the variable holds something else (a publishable key? a webhook secret?).",
            evidence=evidence,
        )
    if expected_mode and mode != expected_mode:
        return conclude(
            "fail",
            f"Test vs live mismatch: ${stripe_key_env} is a {mode}-mode key where {expected_mode} is expected",
            severity="P1",
            detail="Keys, webhook endpoints and their signing secrets exist per mode; all three must be of the "
            "same mode as the deployment.",
            evidence=evidence,
        )
    expected = " as expected" if expected_mode else " (no expected mode given)"
    return conclude("pass", f"${stripe_key_env} is a {mode}-mode key{expected}", evidence=evidence)
