"""backup end to end on the sandbox: a dry run dumps and reads the dump back but uploads nothing, and says so
(a WARN, never a PASS); with --allow-writes the object carries size + sha256 metadata and a manifest, and
restore-test restores it; retention is reported."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import uuid

from runbooks.runbook_run import found, run_runbook


def keys(s3, bucket: str, prefix: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []))


def test_dry_run_dumps_and_verifies_but_uploads_nothing(sandbox, s3, tmp_path):
    bucket = sandbox["SANDBOX_S3_BUCKET"]
    prefix = f"test-dry-{uuid.uuid4().hex[:6]}/"
    code, m = run_runbook("backup", tmp_path / "out", f"backup_prefix={prefix}")
    # nothing uploaded (P2: a cron line without --allow-writes would silently stop backing up), and nothing
    # under the fresh prefix (P1): those are the only complaints
    assert keys(s3, bucket, prefix) == []
    assert [(f["check"], f["severity"], f["title"]) for f in m["findings"] if f["status"] != "pass"] == [
        ("backups.upload", "P2", "Nothing was uploaded: this run was not allowed to write (--allow-writes)"),
        ("backups.inventory", "P1", f"No backup under s3://{bucket}/{prefix}"),
    ]
    assert code == 2
    assert found(m, check="backups.dump")[0]["title"].startswith("pg_dump made backup_")
    assert found(m, check="backups.dump-readable")[0]["detail"].startswith("custom (expected custom)")
    (action,) = m["actions"]
    assert action["status"] == "planned"
    assert any(prefix in step and "MB" in step for step in action["plan"]), action["plan"]


def test_upload_then_restore_test_passes(sandbox, s3, tmp_path):
    bucket = sandbox["SANDBOX_S3_BUCKET"]
    prefix = f"test-up-{uuid.uuid4().hex[:6]}/"
    code, m = run_runbook("backup", tmp_path / "out", f"backup_prefix={prefix}", allow_writes=True)
    assert code == 0, [(f["severity"], f["title"], f["detail"]) for f in m["findings"]]
    assert m["actions"][0]["status"] == "applied"
    assert found(m, check="backups.upload")[0]["title"].startswith("Uploaded backup_")
    stored = keys(s3, bucket, prefix)
    dumps = [k for k in stored if k.endswith(".dump")]
    assert len(dumps) == 1 and dumps[0] + ".manifest.json" in stored
    obj = s3.get_object(Bucket=bucket, Key=dumps[0])
    body = obj["Body"].read()
    assert body[:5] == b"PGDMP"
    assert obj["Metadata"]["sha256"] == hashlib.sha256(body).hexdigest()
    assert obj["Metadata"]["size"] == str(len(body))
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=dumps[0] + ".manifest.json")["Body"].read())
    assert manifest["sha256"] == obj["Metadata"]["sha256"] and manifest["key"] == dumps[0]
    # the round trip: what backup wrote, restore-test restores
    code, r = run_runbook("restore-test", tmp_path / "out", f"backup_prefix={prefix}")
    assert code == 0, [(f["severity"], f["title"], f["detail"]) for f in r["findings"]]
    assert found(r, check="restore.latest")[0]["detail"].startswith(dumps[0])
    assert found(r, check="restore.checksum")[0]["status"] == "pass"
    assert found(r, check="restore.restore")[0]["status"] == "pass"


def test_plain_gzip_and_retention(sandbox, s3, tmp_path):
    bucket = sandbox["SANDBOX_S3_BUCKET"]
    prefix = f"test-old-{uuid.uuid4().hex[:6]}/"
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=40)
    s3.put_object(
        Bucket=bucket,
        Key=prefix + "backup_old.sql.gz",
        Body=b"x",
        Metadata={
            "created-at": old.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "sha256": hashlib.sha256(b"x").hexdigest(),
        },
    )
    code, m = run_runbook(
        "backup", tmp_path / "out", f"backup_prefix={prefix}", "dump_format=plain-gzip", allow_writes=True
    )
    assert code == 1 and m["outcome"] == "WARN", [(f["severity"], f["title"]) for f in m["findings"]]
    retention = found(m, title_prefix="1 backup(s) outside the 30-day retention")[0]
    assert retention["severity"] == "P3"
    gz = [k for k in keys(s3, bucket, prefix) if k.endswith(".sql.gz") and k != prefix + "backup_old.sql.gz"]
    assert len(gz) == 1
    text = gzip.decompress(s3.get_object(Bucket=bucket, Key=gz[0])["Body"].read())
    assert b'CREATE TABLE public."Order"' in text and b"PostgreSQL database dump complete" in text
