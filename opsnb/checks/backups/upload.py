"""Uploading a dump to S3 with its checksum: the backup runbook's one write, as a gated action.

Runbook "Backup & Recovery → Manual Backup": ``aws s3 cp backup_*.sql.gz s3://your-backup-bucket/``. The object
carries ``sha256``, ``size``, ``created-at`` and ``format`` metadata and a manifest (``<key>.manifest.json``)
is written beside it; restore-test compares the downloaded bytes with them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from opsnb.checks import context, findings
from opsnb.checks.actions import action
from opsnb.checks.backups.dumps import Dump, local_dump
from opsnb.checks.backups.inventory import manifest_key
from opsnb.checks.backups.tools import MB
from opsnb.checks.clients import s3 as s3mod

CHECK_ID = "backups.upload"


def object_metadata(dump: Dump) -> dict[str, str]:
    """S3 user metadata of a backup object: sha256, size, created-at (ISO UTC), format."""
    recorded = dump.manifest()
    return {name: str(recorded[name]) for name in ("sha256", "size", "created-at", "format")}


def upload_plan(dump: Dump, location: s3mod.Location) -> list[str]:
    """The steps the gated upload will take, as shown before it runs."""
    key = location.key(dump.name)
    return [
        f"upload {dump.name} ({dump.size / MB:.1f} MB, {dump.format}) to {location.url(key)}",
        f"object metadata: sha256={dump.sha256[:16]}…, size={dump.size}, created-at={dump.created_at.isoformat()}",
        f"write manifest {location.url(manifest_key(key))}",
    ]


def upload_backup(
    s3, dump: Dump, location: s3mod.Location, *, multipart_threshold_mb: int = 64
) -> dict[str, Any]:
    """Upload the dump with its checksum metadata, then the manifest beside it; verify with a HEAD.

    S3Error when a call fails or the stored object is not what was uploaded. Returns what the action log
    keeps: key, size, seconds, MB/s.
    """
    key = location.key(dump.name)
    moved = s3mod.upload(
        s3,
        dump.path,
        location.bucket,
        key,
        object_metadata(dump),
        multipart_threshold_mb=multipart_threshold_mb,
    )
    manifest = {
        **dump.manifest(),
        "key": key,
        "upload_seconds": round(moved.seconds, 2),
        "tool": "opsnb backup",
        "run_id": context.run_id(),
    }
    s3mod.put_text(s3, location.bucket, manifest_key(key), json.dumps(manifest, indent=1))
    stored = s3mod.head(s3, location.bucket, key)
    if stored["size"] != dump.size or stored["metadata"].get("sha256") != dump.sha256:
        raise s3mod.S3Error(
            f"{location.url(key)} does not hold what was uploaded (size {stored['size']}, expected {dump.size})"
        )
    return {
        "key": key,
        "size": dump.size,
        "seconds": round(moved.seconds, 2),
        "mb_per_s": round(moved.mb_per_s, 1),
    }


def _uploaded(receipt: dict[str, Any], location: s3mod.Location) -> str:
    return f"Uploaded {Path(receipt['key']).name} to {location.url(receipt['key'])}"


@findings.check(
    CHECK_ID, hint="check s3_endpoint_url, s3_bucket and the access key's s3:PutObject permission"
)
def check_upload(folder: str | Path, location: s3mod.Location) -> pd.DataFrame:
    """Upload the fresh dump (``upload_backup``) as a gated action: the plan is always shown; headless, it
    applies only with ``--allow-writes``; in JupyterLab after the confirm button. A run that uploaded
    nothing is a P2 warning, never a pass: a cron line that forgot ``--allow-writes`` would silently stop
    backing up."""
    dump = local_dump(folder)
    if dump is None:
        raise findings.CouldNotLook("there is no dump to upload", "backups.dump says why")
    s3 = location.client()

    def apply() -> dict[str, Any]:
        if context.headless():
            return upload_backup(s3, dump, location)
        return _upload_on_click(s3, dump, location)

    plan = upload_plan(dump, location)
    evidence = pd.DataFrame({"plan": plan})
    try:
        entry = action(f"upload backup {dump.name}", plan, apply)
    except s3mod.S3Error as exc:
        return findings.conclude(
            "fail",
            f"The upload failed: {exc}",
            severity="P1",
            detail="no new backup is stored",
            evidence=evidence,
        )
    if entry["status"] == "applied":
        receipt = entry["result"]
        return findings.conclude(
            "pass",
            _uploaded(receipt, location),
            detail=f"{receipt['size'] / MB:.1f} MB in {receipt['seconds']} s ({receipt['mb_per_s']} MB/s)",
            evidence=evidence,
        )
    if entry["status"] == "awaiting confirmation":
        return findings.conclude(
            "warn",
            "Nothing uploaded yet: the upload waits for the confirm button",
            severity="P2",
            detail="the dump was made and read back locally; click the button to upload it",
            evidence=evidence,
        )
    return findings.conclude(
        "warn",
        "Nothing was uploaded: this run was not allowed to write (--allow-writes)",
        severity="P2",
        detail="the dump was made and read back locally, then left out of the bucket; cron must run the "
        "backup runbook with --allow-writes",
        evidence=evidence,
    )


def _upload_on_click(s3, dump: Dump, location: s3mod.Location) -> dict[str, Any]:
    """The confirmed upload in JupyterLab: runs after the check returned, so it replaces its conclusion."""
    try:
        receipt = upload_backup(s3, dump, location)
    except s3mod.S3Error as exc:
        findings.conclude("fail", f"The upload failed: {exc}", severity="P1", check_id=CHECK_ID)
        raise
    findings.conclude("pass", _uploaded(receipt, location), check_id=CHECK_ID)
    return receipt
