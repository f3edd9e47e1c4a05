"""restore-test end to end on the sandbox: PASS on the good nightly backup, FAIL with pg_restore's own error
on the truncated one, FAIL on a checksum mismatch and on a stale backup, refusal to touch the live database,
and never a scratch database left behind."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest

RUNBOOK = "restore-test"
OPSNB = str(Path(sys.executable).parent / "opsnb")


def run(tmp_path: Path, *params: str, allow_writes: bool = False) -> tuple[int, dict]:
    """`opsnb run restore-test --env sandbox -p …`; (exit code, manifest)."""
    out = tmp_path / f"out-{uuid.uuid4().hex[:6]}"
    cmd = [OPSNB, "run", RUNBOOK, "--env", "sandbox"]
    for p in params:
        cmd += ["-p", p]
    if allow_writes:
        cmd.append("--allow-writes")
    proc = subprocess.run(
        cmd, env={**os.environ, "OPSNB_OUTPUTS": str(out)}, capture_output=True, text=True, timeout=240
    )
    manifests = sorted((out / RUNBOOK).glob("*.json"))
    assert manifests, f"no manifest; exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.returncode, json.loads(manifests[-1].read_text())


def titles(manifest: dict, severity: str | None = None) -> list[str]:
    return [f["title"] for f in manifest["findings"] if severity is None or f["severity"] == severity]


def finding(manifest: dict, prefix: str) -> dict:
    found = [f for f in manifest["findings"] if f["title"].startswith(prefix)]
    assert found, f"no finding starting {prefix!r} in {titles(manifest)}"
    return found[0]


def scratch_left(sandbox) -> list[str]:
    with psycopg.connect(sandbox.admin_url, autocommit=True) as conn:
        return [
            r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'opsnb_restore_%'")
        ]


def live_state(sandbox) -> tuple[int, int, int]:
    """(oid of the shop database, "Order" rows, "Product" rows)."""
    with psycopg.connect(sandbox.database_url, autocommit=True) as conn:
        oid = conn.execute("SELECT oid FROM pg_database WHERE datname = current_database()").fetchone()[0]
        orders = conn.execute('SELECT count(*) FROM "Order"').fetchone()[0]
        products = conn.execute('SELECT count(*) FROM "Product"').fetchone()[0]
    return int(oid), int(orders), int(products)


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


def nightly(s3, bucket: str, suffix: str) -> tuple[str, bytes, dict]:
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="nightly/")["Contents"]]
    key = sorted(k for k in keys if k.endswith(suffix))[-1]
    obj = s3.get_object(Bucket=bucket, Key=key)
    return key, obj["Body"].read(), obj["Metadata"]


def test_good_backup_passes(sandbox, tmp_path):
    code, m = run(tmp_path)
    assert code == 0, titles(m)
    assert m["outcome"] == "PASS"
    assert finding(m, "restore succeeded")["detail"].startswith("custom into opsnb_restore_")
    assert finding(m, "all ")["title"].endswith("tables of the archive exist")
    counts = finding(m, "row counts of key tables as expected")["detail"]
    assert "Order=" in counts and "Product=" in counts and "User=" in counts
    assert finding(m, "size and sha256 match")
    assert finding(m, "RTO ")
    assert finding(m, "no scratch database left")
    assert scratch_left(sandbox) == []


def test_truncated_backup_fails_with_pg_restore_error(sandbox, tmp_path):
    code, m = run(tmp_path, "backup_prefix=broken/")
    assert code == 2 and m["outcome"] == "FAIL", titles(m)
    failed = finding(m, "restore FAILED")
    assert failed["severity"] == "P1"
    assert "pg_restore: error:" in failed["detail"], failed["detail"]
    assert finding(m, "size and sha256 match")  # the bytes are what was uploaded: only the restore tells
    assert finding(m, "scratch database opsnb_restore_")["severity"] == "info"  # dropped
    assert scratch_left(sandbox) == []


def test_checksum_mismatch_fails_without_restoring(sandbox, s3, tmp_path):
    bucket = sandbox["SANDBOX_S3_BUCKET"]
    key, body, meta = nightly(s3, bucket, ".dump")
    prefix = f"test-mismatch-{uuid.uuid4().hex[:6]}/"
    wrong = {**meta, "sha256": hashlib.sha256(body + b"x").hexdigest(), "size": str(len(body))}
    s3.put_object(Bucket=bucket, Key=prefix + Path(key).name, Body=body, Metadata=wrong)
    try:
        code, m = run(tmp_path, f"backup_prefix={prefix}")
    finally:
        s3.delete_object(Bucket=bucket, Key=prefix + Path(key).name)
    assert code == 2 and m["outcome"] == "FAIL", titles(m)
    assert finding(m, "backup checksum mismatch (sha256)")["severity"] == "P1"
    assert "restore succeeded" not in " ".join(titles(m))
    assert scratch_left(sandbox) == []


def test_stale_backup_fails(sandbox, tmp_path):
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    code, m = run(tmp_path, f"now={later}")
    assert code == 2 and m["outcome"] == "FAIL", titles(m)
    stale = finding(m, "backups stopped")
    assert stale["severity"] == "P1" and "more than 26 h" in stale["detail"]
    assert finding(m, "restore succeeded")  # still restorable: the problem is its age
    assert scratch_left(sandbox) == []


def test_plain_gzip_backup_restores_through_psql(sandbox, s3, tmp_path):
    bucket = sandbox["SANDBOX_S3_BUCKET"]
    key, body, meta = nightly(s3, bucket, ".sql.gz")
    prefix = f"test-plain-{uuid.uuid4().hex[:6]}/"
    s3.put_object(Bucket=bucket, Key=prefix + Path(key).name, Body=body, Metadata=meta)
    try:
        code, m = run(tmp_path, f"backup_prefix={prefix}")
    finally:
        s3.delete_object(Bucket=bucket, Key=prefix + Path(key).name)
    assert code == 0, [(f["severity"], f["title"], f["detail"]) for f in m["findings"]]
    assert finding(m, "restore succeeded")["detail"].startswith("gzip into opsnb_restore_")
    assert finding(m, "row counts of key tables as expected")
    assert scratch_left(sandbox) == []


def test_refuses_live_database_as_scratch(sandbox, tmp_path):
    target = "shop"  # the live database (other names: tests/unit/test_backups.py)
    before = live_state(sandbox)
    code, m = run(tmp_path, f"scratch_database={target}")
    assert code == 2, titles(m)
    refused = finding(m, "restore refused")
    assert refused["severity"] == "P1" and "not a scratch database of this run" in refused["detail"]
    assert "restore succeeded" not in " ".join(titles(m)) and "restore FAILED" not in " ".join(titles(m))
    assert live_state(sandbox) == before
    assert scratch_left(sandbox) == []


def test_notebook_runs_under_nbval(sandbox, tmp_path):
    from opsnb.lab import kernel_environment, prepare

    copy = prepare(RUNBOOK, "sandbox", tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider", "-q", str(copy)],
        env={**os.environ, **kernel_environment("sandbox"), "MPLBACKEND": "agg"},
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert scratch_left(sandbox) == []
