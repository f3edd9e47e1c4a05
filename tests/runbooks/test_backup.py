"""backup end to end on the sandbox: a dry run dumps and verifies but uploads nothing; with --allow-writes the
object carries size + sha256 metadata and a manifest, and restore-test restores it; retention is reported."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

OPSNB = str(Path(sys.executable).parent / "opsnb")


def run(tmp_path: Path, runbook: str, *params: str, allow_writes: bool = False) -> tuple[int, dict]:
    out = tmp_path / f"out-{uuid.uuid4().hex[:6]}"
    cmd = [OPSNB, "run", runbook, "--env", "sandbox", *[a for p in params for a in ("-p", p)]]
    if allow_writes:
        cmd.append("--allow-writes")
    proc = subprocess.run(
        cmd, env={**os.environ, "OPSNB_OUTPUTS": str(out)}, capture_output=True, text=True, timeout=240
    )
    manifests = sorted((out / runbook).glob("*.json"))
    assert manifests, f"no manifest; exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.returncode, json.loads(manifests[-1].read_text())


def finding(manifest: dict, prefix: str) -> dict:
    found = [f for f in manifest["findings"] if f["title"].startswith(prefix)]
    assert found, f"no finding starting {prefix!r} in {[f['title'] for f in manifest['findings']]}"
    return found[0]


@pytest.fixture(scope="module")
def s3(sandbox):
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=sandbox["SANDBOX_S3_ENDPOINT"],
        aws_access_key_id=sandbox["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=sandbox["AWS_SECRET_ACCESS_KEY"],
        region_name=sandbox.env.get("AWS_DEFAULT_REGION", "us-east-1"),
    )


def keys(s3, bucket: str, prefix: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []))


def test_dry_run_dumps_and_verifies_but_uploads_nothing(sandbox, s3, tmp_path):
    prefix = f"test-dry-{uuid.uuid4().hex[:6]}/"
    code, m = run(tmp_path, "backup", f"backup_prefix={prefix}")
    # nothing under the fresh prefix: the inventory says so (P1), and that is the only complaint
    assert keys(s3, sandbox["SANDBOX_S3_BUCKET"], prefix) == []
    assert [f["title"] for f in m["findings"] if f["severity"] != "info"] == ["no backups found"]
    assert code == 2
    assert finding(m, "dump backup_")["detail"].startswith("custom (expected custom)")
    assert finding(m, "dry run: dump made and verified locally, not uploaded")
    (action,) = m["actions"]
    assert action["status"] == "planned"
    assert any(prefix in step and "MB" in step for step in action["plan"]), action["plan"]


def test_upload_then_restore_test_passes(sandbox, s3, tmp_path):
    bucket = sandbox["SANDBOX_S3_BUCKET"]
    prefix = f"test-up-{uuid.uuid4().hex[:6]}/"
    code, m = run(tmp_path, "backup", f"backup_prefix={prefix}", allow_writes=True)
    assert code == 0, [(f["severity"], f["title"], f["detail"]) for f in m["findings"]]
    assert m["actions"][0]["status"] == "applied"
    found = keys(s3, bucket, prefix)
    dumps = [k for k in found if k.endswith(".dump")]
    assert len(dumps) == 1 and dumps[0] + ".manifest.json" in found
    obj = s3.get_object(Bucket=bucket, Key=dumps[0])
    body = obj["Body"].read()
    assert body[:5] == b"PGDMP"
    assert obj["Metadata"]["sha256"] == hashlib.sha256(body).hexdigest()
    assert obj["Metadata"]["size"] == str(len(body))
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=dumps[0] + ".manifest.json")["Body"].read())
    assert manifest["sha256"] == obj["Metadata"]["sha256"] and manifest["key"] == dumps[0]
    # the round trip: what backup wrote, restore-test restores
    code, r = run(tmp_path, "restore-test", f"backup_prefix={prefix}")
    assert code == 0, [(f["severity"], f["title"], f["detail"]) for f in r["findings"]]
    assert finding(r, "restore succeeded")


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
    code, m = run(tmp_path, "backup", f"backup_prefix={prefix}", "dump_format=plain-gzip", allow_writes=True)
    assert code == 1 and m["outcome"] == "WARN", [(f["severity"], f["title"]) for f in m["findings"]]
    retention = finding(m, "1 backup(s) outside the 30-day retention")
    assert retention["severity"] == "P3"
    gz = [k for k in keys(s3, bucket, prefix) if k.endswith(".sql.gz") and k != prefix + "backup_old.sql.gz"]
    assert len(gz) == 1
    text = gzip.decompress(s3.get_object(Bucket=bucket, Key=gz[0])["Body"].read())
    assert b'CREATE TABLE public."Order"' in text and b"PostgreSQL database dump complete" in text


def test_notebook_runs_under_nbval(sandbox, tmp_path):
    from opsnb.lab import kernel_environment, prepare

    copy = prepare("backup", "sandbox", tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider", "-q", str(copy)],
        env={**os.environ, **kernel_environment("sandbox"), "MPLBACKEND": "agg"},
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
