"""restore-test end to end on the sandbox: PASS on the good nightly backup, FAIL with pg_restore's own error
on the truncated one, FAIL on a checksum mismatch and on a stale backup, a dump made by another tool (no
checksum) still restored, the freshness table a parameter, refusal to touch the live database, and never a
scratch database left behind (nor by the notebook under nbval: test_nbval.py)."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from pathlib import Path

import psycopg
import pytest
from runbooks.runbook_run import found, run_runbook

RUNBOOK = "restore-test"


@pytest.fixture(scope="module", autouse=True)
def good_nightly_backups(sandbox):
    """The session sandbox plants every fault: these tests want the nightly backups as taken (the planted
    backup faults have their own tests in test_planted_faults.py)."""
    with sandbox.faults(backup_truncated=False, backups_stopped=False):
        yield


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


def one(manifest: dict, check: str) -> dict:
    """The conclusion of ``check`` (exactly one per check)."""
    (conclusion,) = found(manifest, check=check)
    return conclusion


def problems(manifest: dict) -> list[tuple[str, str, str]]:
    return [(f["check"], f["status"], f["title"]) for f in manifest["findings"] if f["status"] != "pass"]


def test_good_backup_passes(sandbox, tmp_path):
    code, m = run_runbook(RUNBOOK, tmp_path / "out")
    assert code == 0, problems(m)
    assert m["outcome"] == "PASS"
    restored = one(m, "restore.restore")
    assert restored["status"] == "pass" and restored["detail"].startswith("custom archive of")
    assert "into opsnb_restore_" in restored["detail"]
    assert one(m, "restore.tables")["title"].endswith("tables of the backup exist in the restored database")
    counts = one(m, "restore.counts")
    assert counts["status"] == "pass" and "within 5% of the source" in counts["title"]
    assert "Order=" in counts["detail"] and "Product=" in counts["detail"] and "User=" in counts["detail"]
    assert one(m, "restore.checksum")["title"] == "Size and sha256 match the backup's metadata"
    assert one(m, "restore.freshness")["title"].startswith('The newest "Order"."createdAt" is ')
    assert one(m, "restore.rto")["status"] == "pass"
    assert one(m, "restore.cleanup")["title"] == "No scratch database is left on the server"
    # in runbook order
    assert [f["check"] for f in m["findings"]] == [
        "restore.interrupted-runs",
        "restore.latest",
        "restore.download",
        "restore.checksum",
        "restore.scratch-name",
        "restore.restore",
        "restore.tables",
        "restore.counts",
        "restore.freshness",
        "restore.amcheck",
        "restore.rto",
        "restore.cleanup",
    ]
    assert scratch_left(sandbox) == []


def test_truncated_backup_fails_with_pg_restore_error(sandbox, tmp_path):
    code, m = run_runbook(RUNBOOK, tmp_path / "out", "backup_prefix=broken/")
    assert code == 2 and m["outcome"] == "FAIL", problems(m)
    failed = one(m, "restore.restore")
    assert (failed["status"], failed["severity"]) == ("fail", "P1")
    assert failed["title"].startswith("The restore failed: pg_restore: error:"), failed["title"]
    assert "pg_restore: error:" in failed["detail"], failed["detail"]
    # the bytes are what was uploaded: only the restore tells
    assert one(m, "restore.checksum")["status"] == "pass"
    assert one(m, "restore.tables")["status"] == "inconclusive"  # nothing restored, nothing verified
    assert one(m, "restore.cleanup")["status"] == "pass"  # dropped
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
    assert code == 2 and m["outcome"] == "FAIL", problems(m)
    mismatch = one(m, "restore.checksum")
    assert (mismatch["status"], mismatch["severity"]) == ("fail", "P1")
    assert mismatch["title"] == "The downloaded bytes differ from the backup's checksum (sha256)"
    assert one(m, "restore.restore")["status"] == "inconclusive"  # never restored
    assert scratch_left(sandbox) == []


def test_dump_made_by_another_tool_without_checksum_is_restored(sandbox, s3, tmp_path):
    """pg_dump -Fc by hand, `aws s3 cp` to the bucket: no sha256 beside it. Restored and verified anyway."""
    bucket = sandbox["SANDBOX_S3_BUCKET"]
    key, body, _meta = nightly(s3, bucket, ".dump")
    prefix = f"test-other-tool-{uuid.uuid4().hex[:6]}/"
    s3.put_object(Bucket=bucket, Key=prefix + "shop.dump", Body=body)
    try:
        code, m = run_runbook(RUNBOOK, tmp_path / "out", f"backup_prefix={prefix}")
    finally:
        s3.delete_object(Bucket=bucket, Key=prefix + "shop.dump")
    assert code == 0 and m["outcome"] == "PASS", problems(m)
    note = one(m, "restore.checksum")
    assert (
        note["status"] == "inconclusive"
        and note["title"] == "No checksum to compare: shop.dump has no sha256 recorded"
    )
    assert one(m, "restore.restore")["status"] == "pass" and one(m, "restore.counts")["status"] == "pass"
    assert scratch_left(sandbox) == []


def test_stale_backup_fails(sandbox, tmp_path):
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    code, m = run_runbook(RUNBOOK, tmp_path / "out", f"now={later}")
    assert code == 2 and m["outcome"] == "FAIL", problems(m)
    stale = one(m, "restore.latest")
    assert stale["severity"] == "P1" and stale["title"].startswith("Backups stopped: the latest backup is ")
    assert "more than 26 h" in stale["detail"]
    assert one(m, "restore.restore")["status"] == "pass"  # still restorable: the problem is its age
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
    assert code == 0, problems(m)
    assert one(m, "restore.restore")["detail"].startswith("gzip archive of")
    assert one(m, "restore.counts")["status"] == "pass"
    assert scratch_left(sandbox) == []


def test_the_freshness_table_is_a_parameter(sandbox, tmp_path):
    code, m = run_runbook(RUNBOOK, tmp_path / "out", "freshness_table=")
    assert code == 0, problems(m)
    skipped = one(m, "restore.freshness")
    assert skipped["status"] == "inconclusive" and not skipped["essential"]
    code, m = run_runbook(RUNBOOK, tmp_path / "out", "freshness_table=Shipment")
    assert code == 1 and m["outcome"] == "WARN", problems(m)
    missing = ("restore.freshness", "warn", 'Table "Shipment" does not exist in the restored database')
    assert [p for p in problems(m) if p[1] != "inconclusive"] == [missing]
    assert one(m, "restore.freshness")["severity"] == "P2"
    assert scratch_left(sandbox) == []


def test_refuses_live_database_as_scratch(sandbox, tmp_path):
    target = "shop"  # the live database (other names: tests/checks/backups/test_scratch.py)
    before = live_state(sandbox)
    code, m = run_runbook(RUNBOOK, tmp_path / "out", f"scratch_database={target}")
    assert code == 2, problems(m)
    refused = one(m, "restore.scratch-name")
    assert (refused["status"], refused["severity"]) == ("fail", "P1")
    assert (
        refused["title"] == "Refused 'shop' as the restore target: it is not a scratch database of this run"
    )
    assert one(m, "restore.restore")["status"] == "inconclusive"  # neither restored nor failed: never tried
    assert live_state(sandbox) == before
    assert scratch_left(sandbox) == []
