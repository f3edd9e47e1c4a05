"""opsnb.checks.backups.inventory against moto over real HTTP: when a backup was taken, the latest backup and
its age (stale = backups stopped, P1), the retention, and blindness when S3 does not answer."""

from __future__ import annotations

import datetime as dt

import pytest

from opsnb.checks import findings
from opsnb.checks.backups import inventory
from opsnb.checks.clients import s3 as s3mod
from opsnb.errors import UsageError

NOW = dt.datetime(2025, 6, 1, 3, 0, tzinfo=dt.UTC)


def put(location, name: str, body: bytes, **meta: str) -> str:
    key = location.key(name)
    location.client().put_object(Bucket=location.bucket, Key=key, Body=body, Metadata=meta)
    return key


def taken(hours_ago: float) -> str:
    return (NOW - dt.timedelta(hours=hours_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_backup_time_precedence():
    lm = dt.datetime(2025, 3, 3, 3, 3, 3, tzinfo=dt.UTC)
    meta = {"created-at": "2025-01-01T02:00:00Z"}
    assert inventory.backup_time("nightly/shop-20250202T020000Z.dump", lm, meta) == (
        dt.datetime(2025, 1, 1, 2, tzinfo=dt.UTC),
        "metadata created-at",
    )
    assert inventory.backup_time("nightly/shop-20250202T020000Z.dump", lm, {})[1] == "key timestamp"
    assert inventory.backup_time("backup_20250202_020000.sql.gz", lm)[0] == dt.datetime(
        2025, 2, 2, 2, tzinfo=dt.UTC
    )
    assert inventory.backup_time("latest.sql.gz", lm) == (lm, "LastModified")


def test_resolve_now_and_keys():
    assert inventory.resolve_now("2025-01-31T02:00:00Z") == dt.datetime(2025, 1, 31, 2, tzinfo=dt.UTC)
    with pytest.raises(UsageError):  # a bad parameter: the check that meets it is inconclusive, not a crash
        inventory.resolve_now("yesterday")
    assert inventory.is_backup_key("a/b.dump") and not inventory.is_backup_key("a/b.dump.manifest.json")
    assert (
        not inventory.is_backup_key("a/") and inventory.manifest_key("a/b.dump") == "a/b.dump.manifest.json"
    )


def test_latest_prefers_newest_taken_and_custom_on_a_tie(location, folder):
    put(location, "shop-20250601T020000Z.sql.gz", b"gz", **{"created-at": taken(1)})
    best = put(location, "shop-20250601T020000Z.dump", b"PGDMP", **{"created-at": taken(1)})
    put(location, "shop-20250531T020000Z.dump", b"PGDMP", **{"created-at": taken(25)})
    put(location, "shop-20250601T020000Z.dump.manifest.json", b'{"sha256": "ab"}')
    table = inventory.check_latest(location, folder, now=NOW.isoformat())
    (c,) = findings.all_conclusions()
    assert (c.check, c.status, c.title) == ("restore.latest", "pass", "The latest backup is 1.0 h old")
    chosen = inventory.chosen_backup(folder)
    assert chosen.key == best and chosen.age_h == pytest.approx(1.0) and chosen.manifest == {"sha256": "ab"}
    assert chosen.recorded("sha256") == "ab" and table["key"].tolist() == [best]


def test_stale_backup_is_p1_backups_stopped(location, folder):
    # written just now (LastModified), but taken 30 h ago: the metadata decides
    put(location, "backup_x.dump", b"PGDMP", **{"created-at": taken(30)})
    inventory.check_latest(location, folder, now=NOW.isoformat(), max_age_h=26)
    (c,) = findings.all_conclusions()
    assert (c.status, c.severity) == ("fail", "P1")
    assert c.title == "Backups stopped: the latest backup is 30.0 h old" and "more than 26 h" in c.detail
    assert inventory.chosen_backup(folder).age_h == pytest.approx(
        30.0
    )  # still restored: the problem is its age


def test_no_backup_is_p1_and_forgets_an_earlier_choice(location, folder):
    put(location, "backup_20250601_020000.dump", b"PGDMP")
    inventory.check_latest(location, folder, now=NOW.isoformat())
    assert inventory.chosen_backup(folder) is not None
    empty = s3mod.Location(location.bucket, location.prefix + "nothing-here", **_keys(location))
    inventory.check_latest(empty, folder)
    (c,) = findings.all_conclusions()
    assert (c.status, c.severity) == ("fail", "P1") and c.title.startswith("No backup under s3://")
    assert inventory.chosen_backup(folder) is None  # the download must not take the earlier choice


def _keys(location) -> dict[str, str]:
    return {
        "endpoint_url": location.endpoint_url,
        "access_key_id_env": location.access_key_id_env,
        "secret_access_key_env": location.secret_access_key_env,
    }


def test_s3_that_does_not_answer_is_inconclusive(location, folder):
    dead = s3mod.Location(
        location.bucket,
        "x/",
        "http://127.0.0.1:9",
        location.access_key_id_env,
        location.secret_access_key_env,
    )
    assert inventory.check_latest(dead, folder) is None
    assert inventory.check_inventory(dead) is None
    latest, listed = findings.all_conclusions()
    assert latest.status == listed.status == "inconclusive" and "list s3://" in latest.detail
    assert findings.verdict() == "WARN"  # an essential check that could not look


def test_inventory_lists_retention(location):
    put(location, "backup_a.dump", b"1", **{"created-at": taken(24 * 40), "sha256": "x"})
    put(location, "backup_b.dump", b"2", **{"created-at": taken(2)})
    put(location, "backup_b.dump.manifest.json", b"{}")
    table = inventory.check_inventory(location, now=NOW.isoformat(), retention_days=30)
    assert list(table["key"]) == [location.key("backup_b.dump"), location.key("backup_a.dump")]
    assert list(table["outside_retention"]) == [False, True]
    assert list(table["manifest"]) == [True, False] and list(table["sha256_meta"]) == [False, True]
    (c,) = findings.all_conclusions()
    assert (c.check, c.status, c.severity) == ("backups.inventory", "warn", "P3")
    assert c.title == "1 backup(s) outside the 30-day retention"


def test_inventory_of_an_empty_prefix_is_p1(location):
    inventory.check_inventory(location)
    (c,) = findings.all_conclusions()
    assert (c.status, c.severity) == ("fail", "P1") and c.title == f"No backup under {location.url()}"


def test_inventory_passes_within_retention(location):
    put(location, "backup_b.dump", b"2", **{"created-at": taken(2)})
    inventory.check_inventory(location, now=NOW.isoformat())
    (c,) = findings.all_conclusions()
    assert c.status == "pass" and c.title.startswith("1 backup(s) under")


def test_inventory_with_a_stale_newest_backup_is_p1(location):
    put(location, "backup_c.dump", b"3", **{"created-at": taken(72)})
    inventory.check_inventory(location, now=NOW.isoformat(), max_age_h=26)
    (c,) = findings.all_conclusions()
    assert (c.status, c.severity) == ("fail", "P1") and "72 h old: the nightly backups stopped" in c.title
    findings.clear()
    inventory.check_inventory(location, now=NOW.isoformat(), max_age_h=96)
    assert findings.all_conclusions()[0].status == "pass"
