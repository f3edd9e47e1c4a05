"""opsnb.checks.clients.s3 and the S3 side of opsnb.checks.backups against moto's server over real HTTP: multipart upload with
metadata, download with plain progress lines, latest-backup selection, staleness and retention."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest

from opsnb.checks import backups, findings
from opsnb.checks.clients import s3 as s3mod

BUCKET = "opsnb-unit-backups"


@pytest.fixture(scope="module")
def endpoint():
    from moto.server import ThreadedMotoServer

    from opsnb.sandbox.postgres import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def client(endpoint, monkeypatch):
    monkeypatch.setenv("OPSNB_UNIT_KEY_ID", "unit-key-id")
    monkeypatch.setenv("OPSNB_UNIT_SECRET", "unit-secret-key")
    c = s3mod.client(endpoint, "OPSNB_UNIT_KEY_ID", "OPSNB_UNIT_SECRET", region="us-east-1")
    try:
        c.create_bucket(Bucket=BUCKET)
    except c.exceptions.BucketAlreadyOwnedByYou:
        pass
    findings.clear()
    yield c
    findings.clear()


def put(client, key: str, body: bytes, **meta: str) -> None:
    client.put_object(Bucket=BUCKET, Key=key, Body=body, Metadata=meta)


def stamp(hours_ago: float, now: dt.datetime) -> str:
    return (now - dt.timedelta(hours=hours_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_multipart_upload_keeps_metadata_and_download_prints_progress(client, tmp_path):
    src = tmp_path / "big.dump"
    src.write_bytes(b"PGDMP" + bytes(range(256)) * (12 * 1024 * 4))  # ≈ 12 MB
    lines: list[str] = []
    meta = {"sha256": backups.sha256_file(src), "size": str(src.stat().st_size)}
    up = s3mod.upload(
        client, src, BUCKET, "mp/big.dump", meta, multipart_threshold_mb=5, chunk_mb=5, log=lines.append
    )
    assert up.bytes == src.stat().st_size
    etag = client.head_object(Bucket=BUCKET, Key="mp/big.dump")["ETag"]
    assert etag.strip('"').endswith("-3")  # three parts of 5 MB: it really was multipart
    assert s3mod.head(client, BUCKET, "mp/big.dump")["metadata"] == meta
    lines.clear()
    down = s3mod.download(
        client, BUCKET, "mp/big.dump", tmp_path / "got.dump", log=lines.append, every_pct=25
    )
    assert backups.sha256_file(down.path) == meta["sha256"]
    assert [ln.split(":")[1].split("%")[0].strip() for ln in lines] == ["25", "50", "75", "100"]
    assert all(ln.startswith("download mp/big.dump:") and "MB/s" in ln for ln in lines)


def test_latest_prefers_newest_taken_and_custom_on_a_tie(client):
    now = dt.datetime(2025, 6, 1, 3, 0, tzinfo=dt.UTC)
    put(client, "tie/shop-20250601T020000Z.sql.gz", b"gz", **{"created-at": stamp(1, now)})
    put(client, "tie/shop-20250601T020000Z.dump", b"PGDMP", **{"created-at": stamp(1, now)})
    put(client, "tie/shop-20250531T020000Z.dump", b"PGDMP", **{"created-at": stamp(25, now)})
    put(client, "tie/shop-20250601T020000Z.dump.manifest.json", b"{}")
    best = backups.latest_backup(client, BUCKET, "tie", now=now.isoformat())
    assert best.key == "tie/shop-20250601T020000Z.dump" and best.age_h == pytest.approx(1.0)
    assert best.manifest == {}
    assert findings.verdict() == "PASS"


def test_stale_backup_is_p1_backups_stopped(client):
    now = dt.datetime(2025, 6, 1, 3, 0, tzinfo=dt.UTC)
    # written just now (LastModified), but taken 30 h ago: the metadata decides
    put(client, "stale/backup_x.dump", b"PGDMP", **{"created-at": stamp(30, now)})
    best = backups.latest_backup(client, BUCKET, "stale/", now=now.isoformat(), max_age_h=26)
    assert best.age_h == pytest.approx(30.0)
    (f,) = findings.all_findings()
    assert (f.severity, f.title) == ("P1", "backups stopped: latest backup is too old")


def test_no_backup_is_p1(client):
    assert backups.latest_backup(client, BUCKET, "nothing-here/") is None
    assert [f.title for f in findings.all_findings()] == ["no backup found"]


def test_checksum_mismatch_and_missing_checksum(client, tmp_path):
    body = b"PGDMP-real-bytes"
    put(
        client,
        "sum/backup_20250601_020000.dump",
        body,
        sha256=hashlib.sha256(b"other").hexdigest(),
        size=str(len(body)),
    )
    best = backups.latest_backup(client, BUCKET, "sum/", now="2025-06-01T03:00:00Z")
    got = backups.fetch(client, best, tmp_path)
    table = backups.verify_checksum(got, best)
    assert list(table["ok"]) == [True, False]
    assert not backups.checksum_ok(table) and backups.restorable(got, table) is None
    assert any(
        f.severity == "P1" and f.title == "backup checksum mismatch (sha256)" for f in findings.all_findings()
    )
    findings.clear()
    put(client, "nosum/backup_20250601_020000.dump", body)
    best = backups.latest_backup(client, BUCKET, "nosum/", now="2025-06-01T03:00:00Z")
    backups.verify_checksum(backups.fetch(client, best, tmp_path / "n"), best)
    assert [f.severity for f in findings.all_findings() if f.check == "restore.checksum"] == ["P2"]


def test_inventory_lists_retention(client):
    now = dt.datetime(2025, 6, 1, 3, 0, tzinfo=dt.UTC)
    put(client, "inv/backup_a.dump", b"1", **{"created-at": stamp(24 * 40, now), "sha256": "x"})
    put(client, "inv/backup_b.dump", b"2", **{"created-at": stamp(2, now)})
    put(client, "inv/backup_b.dump.manifest.json", b"{}")
    table = backups.inventory(client, BUCKET, "inv/", now=now.isoformat(), retention_days=30)
    assert list(table["key"]) == ["inv/backup_b.dump", "inv/backup_a.dump"]
    assert list(table["outside_retention"]) == [False, True]
    assert list(table["manifest"]) == [True, False] and list(table["sha256_meta"]) == [False, True]
    (f,) = [f for f in findings.all_findings() if f.severity != "info"]
    assert (f.severity, f.title) == ("P3", "1 backup(s) outside the 30-day retention")


def test_s3_errors_are_one_line(client):
    with pytest.raises(s3mod.S3Error) as err:
        s3mod.head(client, BUCKET, "missing/key")
    assert "head s3://opsnb-unit-backups/missing/key failed" in str(err.value) and "\n" not in str(err.value)
