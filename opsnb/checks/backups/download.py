"""Downloading the chosen backup and comparing its bytes with the checksum recorded when it was taken.

Runbook "Backup Verification → 1. Download latest backup": ``aws s3 cp s3://your-backup-bucket/latest.sql.gz ./``.
The download is recorded in the run's work folder (``download.json``: the file, its size, sha256 and how long
it took) for the checksum comparison, the restore and the recovery-time report.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from opsnb.checks import findings
from opsnb.checks.backups.dumps import sha256_file
from opsnb.checks.backups.inventory import Backup, chosen_backup
from opsnb.checks.backups.tools import MB
from opsnb.checks.clients import s3 as s3mod

DOWNLOAD_RECORD = "download.json"


@dataclass
class Downloaded:
    """A backup object copied into the work folder."""

    key: str
    path: str
    bytes: int
    seconds: float
    sha256: str

    @property
    def mb_per_s(self) -> float:
        """Throughput in MiB per second."""
        return self.bytes / MB / self.seconds if self.seconds > 0 else float("inf")

    def table(self) -> pd.DataFrame:
        """One-row DataFrame for display."""
        return pd.DataFrame(
            [
                {
                    "key": self.key,
                    "file": self.path,
                    "size_mb": round(self.bytes / MB, 2),
                    "seconds": round(self.seconds, 2),
                    "mb_per_s": round(self.mb_per_s, 1),
                    "sha256": self.sha256,
                }
            ]
        )


def downloaded(folder: str | Path) -> Downloaded | None:
    """What the download step left in this work folder, None when it downloaded nothing."""
    try:
        found = Downloaded(**json.loads((Path(folder) / DOWNLOAD_RECORD).read_text()))
    except (OSError, ValueError, TypeError):
        return None
    return found if Path(found.path).is_file() else None


def checksum_table(backup: Backup, got: Downloaded) -> pd.DataFrame:
    """Size and sha256 of the downloaded file against what was recorded with the backup (object metadata,
    else its manifest); ``ok`` is None where nothing was recorded."""
    rows = []
    for name, actual in (("size", str(got.bytes)), ("sha256", got.sha256)):
        expected = backup.recorded(name)
        ok = None if expected is None else expected.lower() == actual
        rows.append({"check": name, "expected": expected or "(none)", "actual": actual, "ok": ok})
    return pd.DataFrame(rows, columns=["check", "expected", "actual", "ok"])


def restorable(folder: str | Path) -> str | None:
    """The downloaded file when nothing recorded about it disagrees with its bytes: a checksum mismatch is
    never restored; a backup that has no checksum (made by another tool) still is."""
    backup, got = chosen_backup(folder), downloaded(folder)
    if backup is None or got is None:
        return None
    mismatch = checksum_table(backup, got)["ok"].eq(False).any()
    return None if mismatch else got.path


@findings.check("restore.download", hint="check the S3 endpoint and the access key's s3:GetObject permission")
def check_download(location: s3mod.Location, folder: str | Path) -> pd.DataFrame:
    """Download the backup the latest-backup step chose into the work folder (plain progress lines), and
    take its sha256."""
    (Path(folder) / DOWNLOAD_RECORD).unlink(missing_ok=True)
    backup = chosen_backup(folder)
    if backup is None:
        raise findings.CouldNotLook("no backup was chosen to download", "restore.latest says why")
    moved = s3mod.download(
        location.client(), backup.bucket, backup.key, Path(folder) / Path(backup.key).name, size=backup.size
    )
    got = Downloaded(backup.key, moved.path, moved.bytes, moved.seconds, sha256_file(moved.path))
    (Path(folder) / DOWNLOAD_RECORD).write_text(json.dumps(asdict(got), indent=1))
    return findings.conclude(
        "pass",
        f"Downloaded {Path(backup.key).name} ({got.bytes / MB:.1f} MB in {got.seconds:.1f} s)",
        detail=f"{got.mb_per_s:.1f} MB/s from {location.url(backup.key)}",
        evidence=got.table(),
    )


@findings.check(
    "restore.checksum",
    essential=False,
)
def check_checksum(folder: str | Path) -> pd.DataFrame:
    """Size and sha256 of the downloaded bytes against the backup's metadata or manifest (``checksum_table``).

    A mismatch is a P1 and the file is not restored: its bytes are not what was backed up. A backup without a
    recorded sha256 (a dump made by another tool) is inconclusive here and is still restored and verified.
    """
    backup, got = chosen_backup(folder), downloaded(folder)
    if backup is None or got is None:
        raise findings.CouldNotLook("nothing was downloaded to compare", "restore.download says why")
    table = checksum_table(backup, got)
    bad = table[table["ok"].eq(False)]
    if len(bad):
        return findings.conclude(
            "fail",
            f"The downloaded bytes differ from the backup's checksum ({', '.join(bad['check'])})",
            severity="P1",
            detail=f"{backup.key}: the bytes are not what was backed up; not restored",
            evidence=table,
        )
    if backup.recorded("sha256") is None:
        return findings.conclude(
            "inconclusive",
            f"No checksum to compare: {Path(backup.key).name} has no sha256 recorded",
            detail=f"{backup.key} has no sha256 in its metadata or manifest (a dump made by another tool?); "
            "it is still restored and verified below. Upload backups with the backup runbook to record one.",
            evidence=table,
        )
    return findings.conclude(
        "pass", "Size and sha256 match the backup's metadata", detail=backup.key, evidence=table
    )
