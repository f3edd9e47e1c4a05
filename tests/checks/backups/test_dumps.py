"""opsnb.checks.backups.dumps: pg_dump into the work folder with a manifest beside it, formats, the table of
contents, and the checks backups.dump and backups.dump-readable on a real cluster."""

from __future__ import annotations

import datetime as dt
import gzip
import json

import pytest

from opsnb.checks import findings
from opsnb.checks.backups import dumps


def test_detect_format(tmp_path):
    cases = {
        "a.dump": b"PGDMP\x01\x0e",
        "b.sql.gz": gzip.compress(b"-- PostgreSQL database dump\n"),
        "c.sql": b"--\n-- PostgreSQL database dump\n",
        "d.bin": b"\x00\x01garbage",
    }
    got = {}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        got[name] = dumps.detect_format(tmp_path / name)
    assert got == {"a.dump": "custom", "b.sql.gz": "gzip", "c.sql": "plain", "d.bin": "unknown"}


def test_names():
    when = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert dumps.backup_filename("custom", when) == "backup_20250102_030405.dump"
    assert dumps.backup_filename("plain-gzip", when) == "backup_20250102_030405.sql.gz"


LISTING = """;
; Archive created at 2025-01-01 02:00:00 UTC
;
2; 3079 16537 EXTENSION - pg_stat_statements{sp}
3443; 0 0 COMMENT - EXTENSION pg_stat_statements{sp}
216; 1259 16426 TABLE public Account shop_app
3444; 0 0 ACL public TABLE "Account" shop_app
220; 1259 16455 TABLE public Order shop_app
3433; 0 16455 TABLE DATA public Order shop_app
215; 1259 16386 TABLE public we;ird "na me" app
""".format(sp=" ")  # pg_restore --list ends extension lines with a space


def test_parse_toc():
    toc = dumps.parse_toc(LISTING)
    assert [(e.desc, e.schema, e.name) for e in toc if e.desc in ("TABLE", "TABLE DATA")] == [
        ("TABLE", "public", "Account"),
        ("TABLE", "public", "Order"),
        ("TABLE DATA", "public", "Order"),
        ("TABLE", "public", 'we;ird "na me"'),  # a name with spaces spans every word up to the owner
    ]
    assert dumps.table_names(toc) == ["public.Account", "public.Order", 'public.we;ird "na me"']
    assert toc[0].desc == "EXTENSION" and toc[0].id == "2"


@pytest.mark.parametrize("fmt", ["custom", "plain-gzip"])
def test_dump_database_writes_the_dump_and_its_manifest(pg_cluster, source_db, folder, fmt):
    dump = dumps.dump_database("OPSNB_TEST_SRC_URL", folder, fmt=fmt, pg_bindir=str(pg_cluster.bindir))
    assert dumps.detect_format(dump.path) == ("custom" if fmt == "custom" else "gzip")
    assert dump.sha256 == dumps.sha256_file(dump.path) and dump.size > 0 and dump.source.endswith("/src")
    manifest = json.loads((folder / (dump.name + dumps.MANIFEST_SUFFIX)).read_text())
    assert manifest["sha256"] == dump.sha256 and manifest["format"] == fmt and manifest["file"] == dump.name
    assert dumps.local_dump(folder) == dump
    assert "PASSWORD" not in json.dumps(manifest).upper()  # host:port/db only, never credentials


def test_check_dump_pass_then_readable(pg_cluster, source_db, folder):
    table = dumps.check_dump("OPSNB_TEST_SRC_URL", folder, pg_bindir=str(pg_cluster.bindir))
    readable = dumps.check_dump_readable(folder, pg_bindir=str(pg_cluster.bindir))
    dump, read = findings.all_conclusions()
    assert (dump.check, dump.status) == ("backups.dump", "pass") and dump.title.startswith(
        "pg_dump made backup_"
    )
    assert table["format"].tolist() == ["custom"]
    assert (read.check, read.status) == ("backups.dump-readable", "pass")
    assert read.detail == "custom (expected custom); 3 tables" and readable["ok"].all()


def test_pg_dump_error_is_a_p1_in_its_own_words(pg_cluster, folder, monkeypatch):
    monkeypatch.setenv("OPSNB_TEST_NOWHERE", pg_cluster.dsn_for("no_such_database"))
    dumps.check_dump("OPSNB_TEST_NOWHERE", folder, pg_bindir=str(pg_cluster.bindir))
    (c,) = findings.all_conclusions()
    assert (c.status, c.severity) == ("fail", "P1") and c.title.startswith(
        "No backup was made: pg_dump: error:"
    )
    assert 'database "no_such_database" does not exist' in c.detail
    assert list(folder.iterdir()) == [] and dumps.local_dump(folder) is None  # no partial file left


def test_unknown_format_makes_no_backup(folder):
    dumps.check_dump("OPSNB_TEST_UNSET_VAR", folder, fmt="tar")
    (c,) = findings.all_conclusions()
    assert (c.status, c.severity) == ("fail", "P1") and "dump_format 'tar'" in c.title


def test_missing_secret_is_inconclusive_not_a_crash(folder):
    assert dumps.check_dump("OPSNB_TEST_UNSET_VAR", folder) is None
    (c,) = findings.all_conclusions()
    assert c.status == "inconclusive" and "OPSNB_TEST_UNSET_VAR" in c.detail and findings.verdict() == "WARN"


def _fake_dump(folder, data: bytes, fmt: str):
    path = folder / dumps.backup_filename(fmt, dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    path.write_bytes(data)
    dump = dumps.Dump(
        str(path),
        fmt,
        len(data),
        dumps.sha256_file(path),
        0.1,
        dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
        "h:1/db",
    )
    dump.save_manifest()
    return dump


def test_unreadable_custom_dump_is_p1(folder):
    _fake_dump(folder, b"PGDMP" + b"\0" * 50, "custom")
    table = dumps.check_dump_readable(folder)
    (c,) = findings.all_conclusions()
    assert (c.status, c.severity) == ("fail", "P1") and "unreadable" in c.title
    assert not table["ok"].all()


def test_plain_dump_without_its_closing_line_is_p1(folder):
    _fake_dump(
        folder,
        gzip.compress(b"--\n-- PostgreSQL database dump\n--\nCREATE TABLE t (id int);\n"),
        "plain-gzip",
    )
    dumps.check_dump_readable(folder)
    (c,) = findings.all_conclusions()
    assert c.status == "fail" and "closing line is missing" in c.title


def test_truncated_gzip_is_p1(folder):
    data = gzip.compress(b"-- x\n" * 100_000)
    _fake_dump(folder, data[: len(data) // 2], "plain-gzip")
    dumps.check_dump_readable(folder)
    (c,) = findings.all_conclusions()
    assert (c.status, c.severity) == ("fail", "P1")


def test_nothing_to_read_is_inconclusive(folder):
    assert dumps.check_dump_readable(folder) is None
    (c,) = findings.all_conclusions()
    assert (
        c.status == "inconclusive" and "there is no dump to read" in c.detail and "backups.dump" in c.detail
    )
