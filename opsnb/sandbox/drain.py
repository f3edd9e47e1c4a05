"""Vercel log-drain NDJSON: one JSON object per line, one file per UTC hour.

Two kinds of files share the drain folder (the runbooks read the whole folder):

- `vercel-YYYYMMDDTHH-history.ndjson`: ~1 hour of deterministic synthetic traffic before `up`, written by
  `history()` with the trouble the enabled faults leave in real logs. Rewritten whenever a fault that shows
  in the logs is switched: same seed, so the same requests at the same times; only the outcomes change.
- `vercel-YYYYMMDDTHH.ndjson`: one line per live request, appended by the shop stand-in; never rewritten.
"""

from __future__ import annotations

import json
import os
import random
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

USER_AGENTS = [
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "UptimeRobot/2.0 (http://www.uptimerobot.com/)",
    "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
]
PUBLIC_HOST = "shop.example.com"
_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"


def checkout_error(rng: random.Random) -> str:
    """The bad deployment's checkout failure, as Next.js prints it (cart id varies per line)."""
    cart = "cart_" + "".join(rng.choices(_ALNUM, k=10))
    return (
        f"Checkout failed for {cart}: TypeError: Cannot read properties of undefined (reading 'price')\n"
        "    at computeTotal (/var/task/.next/server/app/api/checkout/route.js:1:2345)\n"
        "    at POST (/var/task/.next/server/app/api/checkout/route.js:1:3120)"
    )


def products_error(rng: random.Random) -> str:
    """The bad deployment's products failure (tenant and request vary per line)."""
    tenant = f"tenant_{rng.randint(1, 5)}"
    return (
        f"Error listing products for {tenant} (req {rng.randrange(16**8):08x}): "
        "TypeError: Cannot read properties of undefined (reading 'price')\n"
        "    at formatPrice (/var/task/.next/server/app/api/products/route.js:1:987)\n"
        "    at GET (/var/task/.next/server/app/api/products/route.js:1:1544)"
    )


CRASH_MESSAGE = "Error: Runtime exited with error: exit status 1\nRuntime.ExitError"


HISTORY_SUFFIX = "-history.ndjson"
LIVE_SUFFIX = ".ndjson"
BURST_PATHS = ("/api/checkout", "/api/products")


def _file_for(log_dir: Path, ts_ms: int, suffix: str = LIVE_SUFFIX) -> Path:
    stamp = datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y%m%dT%H")
    return log_dir / f"vercel-{stamp}{suffix}"


def history_files(log_dir: Path) -> list[Path]:
    """The synthetic history files of a drain folder (oldest hour first)."""
    return sorted(Path(log_dir).glob(f"vercel-*{HISTORY_SUFFIX}"))


def live_files(log_dir: Path) -> list[Path]:
    """The files the live app appends to (oldest hour first)."""
    return sorted(
        p for p in Path(log_dir).glob(f"vercel-*{LIVE_SUFFIX}") if not p.name.endswith(HISTORY_SUFFIX)
    )


def entry(
    *,
    rng: random.Random,
    ts_ms: int,
    deployment: dict,
    project_id: str,
    method: str,
    path: str,
    status: int,
    message: str = "",
    level: str | None = None,
    user_agent: str | None = None,
    source: str = "lambda",
) -> dict[str, Any]:
    """One log-drain record in Vercel's shape (statusCode -1 = the function crashed)."""
    request_id = f"iad1::{''.join(rng.choices(_ALNUM, k=5))}-{ts_ms}-{rng.randrange(16**12):012x}"
    if level is None:
        level = "error" if status >= 500 or status == -1 else ("warning" if status >= 400 else "info")
    return {
        "id": f"{ts_ms}{rng.randrange(10**12):012d}",
        "message": message,
        "timestamp": ts_ms,
        "type": "stderr" if level == "error" else "stdout",
        "source": source,
        "projectId": project_id,
        "deploymentId": deployment["uid"],
        "host": deployment["url"],
        "path": path,
        "statusCode": status,
        "requestId": request_id,
        "level": level,
        "environment": "production",
        "executionRegion": "iad1",
        "proxy": {
            "timestamp": ts_ms,
            "method": method,
            "scheme": "https",
            "host": PUBLIC_HOST,
            "path": path,
            "userAgent": [user_agent or rng.choice(USER_AGENTS[:3])],
            "referer": f"https://{PUBLIC_HOST}/",
            "statusCode": 502 if status == -1 else status,
            "clientIp": f"198.51.100.{rng.randint(2, 254)}",
            "region": "iad1",
            "vercelCache": "MISS",
        },
    }


def _by_file(log_dir: Path, records: list[dict], suffix: str) -> dict[Path, list[str]]:
    by_file: dict[Path, list[str]] = {}
    for rec in records:
        by_file.setdefault(_file_for(log_dir, rec["timestamp"], suffix), []).append(json.dumps(rec) + "\n")
    return by_file


def append(log_dir: Path, records: list[dict]) -> None:
    """Append live records to their hour files."""
    log_dir.mkdir(parents=True, exist_ok=True)
    for path, lines in _by_file(log_dir, records, LIVE_SUFFIX).items():
        with open(path, "a") as handle:
            handle.writelines(lines)


def write_history(log_dir: Path, records: list[dict]) -> list[Path]:
    """Replace the history files with `records` (each file swapped atomically; live files untouched)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path, lines in _by_file(log_dir, records, HISTORY_SUFFIX).items():
        tmp = path.with_name(f".{path.name}.tmp")  # hidden, not a log suffix: readers skip it
        tmp.write_text("".join(lines))
        os.replace(tmp, path)
        written.append(path)
    for stale in set(history_files(log_dir)) - set(written):
        stale.unlink(missing_ok=True)
    return sorted(written)


def _deployment_at(deployments: list[dict], ts_ms: int) -> dict:
    live = [d for d in deployments if d["created"] <= ts_ms]
    return max(live, key=lambda d: d["created"]) if live else min(deployments, key=lambda d: d["created"])


def history(
    log_dir: Path,
    *,
    now: float,
    project_id: str,
    deployments: list[dict],
    bad_deployment: str,
    faults: dict[str, bool],
    webhook_failures: list[int],
    minutes: int = 60,
) -> int:
    """(Re)write `minutes` of synthetic traffic ending at `now` with the trouble of `faults`; returns the
    number of records. The same arguments give the same requests (times, ids, paths) whatever the faults."""
    records = history_records(
        now=now,
        project_id=project_id,
        deployments=deployments,
        bad_deployment=bad_deployment,
        faults=faults,
        webhook_failures=webhook_failures,
        minutes=minutes,
    )
    write_history(log_dir, records)
    return len(records)


def history_records(
    *,
    now: float,
    project_id: str,
    deployments: list[dict],
    bad_deployment: str,
    faults: dict[str, bool],
    webhook_failures: list[int],
    minutes: int = 60,
) -> list[dict[str, Any]]:
    """The synthetic records `history()` writes, oldest first."""
    rng = random.Random(20_240_611)
    start_ms = int((now - minutes * 60) * 1000)
    end_ms = int(now * 1000)
    bad = next(d for d in deployments if d["uid"] == bad_deployment)
    records: list[dict] = []
    routes = [
        ("GET", "/api/products", 30),
        ("GET", "/api/auth/session", 25),
        ("GET", "/", 12),
        ("GET", "/products/prod_0042", 10),
        ("POST", "/api/checkout", 10),
        ("GET", "/api/auth/providers", 3),
        ("GET", "/api/orders", 5),
    ]
    weights = [w for _, _, w in routes]
    burst_errors = 0
    ts = start_ms
    while ts < end_ms:
        ts += rng.randint(1500, 6500)
        if ts >= end_ms:
            break
        dep = _deployment_at(deployments, ts)
        method, path, _ = rng.choices(routes, weights=weights)[0]
        status, message = (201 if path == "/api/checkout" else 200), ""
        if path == "/":
            status = 200
        # the bad deployment's failures are drawn whether or not the fault is on, so both histories
        # consume the same random numbers and hold the same requests; only the outcome differs
        if dep["uid"] == bad["uid"] and path in BURST_PATHS and rng.random() < 0.3:
            burst_errors += 1
            crashed = burst_errors % 9 == 4
            error = (
                CRASH_MESSAGE
                if crashed
                else (checkout_error(rng) if path == "/api/checkout" else products_error(rng))
            )
            if faults.get("500-burst"):
                status, message = (-1 if crashed else 500), error
        records.append(
            entry(
                rng=rng,
                ts_ms=ts,
                deployment=dep,
                project_id=project_id,
                method=method,
                path=path,
                status=status,
                message=message,
            )
        )
    # the uptime monitor, once a minute
    for minute in range(minutes):
        ts = start_ms + minute * 60_000 + 7_000
        records.append(
            entry(
                rng=rng,
                ts_ms=ts,
                deployment=_deployment_at(deployments, ts),
                project_id=project_id,
                method="GET",
                path="/api/health",
                status=200,
                user_agent=USER_AGENTS[3],
            )
        )
    # Stripe's failed webhook deliveries (stuck-orders fault)
    for ts_s in webhook_failures:
        ts = int(ts_s * 1000)
        if start_ms <= ts < end_ms:
            records.append(
                entry(
                    rng=rng,
                    ts_ms=ts,
                    deployment=_deployment_at(deployments, ts),
                    project_id=project_id,
                    method="POST",
                    path="/api/webhooks/stripe",
                    status=400,
                    user_agent=USER_AGENTS[4],
                    message="⚠️  Webhook signature verification failed. No signatures found matching the "
                    "expected signature for payload",
                )
            )
    if faults.get("nextauth-url"):
        for k in range(6):
            ts = start_ms + k * 9 * 60_000 + 95_000
            records.append(
                entry(
                    rng=rng,
                    ts_ms=ts,
                    deployment=_deployment_at(deployments, ts),
                    project_id=project_id,
                    method="GET",
                    path="/api/auth/callback/google",
                    status=302,
                    level="error",
                    message="[next-auth][error][OAUTH_CALLBACK_ERROR] \n"
                    "https://next-auth.js.org/errors#oauth_callback_error redirect_uri_mismatch "
                    "{ error: 'redirect_uri_mismatch', redirect_uri: 'http://localhost:3000/api/auth/callback/google' }",
                )
            )
    records.sort(key=lambda r: r["timestamp"])
    return records


def now_ms() -> int:
    """Current time in epoch milliseconds."""
    return int(time.time() * 1000)
