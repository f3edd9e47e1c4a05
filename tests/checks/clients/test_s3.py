"""opsnb.checks.clients.s3 against moto's server over real HTTP: a Location names its keys by variable,
multipart upload keeps metadata, download prints plain progress lines, and every failure is one-line S3Error
(an OSError: a check that meets it could not look)."""

from __future__ import annotations

import hashlib

import pytest
from checks.backups.s3_server import running_moto

from opsnb.checks.clients import s3 as s3mod

BUCKET = "opsnb-unit-s3"


@pytest.fixture(scope="module")
def endpoint():
    with running_moto() as url:
        yield url


@pytest.fixture
def location(endpoint, monkeypatch) -> s3mod.Location:
    monkeypatch.setenv("OPSNB_UNIT_KEY_ID", "unit-key-id")
    monkeypatch.setenv("OPSNB_UNIT_SECRET", "unit-secret-key")
    where = s3mod.Location(BUCKET, "/mp", endpoint, "OPSNB_UNIT_KEY_ID", "OPSNB_UNIT_SECRET", "us-east-1")
    client = where.client()
    try:
        client.create_bucket(Bucket=BUCKET)
    except client.exceptions.BucketAlreadyOwnedByYou:
        pass
    return where


def test_location_normalizes_its_prefix_and_names_keys():
    where = s3mod.Location("b", "/nightly")
    assert where.prefix == "nightly/" and where.key("x.dump") == "nightly/x.dump"
    assert where.url() == "s3://b/nightly/" and where.url("k") == "s3://b/k"
    assert s3mod.Location("b").prefix == "" and s3mod.normalize_prefix("a/") == "a/"


def test_a_location_without_bucket_cannot_look():
    with pytest.raises(s3mod.S3Error, match="no bucket given") as err:
        s3mod.Location("").client()
    assert isinstance(err.value, OSError)


def test_missing_key_variable_is_named(monkeypatch):
    monkeypatch.delenv("OPSNB_UNIT_NOPE", raising=False)
    with pytest.raises(Exception, match=r"\$OPSNB_UNIT_NOPE is not set"):
        s3mod.Location("b", access_key_id_env="OPSNB_UNIT_NOPE").client()


def test_multipart_upload_keeps_metadata_and_download_prints_progress(location, tmp_path):
    src = tmp_path / "big.dump"
    src.write_bytes(b"PGDMP" + bytes(range(256)) * (12 * 1024 * 4))  # ≈ 12 MB
    lines: list[str] = []
    meta = {"sha256": hashlib.sha256(src.read_bytes()).hexdigest(), "size": str(src.stat().st_size)}
    client = location.client()
    key = location.key("big.dump")
    up = s3mod.upload(client, src, BUCKET, key, meta, multipart_threshold_mb=5, chunk_mb=5, log=lines.append)
    assert up.bytes == src.stat().st_size
    etag = client.head_object(Bucket=BUCKET, Key=key)["ETag"]
    assert etag.strip('"').endswith("-3")  # three parts of 5 MB: it really was multipart
    assert s3mod.head(client, BUCKET, key)["metadata"] == meta
    lines.clear()
    down = s3mod.download(client, BUCKET, key, tmp_path / "got.dump", log=lines.append, every_pct=25)
    assert hashlib.sha256(open(down.path, "rb").read()).hexdigest() == meta["sha256"]
    assert [ln.split(":")[1].split("%")[0].strip() for ln in lines] == ["25", "50", "75", "100"]
    assert all(ln.startswith(f"download {key}:") and "MB/s" in ln for ln in lines)


def test_list_get_put(location):
    client = location.client()
    s3mod.put_text(client, BUCKET, location.key("a.json"), '{"a": 1}')
    assert s3mod.get_text(client, BUCKET, location.key("a.json")) == '{"a": 1}'
    assert s3mod.get_text(client, BUCKET, location.key("missing.json")) is None
    assert location.key("a.json") in {o["key"] for o in s3mod.list_objects(client, BUCKET, location.prefix)}


def test_s3_errors_are_one_line(location):
    with pytest.raises(s3mod.S3Error) as err:
        s3mod.head(location.client(), BUCKET, "missing/key")
    assert "head s3://opsnb-unit-s3/missing/key failed" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(s3mod.S3Error, match="list s3://no-such-bucket"):
        s3mod.list_objects(location.client(), "no-such-bucket")
