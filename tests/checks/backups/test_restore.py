"""opsnb.checks.backups.restore: TOC filtering, the plain-SQL filter, and restore_and_verify on a real cluster —
a failed restore keeps pg_restore's own words and still drops its scratch database; check_restore and check_rto
judge what it did."""

from __future__ import annotations

import json

import pytest

from opsnb.checks import findings
from opsnb.checks.backups import download, dumps, restore

LISTING = """;
; Archive created at 2025-01-01 02:00:00 UTC
;
2; 3079 16537 EXTENSION - pg_stat_statements{sp}
3443; 0 0 COMMENT - EXTENSION pg_stat_statements{sp}
4; 3079 16600 EXTENSION - pg_trgm{sp}
216; 1259 16426 TABLE public Account shop_app
220; 1259 16455 TABLE public Order shop_app
3433; 0 16455 TABLE DATA public Order shop_app
""".format(sp=" ")  # pg_restore --list ends extension lines with a space


def test_restore_list_skips_what_a_non_superuser_cannot_create():
    text, skipped = restore.restore_list(LISTING, superuser=False, trusted={"pg_trgm"})
    assert skipped == ["EXTENSION pg_stat_statements", "COMMENT ON EXTENSION pg_stat_statements"]
    lines = text.splitlines()
    assert ";2; 3079 16537 EXTENSION - pg_stat_statements " in lines
    assert "4; 3079 16600 EXTENSION - pg_trgm " in lines  # trusted: kept
    assert "220; 1259 16455 TABLE public Order shop_app" in lines
    text_su, skipped_su = restore.restore_list(LISTING, superuser=True, trusted=set())
    assert skipped_su == [] and text_su.strip() == LISTING.strip()


# --- the plain SQL filter ------------------------------------------------------------------------------

PLAIN = b"""--
-- PostgreSQL database dump
--
CREATE EXTENSION IF NOT EXISTS pg_stat_statements WITH SCHEMA public;
COMMENT ON EXTENSION pg_stat_statements IS 'track planning';
CREATE TABLE public."Order" (
    id text NOT NULL
);
ALTER TABLE public."Order" OWNER TO shop_app;
COPY public."Order" (id) FROM stdin;
GRANT ALL ON SCHEMA public TO everyone;
ALTER TABLE x OWNER TO y;
\\.
CREATE TABLE public.note (
    t text
);
GRANT SELECT ON TABLE public."Order" TO opsnb_maint;
"""


def _filtered(chunk_size: int) -> tuple[bytes, restore.PlainFilter]:
    filt = restore.PlainFilter(superuser=False, trusted=set())
    out = (
        b"".join(filt.feed(PLAIN[i : i + chunk_size]) for i in range(0, len(PLAIN), chunk_size))
        + filt.finish()
    )
    return out, filt


def test_plain_filter_skips_owner_grant_and_untrusted_extension_but_not_copy_data():
    out, filt = _filtered(len(PLAIN))
    lines = out.decode().splitlines()
    assert '-- opsnb skipped: ALTER TABLE public."Order" OWNER TO shop_app;' in lines
    assert '-- opsnb skipped: GRANT SELECT ON TABLE public."Order" TO opsnb_maint;' in lines
    assert lines[3].startswith("-- opsnb skipped: CREATE EXTENSION")
    # COPY data lines are data, even when they look like SQL
    assert "GRANT ALL ON SCHEMA public TO everyone;" in lines and "ALTER TABLE x OWNER TO y;" in lines
    assert filt.tables == ["public.Order", "public.note"]
    assert filt.skipped == [
        "CREATE EXTENSION IF NOT EXISTS pg_stat_statements",
        "COMMENT ON EXTENSION pg_stat_statements",
    ]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64])
def test_plain_filter_is_independent_of_chunk_boundaries(size):
    whole, _ = _filtered(len(PLAIN))
    assert _filtered(size)[0] == whole


def test_table_names_with_spaces_and_quotes_from_a_plain_dump():
    filt = restore.PlainFilter(superuser=True, trusted=set())
    filt.feed(
        b'CREATE TABLE public."we;ird ""na me""" (\n    id integer\n);\nCREATE TABLE public.plain (\n);\n'
    )
    filt.finish()
    assert filt.tables == ['public.we;ird "na me"', "public.plain"]


# --- restore_and_verify on a real cluster --------------------------------------------------------------


def _dump(pg_cluster, folder, fmt: str = "custom") -> dumps.Dump:
    return dumps.dump_database("OPSNB_TEST_SRC_URL", folder, fmt=fmt, pg_bindir=str(pg_cluster.bindir))


def _restore(pg_cluster, path, **kwargs) -> restore.RestoreResult:
    return restore.restore_and_verify(
        path, maint_database_url_env="OPSNB_TEST_MAINT_URL", pg_bindir=str(pg_cluster.bindir), **kwargs
    )


def test_restore_and_verify_reads_the_restored_data_and_drops(pg_cluster, source_db, folder, scratch_left):
    dump = _dump(pg_cluster, folder)
    result = _restore(
        pg_cluster, dump.path, amcheck=True, freshness_table="Order", freshness_column="createdAt"
    )
    assert result.restored, result.error
    assert sorted(result.expected_tables) == ["public.Order", "public.Product", "public.User"]
    assert result.missing_tables == [] and set(result.expected_tables) <= set(result.found_tables)
    assert result.restored_counts == {"Product": 50, "Order": 300, "User": 20}
    assert result.newest.value is not None and result.newest.missing == ""
    assert result.amcheck.status == "clean"  # superuser: amcheck can be installed in the scratch db
    assert result.dropped and scratch_left() == []
    assert set(result.phases) == {"create", "restore", "verify", "drop"}
    restore.check_restore(result)
    (c,) = findings.all_conclusions()
    assert (c.check, c.status) == ("restore.restore", "pass") and c.title.startswith("The backup restored in")
    assert c.detail.startswith("custom archive of") and result.scratch in c.detail


def test_failed_restore_reports_pg_restore_and_still_drops(pg_cluster, source_db, folder, scratch_left):
    dump = _dump(pg_cluster, folder)
    data = open(dump.path, "rb").read()
    broken = folder / "broken.dump"
    broken.write_bytes(data[: len(data) * 2 // 3])
    result = _restore(pg_cluster, str(broken))
    assert not result.restored and result.error and "pg_restore: error:" in result.error
    assert result.dropped and scratch_left() == []
    restore.check_restore(result)
    (c,) = findings.all_conclusions()
    assert (c.status, c.severity) == ("fail", "P1") and c.title.startswith(
        "The restore failed: pg_restore: error:"
    )
    assert "pg_restore: error:" in c.detail and findings.verdict() == "FAIL"


def test_plain_gzip_restore_through_psql(pg_cluster, source_db, folder, scratch_left):
    dump = _dump(pg_cluster, folder, "plain-gzip")
    result = _restore(pg_cluster, dump.path)
    assert result.restored and result.format == "gzip", result.error
    assert sorted(result.expected_tables) == ["public.Order", "public.Product", "public.User"]
    assert result.dropped and scratch_left() == []


def test_truncated_gzip_fails_even_if_psql_swallowed_a_prefix(pg_cluster, source_db, folder, scratch_left):
    dump = _dump(pg_cluster, folder, "plain-gzip")
    data = open(dump.path, "rb").read()
    cut = folder / "cut.sql.gz"
    cut.write_bytes(data[: len(data) // 2])
    result = _restore(pg_cluster, str(cut))
    assert not result.restored and "EOFError" in (result.error or "")
    assert result.dropped and scratch_left() == []


def test_a_file_that_is_no_dump_fails(pg_cluster, source_db, folder):
    junk = folder / "junk.bin"
    junk.write_bytes(b"\x00\x01not a dump")
    result = _restore(pg_cluster, str(junk))
    assert "not a pg_dump archive, gzip or SQL file" in result.error and result.dropped


def test_refused_target_never_connects(folder):
    dump = folder / "x.dump"
    dump.write_bytes(b"PGDMP" + b"\0" * 100)
    # the maint variable does not exist: any connection attempt would be "blocked", not "refused"
    result = restore.restore_and_verify(
        str(dump), maint_database_url_env="OPSNB_TEST_UNSET_VAR", scratch_database="shop"
    )
    assert result.refused and "not a scratch database of this run" in result.refused
    assert not result.restored and result.phases == {} and result.blocked is None
    restore.check_restore(result)
    (c,) = findings.all_conclusions()
    assert c.status == "inconclusive" and "restore.scratch-name" in c.detail


def test_no_verified_file_restores_nothing():
    result = restore.restore_and_verify(None, maint_database_url_env="OPSNB_TEST_UNSET_VAR")
    assert result.not_run and result.phases == {}
    restore.check_restore(result)
    (c,) = findings.all_conclusions()
    assert c.status == "inconclusive" and c.essential and "restore.checksum" in c.detail


def test_a_maint_role_that_cannot_connect_is_a_blind_spot_not_a_broken_backup(folder):
    dump = folder / "x.dump"
    dump.write_bytes(b"PGDMP" + b"\0" * 100)
    result = restore.restore_and_verify(str(dump), maint_database_url_env="OPSNB_TEST_UNSET_VAR")
    assert result.blocked and "OPSNB_TEST_UNSET_VAR" in result.blocked and "create" not in result.phases
    restore.check_restore(result)
    (c,) = findings.all_conclusions()
    assert c.status == "inconclusive" and findings.verdict() == "WARN"


def test_rto_of_a_restore(pg_cluster, source_db, folder):
    dump = _dump(pg_cluster, folder)
    (folder / download.DOWNLOAD_RECORD).write_text(
        json.dumps({"key": "k", "path": dump.path, "bytes": dump.size, "seconds": 0.5, "sha256": dump.sha256})
    )
    result = _restore(pg_cluster, dump.path)
    fig = restore.check_rto(result, folder)
    (c,) = findings.all_conclusions()
    assert (c.check, c.status) == ("restore.rto", "pass") and c.title.startswith(
        "Recovery from this backup takes"
    )
    assert "download 0.5 s" in c.detail and fig.axes[0].get_xlabel() == "seconds"
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == [
        "download",
        "create",
        "restore",
        "verify",
        "drop",
    ]


def test_no_rto_without_a_restore(folder):
    result = restore.RestoreResult(scratch="opsnb_restore_a1b2c3d4e5", error="boom")
    assert restore.check_rto(result, folder) is None
    (c,) = findings.all_conclusions()
    assert c.status == "inconclusive" and not c.essential
