"""The log time window: "since" or "the last N minutes" as UTC bounds, and a frame cut by its time column.

Every log reader and check turns its window into bounds here, so a naive time means UTC everywhere and a
window is always ``start <= timestamp < end``.
"""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

TIME_COLUMN = "timestamp"  # the time column of every log frame (opsnb.checks.logs.frame.COLUMNS)


def utc(
    value: str | _dt.datetime | _dt.timedelta | pd.Timestamp | None, now: pd.Timestamp | None = None
) -> pd.Timestamp | None:
    """``value`` as an aware UTC Timestamp: ISO text, datetime or Timestamp (naive means UTC), or a timedelta
    meaning that long before ``now`` (default: the current time). None, "" and NaT → None.

    Text that is not a time raises ValueError: a window silently left open would judge the wrong logs.
    """
    import pandas as pd

    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, _dt.timedelta):
        return (now if now is not None else pd.Timestamp.now(tz="UTC")) - pd.Timedelta(value)
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not a time (expected ISO 8601, e.g. 2025-03-01T10:00:00Z)") from None
    if pd.isna(ts):
        return None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def window_start(minutes: float, since: str = "", now: pd.Timestamp | None = None) -> pd.Timestamp:
    """Where a log window starts: ``since`` (ISO time, naive = UTC) when given, else ``minutes`` before now."""
    import pandas as pd

    start = utc(since)
    if start is not None:
        return start
    return (now if now is not None else pd.Timestamp.now(tz="UTC")) - pd.Timedelta(minutes=minutes)


def between(
    frame: pd.DataFrame, start: pd.Timestamp | None = None, end: pd.Timestamp | None = None
) -> pd.DataFrame:
    """The rows of ``frame`` with ``start <= timestamp < end`` (a None bound is open)."""
    keep = frame[TIME_COLUMN].notna()
    if start is not None:
        keep &= frame[TIME_COLUMN] >= start
    if end is not None:
        keep &= frame[TIME_COLUMN] < end
    return frame[keep.fillna(False).astype(bool)]


def utc_column(values: pd.Series) -> pd.Series:
    """A time column (datetimes, ISO text, Timestamps) as aware UTC datetimes; unreadable values → NaT."""
    import pandas as pd

    return pd.to_datetime(values, utc=True, errors="coerce", format="mixed")
