"""opsnb.checks.logs.reader.read_logs: Vercel log-drain NDJSON files, .gz, folders, garbage lines, time filters."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path

import pytest

from opsnb.checks.findings import could_not_look
from opsnb.checks.logs import COLUMNS, read_logs, reader
from opsnb.checks.logs.reader import LogSourceError

T0 = 1_700_000_000_000  # ms


def rec(k: int, status: int = 200, **extra) -> dict:
    base = {
        "id": f"id{k}",
        "deploymentId": "dpl_a",
        "source": "lambda",
        "host": "shop-abc.vercel.app",
        "timestamp": T0 + k * 1000,
        "projectId": "prj_x",
        "level": "error" if status >= 500 else "info",
        "message": f"line {k}",
        "statusCode": status,
        "requestId": f"req{k}",
        "path": "/api/products",
        "proxy": {
            "statusCode": status,
            "path": "/api/products",
            "method": "GET",
            "clientIp": "198.51.100.7",
            "userAgent": ["x"],
            "region": "iad1",
            "extra": {"nested": True},
        },
    }
    base.update(extra)
    return base


def write_lines(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


def dumps(r: dict) -> bytes:
    return json.dumps(r).encode()


def test_clean_file_columns_and_dtypes(tmp_path):
    path = write_lines(tmp_path / "a.ndjson", [dumps(rec(k, 500 if k % 3 == 0 else 200)) for k in range(10)])
    read = read_logs(path)
    f = read.frame
    assert list(f.columns) == COLUMNS
    assert len(f) == 10 and read.garbage == 0 and read.files == [path] and read.lines == 10
    assert str(f["timestamp"].dtype) == "datetime64[ms, UTC]"
    assert str(f["statusCode"].dtype) == "Int64"
    assert f["timestamp"].iloc[0] == dt.datetime.fromtimestamp(T0 / 1000, dt.UTC)
    assert (f["statusCode"] == 500).sum() == 4
    assert (
        f["method"].iloc[0] == "GET"
        and f["clientIp"].iloc[0] == "198.51.100.7"
        and f["region"].iloc[0] == "iad1"
    )


def test_garbage_lines_are_counted_by_kind_never_raised(tmp_path):
    lines = [
        dumps(rec(1)),
        b"",  # empty
        b'{"id": "2", "timestamp": 17000000',  # truncated
        b"\xff\xfe\x00\x01\x02binary",  # binary
        b"   ",  # blank
        b"[1, 2]",  # JSON but not an object
        dumps(rec(3, -1, message="Error: Runtime exited")),
        b'{"id": "4", "timestamp": 1700000004000, "message": "bad \xff utf8"}',  # invalid UTF-8 inside a string
    ]
    read = read_logs(write_lines(tmp_path / "g.ndjson", lines))
    assert len(read.frame) == 2
    assert read.garbage == 6
    assert read.garbage_kinds == {"empty": 2, "invalid JSON": 1, "binary": 2, "not an object": 1}
    assert read.lines == 8
    assert len(read.garbage_samples) == 5
    assert read.frame["statusCode"].tolist() == [200, -1]


def test_halving_isolates_a_bad_line_inside_a_large_block(tmp_path, monkeypatch):
    monkeypatch.setattr(reader, "BLOCK_BYTES", 20_000)
    lines = [dumps(rec(k)) for k in range(2000)]
    lines[1234] = lines[1234][:40]  # truncated in the middle of a block
    lines[77] = b"\x00\x00\x00"
    lines[1500] = b'{"id": "looks-fine", "timestamp": 1,, }'  # passes the {...} pre-filter, fails parsing
    lines[1900] = b'{"id": "utf", "message": "\xff\xfe"}'  # invalid UTF-8 inside a string
    read = read_logs(write_lines(tmp_path / "big.ndjson", lines))
    assert read.garbage == 4 and len(read.frame) == 1996
    assert read.garbage_kinds == {"invalid JSON": 2, "binary": 2}
    assert read.frame["id"].is_unique and "id1234" not in set(read.frame["id"])


def test_lenient_types_and_proxy_fallback(tmp_path):
    lines = [
        json.dumps({"id": "s", "timestamp": str(T0), "statusCode": "502", "message": {"err": 1}}).encode(),
        json.dumps(
            {"id": "p", "timestamp": T0 + 1, "proxy": {"statusCode": 504, "path": "/x", "method": "POST"}}
        ).encode(),
    ]
    f = read_logs(write_lines(tmp_path / "t.log", lines)).frame
    by_id = f.set_index("id")
    assert by_id.loc["s", "statusCode"] == 502 and by_id.loc["s", "message"] == '{"err": 1}'
    assert (
        by_id.loc["p", "statusCode"] == 504
        and by_id.loc["p", "path"] == "/x"
        and by_id.loc["p", "method"] == "POST"
    )


def test_gzip_truncated_gzip_and_folder(tmp_path):
    folder = tmp_path / "drain"
    (folder / "sub").mkdir(parents=True)
    body = b"".join(dumps(rec(k)) + b"\n" for k in range(100))
    (folder / "a.ndjson.gz").write_bytes(gzip.compress(body))
    (folder / "sub" / "b.jsonl").write_bytes(dumps(rec(500)) + b"\n")
    (folder / "notes.txt").write_text("not a log")
    (folder / ".hidden.ndjson").write_bytes(b"garbage\n")
    cut = gzip.compress(body)
    (folder / "c.log.gz").write_bytes(cut[: len(cut) // 2])  # truncated gzip: what decompresses is kept
    read = read_logs(folder)
    assert [p.name for p in read.files] == ["a.ndjson.gz", "c.log.gz", "b.jsonl"]
    assert len(read.frame) > 101
    assert read.frame["timestamp"].is_monotonic_increasing
    assert read.garbage <= 1  # at most the cut last line of the truncated .gz


def test_json_array_file(tmp_path):
    path = tmp_path / "export.json"
    path.write_text(json.dumps([rec(1), rec(2, 500), "nope"]))
    read = read_logs(path)
    assert len(read.frame) == 2 and read.garbage == 1 and read.garbage_kinds == {"not an object": 1}


def test_since_until(tmp_path):
    path = write_lines(tmp_path / "a.ndjson", [dumps(rec(k)) for k in range(60)])
    start = dt.datetime.fromtimestamp(T0 / 1000, dt.UTC)
    f = read_logs(
        path, since=start + dt.timedelta(seconds=10), until=(start + dt.timedelta(seconds=20)).isoformat()
    ).frame
    assert f["id"].tolist() == [f"id{k}" for k in range(10, 20)]
    assert len(read_logs(path, since=dt.timedelta(minutes=5)).frame) == 0  # T0 is long ago
    naive = dt.datetime.fromtimestamp(T0 / 1000, dt.UTC).replace(tzinfo=None) + dt.timedelta(seconds=50)
    assert len(read_logs(path, since=naive).frame) == 10  # naive = UTC


def test_missing_source_and_url(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_logs(tmp_path / "nope")
    with pytest.raises(LogSourceError, match="URL") as bad:
        read_logs("https://api.vercel.com/v1/logs")
    assert isinstance(bad.value, ValueError) and could_not_look(bad.value), (
        "a check that meets it could not look"
    )
    with pytest.raises(LogSourceError, match="no log source"):
        read_logs("  ")  # never the current folder
    empty = read_logs(write_lines(tmp_path / "e.ndjson", [b"", b"{oops"]))
    assert list(empty.frame.columns) == COLUMNS and len(empty.frame) == 0 and empty.garbage == 2
