"""The planted faults whose runbooks have no fault test of their own: each is found by its runbook while it is
on (the conclusion naming it, a FAIL or WARN) and not while it is off. backup-truncated and backups-stopped are
found by restore-test (backup's inventory does not judge the latest backup's age), sequence-near-max by
db-maintenance's postgres.sequences."""

from __future__ import annotations

from runbooks.runbook_run import found, run_runbook

from opsnb.sandbox import faults
from opsnb.sandbox import s3 as sandbox_s3


def one(manifest: dict, check: str) -> dict:
    (conclusion,) = found(manifest, check=check)
    return conclusion


def problems(manifest: dict) -> list[tuple[str, str, str]]:
    return [(f["check"], f["status"], f["title"]) for f in manifest["findings"] if f["status"] != "pass"]


def listed(s3, bucket: str, prefix: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []))


def planted_truncated(s3, bucket: str) -> list[str]:
    """Nightly objects holding the truncated dump's bytes (by the sha256 recorded with them)."""
    (broken,) = [k for k in listed(s3, bucket, sandbox_s3.BROKEN) if k.endswith(".dump")]
    sha = s3.head_object(Bucket=bucket, Key=broken)["Metadata"]["sha256"]
    nightly = listed(s3, bucket, sandbox_s3.NIGHTLY)
    return [k for k in nightly if s3.head_object(Bucket=bucket, Key=k)["Metadata"]["sha256"] == sha]


def test_backup_truncated_fails_the_restore_only_while_on(sandbox, s3, tmp_path):
    bucket = sandbox["SANDBOX_S3_BUCKET"]
    with sandbox.faults(backups_stopped=False, backup_truncated=True):
        (key,) = planted_truncated(s3, bucket)
        assert key == [k for k in listed(s3, bucket, sandbox_s3.NIGHTLY) if k.endswith(".dump")][-1]
        code, m = run_runbook("restore-test", tmp_path / "on")
    assert (code, m["outcome"]) == (2, "FAIL"), problems(m)
    assert one(m, "restore.latest")["detail"].startswith(key)  # the newest, fresh: chosen
    assert one(m, "restore.checksum")["status"] == "pass"  # the bytes are what was recorded
    failed = one(m, "restore.restore")
    assert (failed["status"], failed["severity"]) == ("fail", "P1")
    assert failed["title"].startswith("The restore failed: pg_restore: error:"), failed["title"]

    with sandbox.faults(backups_stopped=False, backup_truncated=False):
        assert planted_truncated(s3, bucket) == []
        code, m = run_runbook("restore-test", tmp_path / "off")
    assert (code, m["outcome"]) == (0, "PASS"), problems(m)


def test_backups_stopped_leaves_a_stale_latest_only_while_on(sandbox, s3, tmp_path):
    bucket = sandbox["SANDBOX_S3_BUCKET"]
    with sandbox.faults(backup_truncated=False, backups_stopped=True):
        assert listed(s3, bucket, sandbox_s3.STOPPED)  # hidden, not deleted
        code, m = run_runbook("restore-test", tmp_path / "on")
    assert (code, m["outcome"]) == (2, "FAIL"), problems(m)
    stale = one(m, "restore.latest")
    assert (stale["status"], stale["severity"]) == ("fail", "P1")
    assert stale["title"].startswith("Backups stopped: the latest backup is ")
    age_h = float(stale["title"].rsplit(" is ", 1)[1].split(" h", 1)[0])
    assert 70 < age_h < 76  # three nights ago
    assert stale["detail"].startswith(sandbox_s3.NIGHTLY + "shop-") and "more than 26 h" in stale["detail"]
    assert one(m, "restore.restore")["status"] == "pass"  # what is left still restores: only its age is wrong

    with sandbox.faults(backup_truncated=False, backups_stopped=False):
        assert listed(s3, bucket, sandbox_s3.STOPPED) == []
        code, m = run_runbook("restore-test", tmp_path / "off")
    assert (code, m["outcome"]) == (0, "PASS"), problems(m)
    assert one(m, "restore.latest")["status"] == "pass"


def test_both_backup_faults_are_found_together(sandbox, s3, tmp_path):
    """What `make demo` (--faults all) shows: the last backup before they stopped is the truncated one,
    whichever switch came first."""
    with sandbox.faults(backup_truncated=False, backups_stopped=False):
        with sandbox.faults(backup_truncated=True, backups_stopped=True):
            code, m = run_runbook("restore-test", tmp_path / "out")
    assert (code, m["outcome"]) == (2, "FAIL"), problems(m)
    assert one(m, "restore.latest")["title"].startswith("Backups stopped: ")
    assert one(m, "restore.restore")["title"].startswith("The restore failed: pg_restore: error:")


def test_sequence_near_max_is_named_only_while_on(sandbox, tmp_path):
    sequence = f"{faults.INVOICE_TABLE}_id_seq"
    with sandbox.faults(sequence_near_max=True):
        code, m = run_runbook("db-maintenance", tmp_path / "on")
    assert m["outcome"] in ("WARN", "FAIL") and code in (1, 2), problems(m)
    near = one(m, "postgres.sequences")
    assert (near["status"], near["severity"]) == ("warn", "P2")
    assert near["title"] == f"1 sequence(s) above 90 % of their maximum: {sequence} 93.13 %", near["title"]
    assert "2,000,000,000 of 2,147,483,647 (integer)" in near["detail"]

    with sandbox.faults(sequence_near_max=False):
        code, m = run_runbook("db-maintenance", tmp_path / "off")
    quiet = one(m, "postgres.sequences")
    assert quiet["status"] == "pass" and quiet["title"].startswith("No sequence is above 90 %"), quiet


def test_backups_stopped_is_found_by_the_backup_runbook_too(sandbox, s3, tmp_path):
    """backup (a default run: nothing uploaded) reads the bucket and sees the nightly backups stopped."""
    with sandbox.faults(backup_truncated=False, backups_stopped=True):
        code, m = run_runbook("backup", tmp_path / "on")
    [inv] = found(m, check="backups.inventory")
    assert code == 2 and inv["status"] == "fail" and "the nightly backups stopped" in inv["title"]
    with sandbox.faults(backup_truncated=False, backups_stopped=False):
        code, m = run_runbook("backup", tmp_path / "off")
    [inv] = found(m, check="backups.inventory")
    assert inv["status"] == "pass", inv
