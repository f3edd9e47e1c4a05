"""Error signatures: which log rows are errors, and their messages folded into groups (what Sentry would group).

A signature is a message's first line with ids, uuids, e-mail addresses, hex and numbers replaced, so that
"Checkout failed for cart_3k2j4h5g6f" and "… cart_zzzzqqqqyy" are one error. The rules are written once and
used both by Python's ``re`` (one message) and by pyarrow's RE2 (a whole column at once).

Check ``triage.top-signatures``: the most frequent signature in the judged window. P2 while the alert rule did
not fire (errors below the "High Error Rate" threshold still are errors); a pass naming it when the P1 alert
already fired (it explains that alert rather than adding a problem).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from opsnb.checks import findings

if TYPE_CHECKING:
    import pandas as pd

    from opsnb.checks.triage.error_rate import Judged

# Applied in order; each pattern must mean the same to Python's re and to RE2 (pyarrow).
SIGNATURE_RULES: list[tuple[str, str]] = [
    (r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", "<uuid>"),
    (r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+\.[A-Za-z0-9.-]+", "<email>"),
    (r"\b([A-Za-z]{1,12}_)[A-Za-z0-9]{8,}\b", r"\1<id>"),  # cart_3k2j4h5g6f, dpl_…, ord_…
    (r"\b([A-Za-z]{1,12}_)[A-Za-z]*[0-9][A-Za-z0-9]*\b", r"\1<id>"),  # tenant_3, usr_000001
    (r"\b(0x)?[0-9a-fA-F]{8,}\b", "<hex>"),
    (r"[0-9]+", "<n>"),
]
SIGNATURE_CHARS = 200
_PY_RULES = [(re.compile(pattern), repl) for pattern, repl in SIGNATURE_RULES]
TOP_COLUMNS = [
    "signature",
    "path",
    "statusCode",
    "count",
    "first_seen",
    "last_seen",
    "deployments",
    "example",
]


def signature(message: str | None) -> str:
    """A message's first line with ids, uuids, hex and numbers folded (the grouping key for errors)."""
    first = (message or "").split("\n", 1)[0].strip()
    for pattern, repl in _PY_RULES:
        first = pattern.sub(repl, first)
    return first[:SIGNATURE_CHARS] or "(no message)"


def signatures(messages: pd.Series) -> pd.Series:
    """:func:`signature` over a Series of messages, vectorized with pyarrow compute (same rules, same index)."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = pa.array(messages.astype("str") if len(messages) else [], type=pa.string(), from_pandas=True)
    arr = pc.fill_null(arr, "")
    first = pc.list_element(pc.split_pattern(arr, "\n", max_splits=1), 0)
    first = pc.utf8_trim_whitespace(first)
    for pattern, repl in SIGNATURE_RULES:
        first = pc.replace_substring_regex(first, pattern=pattern, replacement=repl)
    first = pc.utf8_slice_codeunits(first, 0, SIGNATURE_CHARS)
    first = pc.if_else(pc.equal(first, ""), "(no message)", first)
    return pd.Series(
        first.to_numpy(zero_copy_only=False), index=messages.index, name="signature", dtype="str"
    )


def is_error(frame: pd.DataFrame) -> pd.Series:
    """Boolean Series: 5xx responses and crashed functions (statusCode -1)."""
    status = frame["statusCode"]
    return ((status >= 500) | (status == -1)).fillna(False).astype(bool)


def errors_only(frame: pd.DataFrame) -> pd.DataFrame:
    """The error rows (5xx or crashed) of a log frame."""
    return frame[is_error(frame)]


def top_signatures(frame: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """Error rows grouped by signature, path and status: count, first/last seen, deployments, an example.

    Most frequent first, at most ``n`` rows (n <= 0: all).
    """
    import pandas as pd

    errs = errors_only(frame)
    if not len(errs):
        return pd.DataFrame(columns=TOP_COLUMNS)
    errs = errs.assign(signature=signatures(errs["message"]), path=errs["path"].fillna("(none)"))
    grouped = errs.groupby(["signature", "path", "statusCode"], sort=False, dropna=False)
    out = grouped.agg(
        count=("timestamp", "size"),
        first_seen=("timestamp", "min"),
        last_seen=("timestamp", "max"),
        deployments=("deploymentId", lambda s: ", ".join(sorted(s.dropna().unique().astype(str))[:3])),
        example=("message", "first"),
    ).reset_index()
    out["example"] = out["example"].fillna("").astype(str).str.slice(0, 300)
    out = out.sort_values(["count", "last_seen"], ascending=[False, False]).reset_index(drop=True)
    return out[TOP_COLUMNS].head(n) if n > 0 else out[TOP_COLUMNS]


def summarize_5xx(frame: pd.DataFrame) -> pd.DataFrame:
    """Every error group (signature, path, status → count, first/last seen), most frequent first, without the
    example and deployments of :func:`top_signatures`: the lean form bench/log_triage.py times against jq."""
    import pandas as pd

    errs = errors_only(frame)
    if not len(errs):
        return pd.DataFrame(columns=["signature", "path", "statusCode", "count", "first_seen", "last_seen"])
    keyed = pd.DataFrame(
        {
            "signature": signatures(errs["message"]),
            "path": errs["path"],
            "statusCode": errs["statusCode"],
            "timestamp": errs["timestamp"],
        }
    )
    out = (
        keyed.groupby(["signature", "path", "statusCode"], sort=False, dropna=False)["timestamp"]
        .agg(count="size", first_seen="min", last_seen="max")
        .reset_index()
    )
    return out.sort_values("count", ascending=False, kind="stable").reset_index(drop=True)


def describe_top(row: pd.Series) -> str:
    """One line naming a ``top_signatures`` row: signature, path, status, count."""
    return f"{row['signature']} on {row['path']} ({row['count']}×, HTTP {row['statusCode']})"


@findings.check(
    "triage.top-signatures",
    essential=False,  # the blind spot (no logs) is already triage.logs' and triage.error-rate's
    hint="make log_source readable (see triage.logs)",
)
def check_top_signatures(judged: Judged) -> pd.DataFrame:
    """The most frequent error signatures in the judged window (at most 10 rows)."""
    judged.require_requests()
    top = judged.top
    if not len(top):
        return findings.conclude(
            "pass",
            "No 5xx errors in the judged window",
            detail=f"{judged.rule.requests} requests {judged.window.text()}",
            evidence=top,
        )
    first = top.iloc[0]
    detail = (
        f"{describe_top(first)}, {first['first_seen']:%H:%M:%S}–{first['last_seen']:%H:%M:%S} UTC, "
        f"deployments {first['deployments'] or 'unknown'}; {len(top)} signature(s) {judged.window.text()}"
    )
    if judged.rule.fired:  # the P1 alert already stands for these errors: this names them
        return findings.conclude(
            "pass", f"Top error signature: {first['signature']}", detail=detail, evidence=top
        )
    return findings.conclude(
        "warn",
        f"{int(top['count'].sum())} errors under the alert rule; top signature: {first['signature']}",
        severity="P2",
        detail=detail,
        evidence=top,
    )
