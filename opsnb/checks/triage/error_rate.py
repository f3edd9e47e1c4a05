"""Error rate per minute, the runbook's "High Error Rate" alert rule, and where the errors started.

:func:`judge` takes the log window and what changed (opsnb.checks.triage.deploys) and works out, without
recording anything, the judged window, the per-minute error rate, the alert rule's result, when the errors
started and which deployment was live then; the checks of this package conclude on that :class:`Judged`.

The judged window is the last ``window_minutes``, but never before the live deployment went live (or
``since``): errors of a deployment that no longer serves are history, mentioned but not judged.

Check ``triage.error-rate``: the runbook's "Alert: High Error Rate" — error rate (5xx and crashed functions)
> 5 % for 5 minutes → P1 (partial outage), naming the onset, the deployment live then and the top signature.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from opsnb.checks import findings
from opsnb.checks.logs.window import between, utc
from opsnb.checks.triage.signatures import describe_top, errors_only, is_error, top_signatures

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from opsnb.checks.clients.vercel import Deployment
    from opsnb.checks.logs.frame import LogRead
    from opsnb.checks.triage.deploys import Changes

ALERT_RATE = 0.05  # runbook "Alert: High Error Rate": error rate > 5 % …
ALERT_MINUTES = 5  # … for 5 minutes
MIN_REQUESTS = 20  # a 5-minute window with fewer requests is too small to judge a rate
NO_REQUESTS_HINT = (
    "check that the log drain delivers to log_source (this run's own health probes should be in it), "
    "or widen window_minutes"
)


# --- the rate and the rule (pure) ------------------------------------------------------------------------------
def requests_of(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per request: lines with a status, collapsed by requestId (an error line wins)."""
    import pandas as pd

    reqs = frame[frame["statusCode"].notna()]
    if not len(reqs):
        return reqs
    reqs = reqs.assign(_err=is_error(reqs))
    has_id = reqs["requestId"].notna()
    with_id = reqs[has_id].sort_values("_err", ascending=False, kind="stable").drop_duplicates("requestId")
    out = pd.concat([with_id, reqs[~has_id]]).sort_values("timestamp", kind="stable")
    return out.drop(columns="_err")


def error_rate(
    frame: pd.DataFrame,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    freq: str = "1min",
) -> pd.DataFrame:
    """Requests, errors and error rate per minute (empty minutes included between ``start`` and ``end``)."""
    import pandas as pd

    reqs = requests_of(frame)
    err = is_error(reqs).to_numpy(dtype="int64") if len(reqs) else []
    counts = pd.DataFrame({"requests": 1, "errors": err}, index=pd.DatetimeIndex(reqs["timestamp"]))
    per = counts.resample(freq).sum() if len(counts) else pd.DataFrame(columns=["requests", "errors"])
    if start is not None or end is not None:
        lo = pd.Timestamp(start).floor(freq) if start is not None else (per.index.min() if len(per) else None)
        hi = pd.Timestamp(end).floor(freq) if end is not None else (per.index.max() if len(per) else None)
        if lo is not None and hi is not None and lo <= hi:
            full = pd.date_range(lo, hi, freq=freq, tz="UTC", name="minute")
            per = per.reindex(full, fill_value=0)
    per.index.name = "minute"
    per = per.astype({"requests": "int64", "errors": "int64"})
    per["rate"] = (per["errors"] / per["requests"].where(per["requests"] > 0)).fillna(0.0)
    return per


@dataclass(frozen=True)
class RateWindow:
    """A span of minutes with its requests, errors and error rate."""

    start: pd.Timestamp
    end: pd.Timestamp
    requests: int
    errors: int
    rate: float


@dataclass
class AlertRule:
    """The runbook's "High Error Rate" rule evaluated over a span of minutes."""

    fired: bool
    threshold: float
    minutes: int
    windows_judged: int  # windows of ``minutes`` with at least min_requests requests
    first_breach: pd.Timestamp | None = None  # start of the first breaching window (UTC)
    last_breach: pd.Timestamp | None = None  # end of the last breaching window
    worst: RateWindow | None = None  # the judged window with the highest rate
    requests: int = 0
    errors: int = 0
    min_requests: int = MIN_REQUESTS  # windows with fewer requests are not judged

    @property
    def rate(self) -> float:
        """Overall error rate over the evaluated span."""
        return self.errors / self.requests if self.requests else 0.0


def alert_rule(
    per_minute: pd.DataFrame,
    threshold: float = ALERT_RATE,
    minutes: int = ALERT_MINUTES,
    min_requests: int = MIN_REQUESTS,
) -> AlertRule:
    """Error rate > ``threshold`` over any ``minutes`` consecutive minutes (windows with fewer than
    ``min_requests`` requests are not judged). ``per_minute`` comes from :func:`error_rate`."""
    total_req = int(per_minute["requests"].sum()) if len(per_minute) else 0
    total_err = int(per_minute["errors"].sum()) if len(per_minute) else 0
    result = AlertRule(
        False, threshold, minutes, 0, requests=total_req, errors=total_err, min_requests=min_requests
    )
    if not len(per_minute):
        return result
    step = per_minute.index[1] - per_minute.index[0] if len(per_minute) > 1 else _dt.timedelta(minutes=1)
    req = per_minute["requests"].rolling(minutes, min_periods=1).sum()
    err = per_minute["errors"].rolling(minutes, min_periods=1).sum()
    if len(per_minute) >= minutes:  # full windows only, once there are enough minutes
        req, err = req.iloc[minutes - 1 :], err.iloc[minutes - 1 :]
    judged = req >= min_requests
    rate = (err / req.where(req > 0)).fillna(0.0)
    breach = judged & (rate > threshold)
    result.windows_judged = int(judged.sum())
    if judged.any():
        worst_end = rate[judged].idxmax()
        result.worst = RateWindow(
            start=worst_end - step * (minutes - 1),
            end=worst_end + step,
            requests=int(req[worst_end]),
            errors=int(err[worst_end]),
            rate=float(rate[worst_end]),
        )
    if breach.any():
        ends = breach[breach].index
        result.fired = True
        result.first_breach = ends[0] - step * (minutes - 1)
        result.last_breach = ends[-1] + step
    return result


def onset(frame: pd.DataFrame, rule: AlertRule) -> pd.Timestamp | None:
    """When the errors started: the first error line at or after the first breaching window's start
    (or the first error at all when the rule did not fire); None without errors."""
    errs = errors_only(frame)
    if not len(errs):
        return None
    if rule.fired and rule.first_breach is not None:
        after = errs[errs["timestamp"] >= rule.first_breach]
        if len(after):
            return after["timestamp"].iloc[0]
    return errs["timestamp"].iloc[0]


# --- the judged window -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Window:
    """The judged window [start, end) and why it starts where it does."""

    start: pd.Timestamp
    end: pd.Timestamp
    why: str

    def text(self) -> str:
        """'10:02–10:32 UTC (last 30 min)'."""
        return f"{self.start:%H:%M}–{self.end:%H:%M} UTC ({self.why})"


@dataclass(frozen=True)
class EarlierErrors:
    """Errors in the lookback before the judged window (history: a deployment that no longer serves)."""

    errors: int
    first: pd.Timestamp
    last: pd.Timestamp
    deployments: str  # the (up to 3) deployments they came from, most errors first

    def text(self) -> str:
        """One line for a conclusion's detail."""
        return (
            f"{self.errors} earlier error{'s' if self.errors != 1 else ''} outside the judged window, "
            f"{self.first:%H:%M}–{self.last:%H:%M} UTC "
            f"on {self.deployments or 'an unknown deployment'} (history, not judged)"
        )


@dataclass
class Judged:
    """The log-based picture: judged window, per-minute rate, the alert rule and where errors came from."""

    logs: LogRead  # the lookback read by opsnb.checks.triage.logs.read_window
    window: Window
    per_minute: pd.DataFrame  # error_rate over the whole lookback (for the plot)
    rule: AlertRule  # over the judged window
    top: pd.DataFrame  # top_signatures over the judged window
    onset: pd.Timestamp | None = None
    started_by: Deployment | None = None  # the deployment live when the errors started
    earlier: EarlierErrors | None = None

    def rows(self) -> pd.DataFrame:
        """Log rows inside the judged window."""
        return between(self.logs.frame, self.window.start, self.window.end)

    def require_requests(self) -> None:
        """Raise CouldNotLook when there is nothing to judge: the logs were unreadable, or the judged window
        holds no request at all (a quiet log is not a healthy one when the drain may not deliver)."""
        if self.logs.error:
            raise findings.CouldNotLook(
                f"the logs could not be read: {self.logs.error}", "make log_source readable (see triage.logs)"
            )
        if not self.rule.requests:
            raise findings.CouldNotLook(f"no request logged {self.window.text()}", NO_REQUESTS_HINT)

    def rate_table(self) -> pd.DataFrame:
        """A one-row table of the judged window's numbers."""
        import pandas as pd

        rule = self.rule
        return pd.DataFrame(
            [
                {
                    "window": f"{self.window.start:%H:%M}–{self.window.end:%H:%M} UTC",
                    "why": self.window.why,
                    "requests": rule.requests,
                    "errors": rule.errors,
                    "error_rate_%": round(100 * rule.rate, 2),
                    "alert_rule_fired": rule.fired,
                    f"worst_{rule.minutes}min_%": round(100 * rule.worst.rate, 2) if rule.worst else None,
                    "onset": self.onset,
                    "started_by": self.started_by.uid if self.started_by else None,
                }
            ]
        )


def judged_window(changes: Changes, window_minutes: int, since: str, now: pd.Timestamp) -> Window:
    """The last ``window_minutes``, moved forward to when the live deployment went live or to ``since``
    (whichever is latest)."""
    import pandas as pd

    starts = [(now - pd.Timedelta(minutes=window_minutes), f"last {window_minutes} min")]
    live = changes.live
    if live is not None and live.since is not None:
        starts.append((live.since, f"since {live.uid} went live ({live.how})"))
    if (start := utc(since)) is not None:
        starts.append((start, f"since {since}"))
    start, why = max(starts, key=lambda s: s[0])
    return Window(start, now, why)


def earlier_errors(frame: pd.DataFrame, start: pd.Timestamp) -> EarlierErrors | None:
    """The errors logged before ``start`` (None when there are none)."""
    before = errors_only(between(frame, None, start))
    if not len(before):
        return None
    deployments = ", ".join(before["deploymentId"].dropna().value_counts().index[:3])
    return EarlierErrors(len(before), before["timestamp"].min(), before["timestamp"].max(), deployments)


def judge(
    logs: LogRead,
    changes: Changes,
    *,
    window_minutes: int = 30,
    since: str = "",
    threshold: float = ALERT_RATE,
    alert_minutes: int = ALERT_MINUTES,
    min_requests: int = MIN_REQUESTS,
    now: pd.Timestamp | None = None,
) -> Judged:
    """Judge the log window by the runbook's alert rule and attribute the errors to a deployment (records
    nothing: the checks conclude on the result)."""
    import pandas as pd

    from opsnb.checks.clients.vercel import Deployment, deployment_at

    now = utc(now) if now is not None else pd.Timestamp.now(tz="UTC")
    frame = logs.frame
    window = judged_window(changes, window_minutes, since, now)
    rows = between(frame, window.start, window.end)
    lookback_start = frame["timestamp"].min() if len(frame) else window.start
    per_minute = error_rate(frame, start=min(lookback_start, window.start), end=now)
    rule = alert_rule(error_rate(rows, start=window.start, end=now), threshold, alert_minutes, min_requests)
    judged = Judged(logs, window, per_minute, rule, top_signatures(rows, n=10))
    judged.earlier = earlier_errors(frame, window.start)
    judged.onset = onset(rows, rule)
    if judged.onset is not None:
        judged.started_by = deployment_at(changes.deployments, judged.onset)
        if judged.started_by is None:  # deployments unknown: the deployment the errors were logged on
            logged_on = errors_only(rows)["deploymentId"].dropna().value_counts()
            judged.started_by = Deployment(str(logged_on.index[0])) if len(logged_on) else None
    return judged


# --- the check ---------------------------------------------------------------------------------------------
def _attribution(judged: Judged) -> str:
    """'errors started 10:04:12 UTC, right after deployment dpl_x (message, created 10:03 UTC)'."""
    text = f"errors started {judged.onset:%H:%M:%S} UTC"
    dep = judged.started_by
    if dep is None:
        return text + " (deployment unknown)"
    text += f", right after deployment {dep.uid}"
    if dep.created is not None:
        text += f" ({dep.message or 'no commit message'}, created {dep.created:%H:%M} UTC)"
    return text


@findings.check("triage.error-rate", hint="make log_source readable (see triage.logs)")
def check_error_rate(judged: Judged) -> pd.DataFrame:
    """The runbook's "High Error Rate" rule over the judged window: > 5 % for 5 minutes → P1."""
    judged.require_requests()
    rule = judged.rule
    earlier = f"; {judged.earlier.text()}" if judged.earlier else ""
    totals = (
        f"{rule.errors} errors in {rule.requests} requests ({100 * rule.rate:.2f} %) {judged.window.text()}"
    )
    evidence = judged.rate_table()
    if rule.fired and rule.worst is not None:
        worst = rule.worst
        top = f"; top signature: {describe_top(judged.top.iloc[0])}" if len(judged.top) else ""
        return findings.conclude(
            "fail",
            f"Error rate {100 * worst.rate:.1f} % over {rule.minutes} minutes, "
            f"above the {100 * rule.threshold:.0f} % alert rule",
            severity="P1",
            detail=f"{_attribution(judged)}; worst window {worst.start:%H:%M}–{worst.end:%H:%M}: "
            f"{worst.errors}/{worst.requests} requests{top}; {totals}{earlier}",
            evidence=evidence,
        )
    if rule.windows_judged == 0:
        return findings.conclude(
            "pass",
            "Too little traffic to apply the alert rule",
            detail=f"{totals}; no {rule.minutes}-minute window with ≥ {rule.min_requests} requests{earlier}",
            evidence=evidence,
        )
    worst_rate = 100 * rule.worst.rate if rule.worst else 0.0
    return findings.conclude(
        "pass",
        f"Error rate stays under the alert rule ({100 * rule.threshold:.0f} % for {rule.minutes} minutes)",
        detail=f"{totals}; worst {rule.minutes}-minute window {worst_rate:.2f} %{earlier}",
        evidence=evidence,
    )


# --- the plot ----------------------------------------------------------------------------------------------
def plot_error_rate(judged: Judged, changes: Changes) -> Figure:
    """Error rate per minute (bars) with requests (line), the alert threshold, deployment markers and the
    judged window shaded."""
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    from opsnb.checks.plots import finish

    def naive(ts: pd.Timestamp) -> pd.Timestamp:  # matplotlib's date axis wants naive UTC
        return ts.tz_convert("UTC").tz_localize(None)

    per = judged.per_minute
    fig, ax = plt.subplots(figsize=(10, 3.6))
    if len(per):
        x = per.index.tz_convert("UTC").tz_localize(None)
        ax.bar(
            x, 100 * per["rate"], width=1 / 1440 * 0.9, align="edge", color="#c0392b", label="error rate %"
        )
        requests = ax.twinx()
        requests.plot(x, per["requests"], color="#7f8c8d", lw=1, label="requests/min")
        requests.set_ylabel("requests / min")
        threshold = 100 * judged.rule.threshold
        ax.axhline(threshold, color="#e67e22", ls="--", lw=1, label=f"alert {threshold:.0f} %")
        ax.axvspan(
            naive(judged.window.start),
            naive(judged.window.end),
            color="#3498db",
            alpha=0.08,
            label="judged window",
        )
        live_uid = changes.live.uid if changes.live else None
        for dep in changes.deployments.dropna(subset=["created"]).itertuples():
            at = naive(dep.created)
            if x.min() <= at <= x.max():
                live = dep.uid == live_uid
                ax.axvline(at, color="#2c3e50", lw=1.2 if live else 0.8, ls="-" if live else ":")
                label = f" {dep.uid[:12]}{' (live)' if live else ''}\n {dep.message[:28]}"
                ax.text(at, ax.get_ylim()[1] * 0.95, label, fontsize=7, va="top")
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
        requests.yaxis.set_major_locator(MaxNLocator(integer=True))  # requests are counted, not measured
    # the legend goes outside the data (it hid a deployment label) and lists the requests line too
    return finish(
        fig,
        ax,
        title="Error rate per minute, deployments marked",
        xlabel="UTC",
        ylabel="error rate % (5xx + crashed)",
    )
