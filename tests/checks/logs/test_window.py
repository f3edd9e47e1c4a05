"""opsnb.checks.logs.window: time specs to UTC bounds, the window's start, and cutting a frame by its time column."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from opsnb.checks.logs.window import between, utc, utc_column, window_start

NOW = pd.Timestamp("2025-03-01 12:00", tz="UTC")


def test_utc_reads_every_spec_and_naive_means_utc():
    assert utc("2025-03-01T10:00:00") == pd.Timestamp("2025-03-01 10:00", tz="UTC")
    assert utc("2025-03-01T11:00:00+01:00") == pd.Timestamp("2025-03-01 10:00", tz="UTC")
    assert utc(dt.datetime(2025, 3, 1, 10, 0)) == pd.Timestamp("2025-03-01 10:00", tz="UTC")
    assert utc(dt.timedelta(minutes=30), now=NOW) == pd.Timestamp("2025-03-01 11:30", tz="UTC")
    assert str(utc("2025-03-01T10:00:00").tz) == "UTC"
    for nothing in (None, "", "   ", pd.NaT):
        assert utc(nothing) is None, nothing
    with pytest.raises(ValueError, match="'yesterday' is not a time"):
        utc("yesterday")  # never a silently open window


def test_window_start_since_wins_over_minutes():
    assert window_start(30, now=NOW) == pd.Timestamp("2025-03-01 11:30", tz="UTC")
    assert window_start(30, "2025-03-01T08:00:00", now=NOW) == pd.Timestamp("2025-03-01 08:00", tz="UTC")
    assert window_start(30, "", now=NOW) == window_start(30, "  ", now=NOW)
    assert pd.Timestamp.now(tz="UTC") - window_start(5) < pd.Timedelta(minutes=5, seconds=5)


def test_between_is_half_open_and_drops_rows_without_time():
    times = pd.to_datetime(["2025-03-01 10:00", "2025-03-01 10:30", "2025-03-01 11:00", None], utc=True)
    frame = pd.DataFrame({"timestamp": times, "k": [0, 1, 2, 3]})
    lo, hi = pd.Timestamp("2025-03-01 10:00", tz="UTC"), pd.Timestamp("2025-03-01 11:00", tz="UTC")
    assert between(frame, lo, hi)["k"].tolist() == [0, 1]
    assert between(frame, lo)["k"].tolist() == [0, 1, 2]
    assert between(frame, None, hi)["k"].tolist() == [0, 1]
    assert between(frame)["k"].tolist() == [0, 1, 2]


def test_utc_column_mixed_inputs():
    column = utc_column(pd.Series(["2025-03-01T10:00:00Z", "2025-03-01T11:00:00.123456+00:00", None, "nope"]))
    assert str(column.dtype).endswith("UTC]")
    assert column.iloc[0] == pd.Timestamp("2025-03-01 10:00", tz="UTC")
    assert column.iloc[1].microsecond == 123456
    assert column.iloc[2:].isna().all()
