"""opsnb.checks.logs.frame: the log frame's dtypes, the garbage counter, and what a read found."""

from __future__ import annotations

import pandas as pd

from opsnb.checks.logs.frame import COLUMNS, SAMPLES, Garbage, LogRead, as_int, as_text, log_frame


def test_log_frame_dtypes_order_and_rows_without_time():
    rows = [
        {"timestamp": "2025-03-01T10:00:02Z", "statusCode": 500, "message": "late"},
        {"timestamp": pd.Timestamp("2025-03-01 10:00:01", tz="UTC"), "statusCode": None, "message": "early"},
        {"timestamp": None, "statusCode": 200, "message": "no time"},
    ]
    frame = log_frame(rows)
    assert list(frame.columns) == COLUMNS
    assert (
        str(frame["timestamp"].dtype) == "datetime64[ms, UTC]" and str(frame["statusCode"].dtype) == "Int64"
    )
    assert frame["message"].tolist() == ["early", "late"], "oldest first, the row without a time dropped"
    assert pd.isna(frame.loc[0, "statusCode"]) and frame.loc[1, "statusCode"] == 500
    counted = log_frame([{"timestamp": "2025-03-01T10:00:00Z", "count": "7"}], extra=("count",))
    assert list(counted.columns) == [*COLUMNS, "count"] and str(counted["count"].dtype) == "Int64"
    assert list(log_frame([]).columns) == COLUMNS


def test_garbage_counts_kinds_keeps_few_samples_and_merges():
    one, two = Garbage(), Garbage()
    for k in range(SAMPLES + 2):
        one.add("binary", b"\xff" * (200 if k == 0 else 3))
    two.add("empty", b"")
    one.merge(two)
    assert one.count == SAMPLES + 3 and one.kinds == {"binary": SAMPLES + 2, "empty": 1}
    assert len(one.samples) == SAMPLES and one.samples[0].endswith("…")


def test_unreadable_read_says_why_and_summarizes():
    read = LogRead.unreadable("FileNotFoundError: log source /nope does not exist")
    assert (
        read.error.startswith("FileNotFoundError")
        and len(read.frame) == 0
        and list(read.frame.columns) == COLUMNS
    )
    [row] = read.summary().to_dict(orient="records")
    assert row["rows"] == 0 and row["error"] == read.error and row["first"] is None


def test_lenient_values():
    values = (3, "42", "4.0", 2.9, True, None, "x", [1])
    assert [as_int(v) for v in values] == [3, 42, 4, 2] + [None] * 4
    assert (
        as_text({"a": 1}) == '{"a": 1}'
        and as_text(5) == "5"
        and as_text(None) is None
        and as_text("s") == "s"
    )
