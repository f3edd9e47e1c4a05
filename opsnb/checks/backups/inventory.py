"""What the bucket holds: backup keys and when each backup was taken, the retention, and the latest backup.

Runbook "Backup & Recovery → Automated Backups" (daily at 02:00 UTC, retention 30 days) and "Backup
Verification → 1. Download latest backup". When a backup was taken comes from its ``created-at`` metadata,
else the timestamp in its key, else S3's LastModified. The restore test records the backup it chose in the
run's work folder (``latest.json``) for the download that follows.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from opsnb.checks import findings
from opsnb.checks.backups.dumps import MANIFEST_SUFFIX
from opsnb.checks.backups.tools import MB
from opsnb.checks.clients import s3 as s3mod
from opsnb.errors import UsageError

CHOSEN_RECORD = "latest.json"
_KEY_STAMP = re.compile(r"(\d{8})[_T-]?(\d{6})")
_S3_HINT = "check s3_endpoint_url, s3_bucket and that the access key may list and read the bucket"


def manifest_key(key: str) -> str:
    """Key of the manifest object stored beside a backup object."""
    return key + MANIFEST_SUFFIX


def is_backup_key(key: str) -> bool:
    """True for backup objects (not manifests or folder markers)."""
    return not key.endswith(MANIFEST_SUFFIX) and not key.endswith("/")


def parse_time(text: str) -> _dt.datetime | None:
    """An aware UTC datetime from ISO 8601 text (a 'Z' suffix allowed), None when unparsable."""
    try:
        value = _dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None
    return value.replace(tzinfo=_dt.UTC) if value.tzinfo is None else value.astimezone(_dt.UTC)


def backup_time(
    key: str, last_modified: _dt.datetime, metadata: dict[str, str] | None = None
) -> tuple[_dt.datetime, str]:
    """When a backup was taken: metadata created-at, else the timestamp in its key, else LastModified
    (a copy or a re-upload changes LastModified, not when the data was dumped)."""
    created = parse_time((metadata or {}).get("created-at", ""))
    if created:
        return created, "metadata created-at"
    m = _KEY_STAMP.search(Path(key).name)
    if m:
        try:
            stamp = _dt.datetime.strptime(m.group(1) + m.group(2), "%Y%m%d%H%M%S").replace(tzinfo=_dt.UTC)
            return stamp, "key timestamp"
        except ValueError:
            pass
    lm = last_modified.replace(tzinfo=_dt.UTC) if last_modified.tzinfo is None else last_modified
    return lm.astimezone(_dt.UTC), "LastModified"


def resolve_now(now: str = "") -> _dt.datetime:
    """The reference time: ``now`` (ISO 8601, for replaying a night) or the current UTC time; UsageError
    when ``now`` is not ISO 8601."""
    if now:
        parsed = parse_time(now)
        if parsed is None:
            raise UsageError(f"now must be ISO 8601 (e.g. 2025-01-31T02:00:00Z), got {now!r}")
        return parsed
    return _dt.datetime.now(_dt.UTC)


@dataclass
class Backup:
    """A backup object: where it is, when it was taken, and the checksums recorded beside it."""

    bucket: str
    key: str
    size: int
    taken_at: _dt.datetime
    time_from: str  # metadata created-at | key timestamp | LastModified
    age_h: float
    metadata: dict[str, str] = field(default_factory=dict)
    manifest: dict[str, Any] | None = None

    @property
    def is_custom(self) -> bool:
        """True for a pg_dump -Fc archive (restores in parallel)."""
        return self.metadata.get("format") == "custom" or self.key.endswith((".dump", ".backup", ".pgdump"))

    def recorded(self, name: str) -> str | None:
        """A value recorded with the backup (``sha256``, ``size``): object metadata first, else its manifest."""
        value = self.metadata.get(name) or (self.manifest or {}).get(name)
        return None if value in (None, "") else str(value)

    def table(self) -> pd.DataFrame:
        """One-row DataFrame for display."""
        return pd.DataFrame(
            [
                {
                    "key": self.key,
                    "size_mb": round(self.size / MB, 2),
                    "taken_at": self.taken_at.isoformat(timespec="seconds"),
                    "time_from": self.time_from,
                    "age_h": round(self.age_h, 1),
                    "sha256": self.recorded("sha256") or "(none)",
                }
            ]
        )

    def save(self, folder: str | Path) -> None:
        """Record this backup as the one the run chose (``latest.json`` in the work folder)."""
        data = {**asdict(self), "taken_at": self.taken_at.isoformat()}
        (Path(folder) / CHOSEN_RECORD).write_text(json.dumps(data, indent=1))


def chosen_backup(folder: str | Path) -> Backup | None:
    """The backup the latest-backup step chose in this work folder, None when it chose none."""
    try:
        data = json.loads((Path(folder) / CHOSEN_RECORD).read_text())
    except (OSError, ValueError):
        return None
    data["taken_at"] = _dt.datetime.fromisoformat(data["taken_at"])
    return Backup(**data)


def newest_backup(s3, location: s3mod.Location, *, now: str = "", candidates: int = 20) -> Backup | None:
    """The newest backup under the location's prefix, with its manifest (None when there is none).

    Newest by the time it was taken among the ``candidates`` most recently written objects; on a tie (a
    custom and a plain dump of one night) the custom one, which restores in parallel.
    """
    ref = resolve_now(now)
    objects = [o for o in s3mod.list_objects(s3, location.bucket, location.prefix) if is_backup_key(o["key"])]
    recent = sorted(objects, key=lambda o: o["last_modified"], reverse=True)[:candidates]
    best: Backup | None = None
    for obj in recent:
        meta = s3mod.head(s3, location.bucket, obj["key"])["metadata"]
        when, source = backup_time(obj["key"], obj["last_modified"], meta)
        found = Backup(
            location.bucket, obj["key"], obj["size"], when, source, (ref - when).total_seconds() / 3600, meta
        )
        if best is None or (found.taken_at, found.is_custom) > (best.taken_at, best.is_custom):
            best = found
    if best is not None:
        text = s3mod.get_text(s3, location.bucket, manifest_key(best.key))
        try:
            best.manifest = json.loads(text) if text else None
        except ValueError:
            best.manifest = None  # an unreadable manifest is no manifest
    return best


def list_backups(s3, location: s3mod.Location, *, now: str = "", retention_days: int = 30) -> pd.DataFrame:
    """Every backup under the prefix: age, where its time comes from, checksum metadata, manifest, and
    whether it is past the retention; newest first."""
    ref = resolve_now(now)
    objects = s3mod.list_objects(s3, location.bucket, location.prefix)
    keys = {o["key"] for o in objects}
    rows = []
    for obj in objects:
        if not is_backup_key(obj["key"]):
            continue
        meta = s3mod.head(s3, location.bucket, obj["key"])["metadata"]
        when, source = backup_time(obj["key"], obj["last_modified"], meta)
        age_h = (ref - when).total_seconds() / 3600
        rows.append(
            {
                "key": obj["key"],
                "size_mb": round(obj["size"] / MB, 2),
                "taken_at": when.isoformat(timespec="seconds"),
                "time_from": source,
                "age_h": round(age_h, 1),
                "format": meta.get("format", ""),
                "sha256_meta": "sha256" in meta,
                "manifest": manifest_key(obj["key"]) in keys,
                "outside_retention": age_h > retention_days * 24,
            }
        )
    columns = ["key", "size_mb", "taken_at", "time_from", "age_h", "format", "sha256_meta", "manifest"]
    return pd.DataFrame(rows, columns=[*columns, "outside_retention"]).sort_values("age_h", ignore_index=True)


@findings.check("backups.inventory", hint=_S3_HINT)
def check_inventory(
    location: s3mod.Location, *, retention_days: int = 30, max_age_h: float | None = None, now: str = ""
) -> pd.DataFrame:
    """What the bucket holds under the prefix (``list_backups``): none at all is a P1, and so is a newest
    backup older than ``max_age_h`` (the nightly backups stopped); backups older than the retention
    (runbook: "Retention: 30 days") are a P3 — listed, not deleted: expiring them is the bucket's lifecycle
    rule's job."""
    table = list_backups(location.client(), location, now=now, retention_days=retention_days)
    if table.empty:
        return findings.conclude(
            "fail",
            f"No backup under {location.url()}",
            severity="P1",
            detail="backups stopped, or the prefix is wrong",
            evidence=table,
        )
    newest_h = float(table["age_h"].iloc[0])
    if max_age_h is not None and newest_h > max_age_h:
        return findings.conclude(
            "fail",
            f"The newest backup under {location.url()} is {newest_h:.0f} h old: the nightly backups stopped",
            severity="P1",
            detail=f"newest {table['key'].iloc[0]}; a backup is due every day (02:00 UTC), allowed {max_age_h:g} h",
            evidence=table,
        )
    old = table[table["outside_retention"]]
    if len(old):
        return findings.conclude(
            "warn",
            f"{len(old)} backup(s) outside the {retention_days}-day retention",
            severity="P3",
            detail=", ".join(old["key"]) + ": add an S3 lifecycle rule that expires them",
            evidence=table,
        )
    return findings.conclude(
        "pass",
        f"{len(table)} backup(s) under {location.url()}, none older than {retention_days} days",
        detail=f"newest {table['key'].iloc[0]} ({table['age_h'].iloc[0]} h old)",
        evidence=table,
    )


@findings.check("restore.latest", hint=_S3_HINT)
def check_latest(
    location: s3mod.Location,
    folder: str | Path,
    *,
    now: str = "",
    max_age_h: float = 26,
    candidates: int = 20,
) -> pd.DataFrame:
    """Choose the latest backup (``newest_backup``) and judge its age: older than ``max_age_h`` (26 h = the
    daily 02:00 UTC backup plus two hours of slack) means the backups stopped, a P1. The choice is recorded
    in ``folder`` for the download."""
    (Path(folder) / CHOSEN_RECORD).unlink(missing_ok=True)
    best = newest_backup(location.client(), location, now=now, candidates=candidates)
    if best is None:
        return findings.conclude(
            "fail",
            f"No backup under {location.url()}",
            severity="P1",
            detail="backups stopped, or the prefix is wrong",
            evidence=pd.DataFrame(),
        )
    best.save(folder)
    if best.age_h > max_age_h:
        return findings.conclude(
            "fail",
            f"Backups stopped: the latest backup is {best.age_h:.1f} h old",
            severity="P1",
            detail=f"{best.key} was taken {best.age_h:.1f} h ago ({best.time_from}), more than {max_age_h:g} h",
            evidence=best.table(),
        )
    return findings.conclude(
        "pass",
        f"The latest backup is {best.age_h:.1f} h old",
        detail=f"{best.key} ({best.time_from}; limit {max_age_h:g} h)",
        evidence=best.table(),
    )
