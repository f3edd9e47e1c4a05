"""opsnb.checks.triage.logs: reading the lookback of a real drain folder, and the triage.logs check."""

from __future__ import annotations

import json
import time

import pandas as pd

from opsnb.checks import findings
from opsnb.checks.triage import logs


def drain_line(age_s: float, status: int = 200) -> bytes:
    ms = int((time.time() - age_s) * 1000)
    return json.dumps({"id": f"r{ms}", "timestamp": ms, "statusCode": status, "path": "/api/x"}).encode()


def test_lookback_read_with_garbage_counted(tmp_path):
    (tmp_path / "vercel-a.ndjson").write_bytes(
        b"\n".join([drain_line(7200), drain_line(600), drain_line(60, 500), b"\xff\xfe binary", b'{"cut'])
        + b"\n"
    )
    read = logs.read_window(str(tmp_path), lookback_minutes=60)
    assert read.error == "" and len(read.frame) == 2, "the 2-hour-old line is outside the lookback"
    summary = logs.check_logs(read, 60)
    [c] = findings.all_conclusions()
    assert (c.check, c.status) == ("triage.logs", "pass")
    assert c.title == "2 log lines read from the last 60 min, 2 garbage lines skipped"
    assert "binary 1, invalid JSON 1" in c.detail and "samples: " in c.detail
    assert summary.loc[0, "rows"] == 2 and summary.loc[0, "garbage"] == 2


def test_missing_source_is_inconclusive_not_a_crash(tmp_path):
    read = logs.read_window(str(tmp_path / "nope"))
    assert read.error.startswith("FileNotFoundError") and read.frame.empty
    assert logs.check_logs(read) is None
    [c] = findings.all_conclusions()
    assert (
        c.status == "inconclusive"
        and c.essential
        and "does not exist" in c.detail
        and "log_source" in c.detail
    )


def test_bad_source_names_and_empty_logs_are_inconclusive(tmp_path):
    for source in ("https://example.com/logs", "vercel://shop", ""):
        read = logs.read_window(source)
        assert read.error and read.frame.empty, source
    (tmp_path / "old.ndjson").write_bytes(drain_line(86_400) + b"\n")
    logs.check_logs(logs.read_window(str(tmp_path), 60), 60)
    [c] = findings.all_conclusions()
    assert c.status == "inconclusive" and "no log line in the last 60 min" in c.detail
    assert findings.verdict() == "WARN"


def test_the_frame_is_the_drain_readers(tmp_path):
    (tmp_path / "a.ndjson").write_bytes(drain_line(30) + b"\n")
    frame = logs.read_window(str(tmp_path)).frame
    assert str(frame["timestamp"].dtype) == "datetime64[ms, UTC]"
    assert pd.Timestamp.now(tz="UTC") - frame.loc[0, "timestamp"] < pd.Timedelta(minutes=1)
