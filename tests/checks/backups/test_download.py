"""opsnb.checks.backups.download against moto over real HTTP: the chosen backup is downloaded and its bytes
compared with the recorded checksum; a mismatch is never restored, a backup without a checksum (another tool's
dump) still is."""

from __future__ import annotations

import hashlib

from opsnb.checks import findings
from opsnb.checks.backups import download, inventory

NOW = "2025-06-01T03:00:00Z"


def put(location, name: str, body: bytes, **meta: str) -> None:
    location.client().put_object(Bucket=location.bucket, Key=location.key(name), Body=body, Metadata=meta)


def chosen_and_downloaded(location, folder) -> None:
    inventory.check_latest(location, folder, now=NOW)
    download.check_download(location, folder)
    findings.clear()


def test_matching_checksum_passes_and_is_restorable(location, folder):
    body = b"PGDMP-real-bytes"
    put(
        location,
        "backup_20250601_020000.dump",
        body,
        sha256=hashlib.sha256(body).hexdigest(),
        size=str(len(body)),
    )
    inventory.check_latest(location, folder, now=NOW)
    table = download.check_download(location, folder)
    got = download.downloaded(folder)
    assert got.bytes == len(body) and got.sha256 == hashlib.sha256(body).hexdigest()
    assert table["key"].tolist() == [location.key("backup_20250601_020000.dump")]
    download.check_checksum(folder)
    latest, fetched, checksum = findings.all_conclusions()
    assert fetched.status == "pass" and fetched.title.startswith("Downloaded backup_20250601_020000.dump")
    assert (checksum.status, checksum.title) == ("pass", "Size and sha256 match the backup's metadata")
    assert download.restorable(folder) == got.path


def test_checksum_mismatch_is_p1_and_never_restored(location, folder):
    body = b"PGDMP-real-bytes"
    put(
        location,
        "backup_20250601_020000.dump",
        body,
        sha256=hashlib.sha256(b"other").hexdigest(),
        size=str(len(body)),
    )
    chosen_and_downloaded(location, folder)
    table = download.check_checksum(folder)
    assert table["ok"].tolist() == [True, False]
    (c,) = findings.all_conclusions()
    assert (c.status, c.severity) == ("fail", "P1")
    assert c.title == "The downloaded bytes differ from the backup's checksum (sha256)"
    assert download.restorable(folder) is None


def test_the_manifest_stands_in_for_missing_metadata(location, folder):
    body = b"PGDMP-bytes"
    put(location, "backup_20250601_020000.dump", body)
    sha = hashlib.sha256(body).hexdigest()
    put(
        location,
        "backup_20250601_020000.dump.manifest.json",
        f'{{"sha256": "{sha}", "size": {len(body)}}}'.encode(),
    )
    chosen_and_downloaded(location, folder)
    download.check_checksum(folder)
    (c,) = findings.all_conclusions()
    assert c.status == "pass"


def test_another_tools_dump_without_checksum_is_still_restorable(location, folder):
    """pg_dump -Fc by hand, uploaded with `aws s3 cp`: no sha256 anywhere. Not a refusal: restored, with a
    note that there was nothing to compare."""
    put(location, "shop.dump", b"PGDMP-by-hand")
    chosen_and_downloaded(location, folder)
    table = download.check_checksum(folder)
    (c,) = findings.all_conclusions()
    assert (c.check, c.status) == ("restore.checksum", "inconclusive") and not c.essential
    assert c.title == "No checksum to compare: shop.dump has no sha256 recorded"
    assert table["ok"].isna().all() and findings.verdict() == "PASS"
    assert download.restorable(folder) == download.downloaded(folder).path


def test_nothing_chosen_means_nothing_downloaded(location, folder):
    assert download.check_download(location, folder) is None
    assert download.check_checksum(folder) is None
    fetched, checksum = findings.all_conclusions()
    assert fetched.status == checksum.status == "inconclusive"
    assert "restore.latest" in fetched.detail and "restore.download" in checksum.detail
    assert download.restorable(folder) is None


def test_a_failed_download_is_inconclusive(location, folder):
    put(location, "backup_20250601_020000.dump", b"PGDMP")
    inventory.check_latest(location, folder, now=NOW)
    location.client().delete_object(Bucket=location.bucket, Key=location.key("backup_20250601_020000.dump"))
    assert download.check_download(location, folder) is None
    c = findings.all_conclusions()[-1]
    assert c.status == "inconclusive" and "download s3://" in c.detail and download.downloaded(folder) is None
