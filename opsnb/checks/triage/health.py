"""Is the site up: the health endpoint, and the routes users reported, probed several times.

Runbook P0 checklist 2 (`curl -I https://your-domain.com/api/health`), as GET probes in rounds: status,
latency and the start of the body. The probes also land in the logs read afterwards.

Checks:
- ``triage.health``: /api/health non-200 in any round → P0 (runbook "Alert: Site Down … returns non-200").
- ``triage.routes``: another probed URL non-200 in any round → P1 (a core feature broken: partial outage);
  inconclusive (not essential) when no other URL is given.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from opsnb.checks import findings

if TYPE_CHECKING:
    import pandas as pd

HEALTH_PATH = "/api/health"
BODY_SHOWN = 160  # characters of each response body kept in the table


def probe_rounds(
    urls: Sequence[str], rounds: int = 3, pause_s: float = 0.5, timeout_s: float = 10.0
) -> pd.DataFrame:
    """GET every URL ``rounds`` times (``pause_s`` between rounds); one row per probe: round, url, status,
    latency_ms, ok (200), error, body. Never raises on network errors: they are rows."""
    import pandas as pd

    from opsnb.checks.http import Prober

    rows = []
    with Prober(timeout_s=timeout_s) as prober:
        for k in range(max(1, rounds)):
            if k:
                time.sleep(pause_s)
            for url in urls:
                p = prober.probe(url)
                rows.append(
                    {
                        "round": k + 1,
                        "url": url,
                        "status": p.status,
                        "latency_ms": p.latency_ms,
                        "ok": p.ok,
                        "error": p.error,
                        "body": p.body[:BODY_SHOWN],
                    }
                )
    return pd.DataFrame(rows, columns=["round", "url", "status", "latency_ms", "ok", "error", "body"])


def _statuses(probes: pd.DataFrame) -> str:
    """'200, 500, no answer' for the probes of one URL."""
    return ", ".join("no answer" if s is None or s != s else str(int(s)) for s in probes["status"])


def _short(url: str, base: str) -> str:
    """A URL under the app as its path; other URLs whole."""
    return url.removeprefix(base) if url.startswith(base + "/") else url


def _why(bad: pd.DataFrame) -> str:
    """The first failing probe's error, or the start of its body."""
    first = bad.iloc[0]
    return first["error"] or (first["body"] or "")[:120] or "empty body"


@findings.check("triage.health")
def check_health(
    app_url: str,
    rounds: int = 3,
    pause_s: float = 0.5,
    health_path: str = HEALTH_PATH,
    timeout_s: float = 10.0,
) -> pd.DataFrame:
    """Probe ``{app_url}/api/health`` ``rounds`` times: any answer other than 200 (or none) → P0, site down."""
    url = app_url.rstrip("/") + health_path
    probes = probe_rounds([url], rounds, pause_s, timeout_s)
    bad = probes[~probes["ok"]]
    if len(bad):
        return findings.conclude(
            "fail",
            f"{health_path} is not 200: {len(bad)} of {len(probes)} probes failed",
            severity="P0",
            detail=f"{url}: status {_statuses(probes)}; {_why(bad)}",
            evidence=probes,
        )
    return findings.conclude(
        "pass",
        f"{health_path} answers 200",
        detail=f"{url}: {len(probes)} probes, median {probes['latency_ms'].median():.0f} ms",
        evidence=probes,
    )


@findings.check(
    "triage.routes",
    essential=False,  # optional: the routes users reported, when there are any
    hint="list the routes users report failing in extra_urls (GET only, e.g. /api/products)",
)
def check_routes(
    app_url: str, urls: Sequence[str], rounds: int = 3, pause_s: float = 0.5, timeout_s: float = 10.0
) -> pd.DataFrame:
    """Probe ``urls`` (absolute, or paths under ``app_url``) ``rounds`` times: any failing → P1, partial outage.

    One conclusion for all of them; the evidence lists every probe."""
    if not urls:
        raise findings.CouldNotLook("no route to probe besides the health endpoint (extra_urls is empty)")
    base = app_url.rstrip("/")
    absolute = [u if "://" in u else base + "/" + u.lstrip("/") for u in urls]
    probes = probe_rounds(absolute, rounds, pause_s, timeout_s)
    failing: dict[str, str] = {}  # route → what its probes got
    for url in absolute:
        mine = probes[probes["url"] == url]
        bad = mine[~mine["ok"]]
        if len(bad):
            failing[_short(url, base)] = (
                f"{len(bad)} of {len(mine)} probes not 200 (status {_statuses(mine)}; {_why(bad)})"
            )
    shown = ", ".join(_short(u, base) for u in absolute)
    if failing:
        return findings.conclude(
            "fail",
            f"Partial outage: {', '.join(failing)} {'fails' if len(failing) == 1 else 'fail'}",
            severity="P1",
            detail="; ".join(f"{route}: {what}" for route, what in failing.items()),
            evidence=probes,
        )
    return findings.conclude(
        "pass",
        f"Every probed route answers 200 ({shown})",
        detail=f"{len(probes)} probes, median {probes['latency_ms'].median():.0f} ms",
        evidence=probes,
    )
