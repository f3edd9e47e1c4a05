"""restore-test end to end on the sandbox: PASS on the good nightly backup, FAIL with pg_restore's own error
on the truncated one, FAIL on a checksum mismatch and on a stale backup, refusal to touch the live database,
and never a scratch database left behind (nor by the notebook under nbval: test_nbval.py)."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from pathlib import Path

import psycopg
from runbooks.runbook_run import found, run_runbook

RUNBOOK = "restore-test"


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


def nightly(s3, bucket: str, suffix: str) -> tuple[str, bytes, dict]:
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="nightly/")["Contents"]]
    key = sorted(k for k in keys if k.endswith(suffix))[-1]
    obj = s3.get_object(Bucket=bucket, Key=key)
    return key, obj["Body"].read(), obj["Metadata"]


def test_good_backup_passes(sandbox, tmp_path):
    code, m = run_runbook(RUNBOOK, tmp_path / "out")
    assert code == 0, [f["title"] for f in found(m)]
    assert m["outcome"] == "PASS"
    assert found(m, title_prefix="restore succeeded")[0]["detail"].startswith("custom into opsnb_restore_")
    assert found(m, title_prefix="all ")[0]["title"].endswith("tables of the archive exist")
    counts = found(m, title_prefix="row counts of key tables as expected")[0]["detail"]
    assert "Order=" in counts and "Product=" in counts and "User=" in counts
    assert found(m, title_prefix="size and sha256 match")
    assert found(m, title_prefix="RTO ")
    assert found(m, title_prefix="no scratch database left")
    assert scratch_left(sandbox) == []


def test_truncated_backup_fails_with_pg_restore_error(sandbox, tmp_path):
    code, m = run_runbook(RUNBOOK, tmp_path / "out", "backup_prefix=broken/")
    assert code == 2 and m["outcome"] == "FAIL", [f["title"] for f in found(m)]
    failed = found(m, title_prefix="restore FAILED")[0]
    assert failed["severity"] == "P1"
    assert "pg_restore: error:" in failed["detail"], failed["detail"]
    # the bytes are what was uploaded: only the restore tells
    assert found(m, title_prefix="size and sha256 match")
    assert found(m, title_prefix="scratch database opsnb_restore_")[0]["severity"] == "info"  # dropped
    assert scratch_left(sandbox) == []


def test_checksum_mismatch_fails_without_restoring(sandbox, s3, tmp_path):
    bucket = sandbox["SANDBOX_S3_BUCKET"]
    key, body, meta = nightly(s3, bucket, ".dump")
    prefix = f"test-mismatch-{uuid.uuid4().hex[:6]}/"
    wrong = {**meta, "sha256": hashlib.sha256(body + b"x").hexdigest(), "size": str(len(body))}
    s3.put_object(Bucket=bucket, Key=prefix + Path(key).name, Body=body, Metadata=wrong)
    try:
        code, m = run_runbook(RUNBOOK, tmp_path / "out", f"backup_prefix={prefix}")
    finally:
        s3.delete_object(Bucket=bucket, Key=prefix + Path(key).name)
    assert code == 2 and m["outcome"] == "FAIL", [f["title"] for f in found(m)]
    assert found(m, title_prefix="backup checksum mismatch (sha256)")[0]["severity"] == "P1"
    assert "restore succeeded" not in " ".join(f["title"] for f in found(m))
    assert scratch_left(sandbox) == []


def test_stale_backup_fails(sandbox, tmp_path):
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    code, m = run_runbook(RUNBOOK, tmp_path / "out", f"now={later}")
    assert code == 2 and m["outcome"] == "FAIL", [f["title"] for f in found(m)]
    stale = found(m, title_prefix="backups stopped")[0]
    assert stale["severity"] == "P1" and "more than 26 h" in stale["detail"]
    assert found(m, title_prefix="restore succeeded")  # still restorable: the problem is its age
    assert scratch_left(sandbox) == []


def test_plain_gzip_backup_restores_through_psql(sandbox, s3, tmp_path):
    bucket = sandbox["SANDBOX_S3_BUCKET"]
    key, body, meta = nightly(s3, bucket, ".sql.gz")
    prefix = f"test-plain-{uuid.uuid4().hex[:6]}/"
    s3.put_object(Bucket=bucket, Key=prefix + Path(key).name, Body=body, Metadata=meta)
    try:
        code, m = run_runbook(RUNBOOK, tmp_path / "out", f"backup_prefix={prefix}")
    finally:
        s3.delete_object(Bucket=bucket, Key=prefix + Path(key).name)
    assert code == 0, [(f["severity"], f["title"], f["detail"]) for f in m["findings"]]
    assert found(m, title_prefix="restore succeeded")[0]["detail"].startswith("gzip into opsnb_restore_")
    assert found(m, title_prefix="row counts of key tables as expected")
    assert scratch_left(sandbox) == []


def test_refuses_live_database_as_scratch(sandbox, tmp_path):
    target = "shop"  # the live database (other names: tests/unit/test_backups.py)
    before = live_state(sandbox)
    code, m = run_runbook(RUNBOOK, tmp_path / "out", f"scratch_database={target}")
    assert code == 2, [f["title"] for f in found(m)]
    refused = found(m, title_prefix="restore refused")[0]
    assert refused["severity"] == "P1" and "not a scratch database of this run" in refused["detail"]
    titles = " ".join(f["title"] for f in found(m))
    assert "restore succeeded" not in titles and "restore FAILED" not in titles
    assert live_state(sandbox) == before
    assert scratch_left(sandbox) == []
