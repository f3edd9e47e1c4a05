"""opsnb.checks.backups.upload against moto over real HTTP: a run without --allow-writes uploads nothing and
says so (never a pass), with it the object carries its checksum and a manifest; a failed upload is a P1."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from opsnb.checks import findings
from opsnb.checks.backups import dumps, upload
from opsnb.checks.clients import s3 as s3mod


@pytest.fixture
def dump(folder) -> dumps.Dump:
    when = dt.datetime(2025, 6, 1, 2, 0, tzinfo=dt.UTC)
    path = folder / dumps.backup_filename("custom", when)
    path.write_bytes(b"PGDMP" + b"\x01" * 1000)
    made = dumps.Dump(str(path), "custom", 1005, dumps.sha256_file(path), 0.5, when, "db:5432/shop")
    made.save_manifest()
    return made


def _keys(location) -> list[str]:
    return sorted(o["key"] for o in s3mod.list_objects(location.client(), location.bucket, location.prefix))


def test_object_metadata_and_plan(dump, location):
    assert upload.object_metadata(dump) == {
        "sha256": dump.sha256,
        "size": "1005",
        "created-at": "2025-06-01T02:00:00Z",
        "format": "custom",
    }
    plan = upload.upload_plan(dump, location)
    assert plan[0].startswith(
        f"upload {dump.name} (0.0 MB, custom) to {location.url(location.key(dump.name))}"
    )
    assert plan[2].endswith(".manifest.json")


def test_without_allow_writes_nothing_is_uploaded_and_it_is_not_a_pass(dump, folder, location, monkeypatch):
    monkeypatch.setenv("OPSNB_HEADLESS", "1")
    monkeypatch.delenv("OPSNB_ALLOW_WRITES", raising=False)
    evidence = upload.check_upload(folder, location)
    (c,) = findings.all_conclusions()
    assert (c.check, c.status, c.severity) == ("backups.upload", "warn", "P2")
    assert c.title == "Nothing was uploaded: this run was not allowed to write (--allow-writes)"
    assert _keys(location) == [] and len(evidence) == 3
    assert findings.verdict() == "WARN"


def test_with_allow_writes_the_object_carries_its_checksum_and_manifest(dump, folder, location, monkeypatch):
    monkeypatch.setenv("OPSNB_HEADLESS", "1")
    monkeypatch.setenv("OPSNB_ALLOW_WRITES", "1")
    upload.check_upload(folder, location)
    (c,) = findings.all_conclusions()
    assert c.status == "pass" and c.title.startswith(f"Uploaded {dump.name} to s3://")
    key = location.key(dump.name)
    assert _keys(location) == [key, key + ".manifest.json"]
    client = location.client()
    assert s3mod.head(client, location.bucket, key)["metadata"]["sha256"] == dump.sha256
    manifest = json.loads(s3mod.get_text(client, location.bucket, key + ".manifest.json"))
    assert manifest["sha256"] == dump.sha256 and manifest["key"] == key and manifest["run_id"] == "a1b2c3d4e5"


def test_a_failed_upload_is_p1(dump, folder, location, monkeypatch):
    monkeypatch.setenv("OPSNB_HEADLESS", "1")
    monkeypatch.setenv("OPSNB_ALLOW_WRITES", "1")
    nowhere = s3mod.Location(
        "no-such-bucket",
        endpoint_url=location.endpoint_url,
        access_key_id_env=location.access_key_id_env,
        secret_access_key_env=location.secret_access_key_env,
    )
    upload.check_upload(folder, nowhere)
    (c,) = findings.all_conclusions()
    assert (c.status, c.severity) == ("fail", "P1") and c.title.startswith(
        "The upload failed: upload s3://no-such"
    )


def test_no_dump_means_nothing_to_upload(folder, location):
    assert upload.check_upload(folder, location) is None
    (c,) = findings.all_conclusions()
    assert c.status == "inconclusive" and "no dump to upload" in c.detail


def test_in_jupyterlab_the_upload_waits_for_the_click(dump, folder, location, monkeypatch):
    monkeypatch.delenv("OPSNB_HEADLESS", raising=False)
    shown = []
    monkeypatch.setattr("IPython.display.display", shown.append)
    upload.check_upload(folder, location)
    (c,) = findings.all_conclusions()
    assert (c.status, c.severity) == ("warn", "P2") and "waits for the confirm button" in c.title
    assert _keys(location) == []
    button = shown[0].children[0]
    button.click()  # the confirmed click uploads and replaces the conclusion
    (c,) = findings.all_conclusions()
    assert (c.check, c.status) == ("backups.upload", "pass") and c.title.startswith(f"Uploaded {dump.name}")
    assert location.key(dump.name) in _keys(location)
