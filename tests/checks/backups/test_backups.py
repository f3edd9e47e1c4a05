"""opsnb.checks.backups: the scratch guard, formats, TOC filtering, the plain-SQL filter, times, children, and the
restore-and-verify cleanup on a real cluster (a failed restore still drops its scratch database)."""

from __future__ import annotations

import datetime as dt
import gzip
import os
import sys

import psycopg
import pytest
from psycopg import sql

from opsnb.checks import backups, findings


@pytest.fixture(autouse=True)
def _fresh(monkeypatch):
    findings.clear()
    monkeypatch.setenv("OPSNB_RUN_ID", "a1b2c3d4e5")
    yield
    findings.clear()


# --- the guard -----------------------------------------------------------------------------------------


def test_scratch_name_carries_the_run_id():
    assert backups.scratch_name() == "opsnb_restore_a1b2c3d4e5"
    assert backups.scratch_prefix("Run-42/X") == "opsnb_restore_run_42_x"
    assert backups.guard_scratch(backups.scratch_name()) == "opsnb_restore_a1b2c3d4e5"
    assert backups.guard_scratch("opsnb_restore_a1b2c3d4e5_2") == "opsnb_restore_a1b2c3d4e5_2"


@pytest.mark.parametrize(
    "name",
    [
        "shop",
        "postgres",
        "template1",
        "opsnb_restore_",  # the bare prefix of no run
        "opsnb_restore_otherrun01",  # another run's scratch database
        "x_opsnb_restore_a1b2c3d4e5",
        'opsnb_restore_a1b2c3d4e5"; DROP DATABASE shop; --',
        "OPSNB_RESTORE_A1B2C3D4E5",
        "opsnb_restore_a1b2c3d4e5" + "x" * 60,  # longer than an identifier
        "",
    ],
)
def test_guard_refuses_anything_else(name):
    with pytest.raises(backups.RefusedDatabase):
        backups.guard_scratch(name)


def test_interactive_sessions_get_their_own_prefix(monkeypatch):
    monkeypatch.setenv("OPSNB_RUN_ID", "interactive")
    prefix = backups.scratch_prefix()
    assert prefix.startswith("opsnb_restore_interactive_") and len(prefix) > len("opsnb_restore_interactive_")
    with pytest.raises(backups.RefusedDatabase):
        backups.guard_scratch("opsnb_restore_interactive")


def test_refused_target_never_connects(tmp_path):
    dump = tmp_path / "x.dump"
    dump.write_bytes(b"PGDMP" + b"\0" * 100)
    # the maint variable does not exist: any connection attempt would raise MissingSecret
    result = backups.restore_and_verify(
        str(dump), maint_database_url_env="OPSNB_TEST_UNSET_VAR", scratch_database="shop"
    )
    assert result.refused and "not a scratch database of this run" in result.refused
    assert not result.restored and result.phases == {}
    (f,) = [f for f in findings.all_findings() if f.severity == "P1"]
    assert f.title.startswith("restore refused")


# --- formats and TOC -----------------------------------------------------------------------------------


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
        got[name] = backups.detect_format(tmp_path / name)
    assert got == {"a.dump": "custom", "b.sql.gz": "gzip", "c.sql": "plain", "d.bin": "unknown"}


LISTING = """;
; Archive created at 2025-01-01 02:00:00 UTC
;
2; 3079 16537 EXTENSION - pg_stat_statements{sp}
3443; 0 0 COMMENT - EXTENSION pg_stat_statements{sp}
4; 3079 16600 EXTENSION - pg_trgm{sp}
216; 1259 16426 TABLE public Account shop_app
3444; 0 0 ACL public TABLE "Account" shop_app
220; 1259 16455 TABLE public Order shop_app
3433; 0 16455 TABLE DATA public Order shop_app
3300; 2606 16500 CONSTRAINT public Order Order_pkey shop_app
""".format(sp=" ")  # pg_restore --list ends extension lines with a space


def test_parse_toc_and_restore_list():
    toc = backups.parse_toc(LISTING)
    assert [(e["desc"], e["name"]) for e in toc if e["desc"] in ("TABLE", "TABLE DATA")] == [
        ("TABLE", "Account"),
        ("TABLE", "Order"),
        ("TABLE DATA", "Order"),
    ]
    text, skipped = backups.restore_list(LISTING, superuser=False, trusted={"pg_trgm"})
    assert skipped == ["EXTENSION pg_stat_statements", "COMMENT ON EXTENSION pg_stat_statements"]
    lines = text.splitlines()
    assert ";2; 3079 16537 EXTENSION - pg_stat_statements " in lines
    assert "4; 3079 16600 EXTENSION - pg_trgm " in lines  # trusted: kept
    assert "220; 1259 16455 TABLE public Order shop_app" in lines
    text_su, skipped_su = backups.restore_list(LISTING, superuser=True, trusted=set())
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


def _filtered(chunk_size: int) -> tuple[bytes, backups.PlainFilter]:
    filt = backups.PlainFilter(superuser=False, trusted=set())
    out = (
        b"".join(filt.feed(PLAIN[i : i + chunk_size]) for i in range(0, len(PLAIN), chunk_size))
        + filt.finish()
    )
    return out, filt


def test_table_names_with_spaces_and_quotes_from_toc_and_plain_dump():
    listing = '215; 1259 16386 TABLE public we;ird "na me" app\n216; 0 16386 TABLE DATA public Order app\n'
    assert [(e["schema"], e["name"]) for e in backups.parse_toc(listing) if e["desc"] == "TABLE"] == [
        ("public", 'we;ird "na me"')
    ]
    filt = backups.PlainFilter(superuser=True, trusted=set())
    filt.feed(
        b'CREATE TABLE public."we;ird ""na me""" (\n    id integer\n);\nCREATE TABLE public.plain (\n);\n'
    )
    filt.finish()
    assert filt.tables == ['public.we;ird "na me"', "public.plain"]


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


# --- times, keys, metadata -----------------------------------------------------------------------------


def test_backup_time_precedence():
    lm = dt.datetime(2025, 3, 3, 3, 3, 3, tzinfo=dt.UTC)
    meta = {"created-at": "2025-01-01T02:00:00Z"}
    assert backups.backup_time("nightly/shop-20250202T020000Z.dump", lm, meta) == (
        dt.datetime(2025, 1, 1, 2, tzinfo=dt.UTC),
        "metadata created-at",
    )
    assert backups.backup_time("nightly/shop-20250202T020000Z.dump", lm, {})[1] == "key timestamp"
    assert backups.backup_time("backup_20250202_020000.sql.gz", lm)[0] == dt.datetime(
        2025, 2, 2, 2, tzinfo=dt.UTC
    )
    assert backups.backup_time("latest.sql.gz", lm) == (lm, "LastModified")


def test_resolve_now_and_prefix():
    assert backups.resolve_now("2025-01-31T02:00:00Z") == dt.datetime(2025, 1, 31, 2, tzinfo=dt.UTC)
    with pytest.raises(ValueError):
        backups.resolve_now("yesterday")
    assert backups.normalize_prefix("/nightly") == "nightly/" and backups.normalize_prefix("") == ""


def test_object_metadata_and_names(tmp_path):
    path = tmp_path / "f.dump"
    path.write_bytes(b"PGDMP123")
    when = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    meta = backups.object_metadata(path, "custom", when)
    assert meta == {
        "sha256": backups.sha256_file(path),
        "size": "8",
        "created-at": "2025-01-02T03:04:05Z",
        "format": "custom",
    }
    assert backups.backup_filename("custom", when) == "backup_20250102_030405.dump"
    assert backups.backup_filename("plain-gzip", when) == "backup_20250102_030405.sql.gz"
    assert backups.is_backup_key("a/b.dump") and not backups.is_backup_key("a/b.dump.manifest.json")


# --- children ------------------------------------------------------------------------------------------


def test_run_child_timeout_kills():
    cmd = [sys.executable, "-c", "import time; time.sleep(30)"]
    with pytest.raises(backups.ChildFailed) as err:
        backups.run_child(cmd, env=dict(os.environ), timeout_s=0.5)
    assert err.value.timed_out


def test_run_child_failure_keeps_the_tools_own_words():
    cmd = [
        sys.executable,
        "-c",
        "import sys; sys.stderr.write('pg_restore: error: could not find block ID 7\\n'); sys.exit(1)",
    ]
    with pytest.raises(backups.ChildFailed) as err:
        backups.run_child(cmd, env=dict(os.environ), timeout_s=10)
    assert err.value.stderr == "pg_restore: error: could not find block ID 7"
    assert "could not find block ID 7" in str(err.value)


def test_libpq_env_keeps_the_password_off_the_command_line(monkeypatch):
    monkeypatch.setenv("PGSERVICE", "inherited")
    env = backups.libpq_env(
        "postgresql://u:s3cr%40t@db.example:6543/shop?sslmode=require", dbname="opsnb_restore_a1b2c3d4e5"
    )
    assert env["PGPASSWORD"] == "s3cr@t" and env["PGHOST"] == "db.example" and env["PGPORT"] == "6543"
    assert env["PGDATABASE"] == "opsnb_restore_a1b2c3d4e5" and env["PGSSLMODE"] == "require"
    assert "PGSERVICE" not in env


# --- restore_and_verify on a real cluster --------------------------------------------------------------


@pytest.fixture
def source_db(pg_cluster, monkeypatch):
    """A small database 'src' with "Product"/"Order"/"User", and env vars for it and a maint URL."""
    with psycopg.connect(pg_cluster.dsn, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS src")
        conn.execute("CREATE DATABASE src")
    src = pg_cluster.dsn_for("src")
    with psycopg.connect(src, autocommit=True) as conn:
        conn.execute(
            'CREATE TABLE "Product" (id int primary key); INSERT INTO "Product" SELECT generate_series(1, 50)'
        )
        conn.execute(
            'CREATE TABLE "User" (id int primary key); INSERT INTO "User" SELECT generate_series(1, 20)'
        )
        conn.execute(
            'CREATE TABLE "Order" (id int primary key, "createdAt" timestamp(3) not null);'
            "INSERT INTO \"Order\" SELECT g, now() - g * interval '1 minute' FROM generate_series(1, 300) g"
        )
    monkeypatch.setenv("OPSNB_TEST_SRC_URL", src)
    monkeypatch.setenv("OPSNB_TEST_MAINT_URL", pg_cluster.dsn)
    return src


def _scratch_dbs(pg_cluster) -> list[str]:
    with psycopg.connect(pg_cluster.dsn, autocommit=True) as conn:
        return [
            r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'opsnb_restore_%'")
        ]


def _dump(pg_cluster, tmp_path):
    return backups.dump_database("OPSNB_TEST_SRC_URL", tmp_path, pg_bindir=str(pg_cluster.bindir))


def test_restore_and_verify_passes_and_drops(pg_cluster, source_db, tmp_path):
    dump = _dump(pg_cluster, tmp_path)
    result = backups.restore_and_verify(
        dump.path,
        maint_database_url_env="OPSNB_TEST_MAINT_URL",
        database_url_env="OPSNB_TEST_SRC_URL",
        pg_bindir=str(pg_cluster.bindir),
        amcheck=True,
    )
    assert result.error is None and result.restored, result.error
    assert sorted(result.expected_tables) == ["public.Order", "public.Product", "public.User"]
    assert result.missing_tables == []
    assert dict(zip(result.counts["table"], result.counts["restored"], strict=True)) == {
        "Product": 50,
        "Order": 300,
        "User": 20,
    }
    assert result.counts["ok"].all()
    assert result.amcheck == "no corruption found"  # superuser: amcheck can be installed in the scratch db
    assert result.dropped and _scratch_dbs(pg_cluster) == []
    assert set(result.phases) == {"create", "restore", "verify", "drop"}
    assert findings.verdict() == "PASS"


def test_failed_restore_reports_pg_restore_and_still_drops(pg_cluster, source_db, tmp_path):
    dump = _dump(pg_cluster, tmp_path)
    data = open(dump.path, "rb").read()
    broken = tmp_path / "broken.dump"
    broken.write_bytes(data[: len(data) * 2 // 3])
    result = backups.restore_and_verify(
        str(broken), maint_database_url_env="OPSNB_TEST_MAINT_URL", pg_bindir=str(pg_cluster.bindir)
    )
    assert not result.restored and result.error and "pg_restore: error:" in result.error
    assert result.dropped and _scratch_dbs(pg_cluster) == []
    (failed,) = [f for f in findings.all_findings() if f.title == "restore FAILED"]
    assert failed.severity == "P1" and "pg_restore: error:" in failed.detail
    assert findings.verdict() == "FAIL"


def test_counts_off_against_source_fail(pg_cluster, source_db, tmp_path):
    dump = _dump(pg_cluster, tmp_path)
    with psycopg.connect(source_db, autocommit=True) as conn:
        conn.execute(
            'INSERT INTO "Product" SELECT generate_series(51, 100)'
        )  # source doubled since the backup
    result = backups.restore_and_verify(
        dump.path,
        maint_database_url_env="OPSNB_TEST_MAINT_URL",
        database_url_env="OPSNB_TEST_SRC_URL",
        pg_bindir=str(pg_cluster.bindir),
        row_tolerance=0.05,
    )
    assert result.restored
    bad = result.counts[~result.counts["ok"]]
    assert list(bad["table"]) == ["Product"] and int(bad["source"].iloc[0]) == 100
    assert any(
        f.title == "row counts off after restore" and f.severity == "P1" for f in findings.all_findings()
    )
    assert _scratch_dbs(pg_cluster) == []


def test_plain_gzip_restore_through_psql(pg_cluster, source_db, tmp_path):
    dump = backups.dump_database(
        "OPSNB_TEST_SRC_URL", tmp_path, fmt="plain-gzip", pg_bindir=str(pg_cluster.bindir)
    )
    assert backups.detect_format(dump.path) == "gzip"
    result = backups.restore_and_verify(
        dump.path, maint_database_url_env="OPSNB_TEST_MAINT_URL", pg_bindir=str(pg_cluster.bindir)
    )
    assert result.restored, result.error
    assert sorted(result.expected_tables) == ["public.Order", "public.Product", "public.User"]
    assert result.counts["ok"].all()  # no source given: minimums
    assert result.dropped and _scratch_dbs(pg_cluster) == []


def test_truncated_gzip_fails_even_if_psql_swallowed_a_prefix(pg_cluster, source_db, tmp_path):
    dump = backups.dump_database(
        "OPSNB_TEST_SRC_URL", tmp_path, fmt="plain-gzip", pg_bindir=str(pg_cluster.bindir)
    )
    data = open(dump.path, "rb").read()
    cut = tmp_path / "cut.sql.gz"
    cut.write_bytes(data[: len(data) // 2])
    result = backups.restore_and_verify(
        str(cut), maint_database_url_env="OPSNB_TEST_MAINT_URL", pg_bindir=str(pg_cluster.bindir)
    )
    assert not result.restored and "EOFError" in (result.error or "")
    assert result.dropped and _scratch_dbs(pg_cluster) == []


def test_freshness_uses_the_backup_time():
    result = backups.RestoreResult(scratch="opsnb_restore_a1b2c3d4e5", phases={"restore": 1.0})
    taken = dt.datetime(2025, 1, 10, 2, tzinfo=dt.UTC)
    backup = backups.Backup("b", "k", 1, taken, "metadata created-at", 1.0)
    result.newest_order = taken - dt.timedelta(hours=30)
    assert backups.check_freshness(result, backup, max_order_lag_h=24)["lag_h"] == 30.0
    assert [f.severity for f in findings.all_findings()] == ["P2"]
    findings.clear()
    result.newest_order = taken - dt.timedelta(hours=2)
    backups.check_freshness(result, backup, max_order_lag_h=24)
    assert findings.verdict() == "PASS"


def test_verify_dump_flags_an_unreadable_dump(tmp_path):
    path = tmp_path / "x.dump"
    path.write_bytes(b"not a dump")
    dump = backups.Dump(str(path), "custom", 10, "0" * 64, 0.1, dt.datetime.now(dt.UTC), "h:1/db")
    table = backups.verify_dump(dump)
    assert not table["ok"].all()
    assert findings.verdict() == "FAIL"


def test_pg_restore_missing_binary_is_a_child_failure(tmp_path):
    with pytest.raises(backups.ChildFailed) as err:
        backups.run_child(
            [str(tmp_path / "nope" / "pg_restore"), "--list"], env=dict(os.environ), timeout_s=5
        )
    assert "cannot start" in err.value.stderr


# --- key tables are names looked up in the catalog, never SQL ---------------------------------------------

# the key_tables value, completed so that pasted into 'SELECT count(*) FROM "{t}"' it runs: it ends
# the count, lifts the session's read-only default, commits and changes a row of the source database
INJECTION = (
    'Product" WHERE false; SET default_transaction_read_only = off; COMMIT; '
    'UPDATE "Product" SET id = -id WHERE id = 1; SELECT count(*) FROM "Product'
)
WEIRD = 'we;ird "na me"'


def _product_checksum(url: str) -> str:
    with psycopg.connect(url) as conn:
        return conn.execute(
            """SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM "Product" t"""
        ).fetchone()[0]


def _restore(pg_cluster, dump, key_tables):
    return backups.restore_and_verify(
        dump.path,
        maint_database_url_env="OPSNB_TEST_MAINT_URL",
        database_url_env="OPSNB_TEST_SRC_URL",
        pg_bindir=str(pg_cluster.bindir),
        key_tables=key_tables,
    )


def test_injected_key_table_changes_nothing_and_is_reported_unknown(pg_cluster, source_db, tmp_path):
    dump = _dump(pg_cluster, tmp_path)
    before = _product_checksum(source_db)
    result = _restore(pg_cluster, dump, ["Product", INJECTION])
    assert _product_checksum(source_db) == before  # no row of the source changed
    assert result.restored, result.error
    counts = result.counts.set_index("table")
    assert counts.loc["Product", "restored"] == 50 and counts.loc["Product", "ok"]
    assert counts.loc[INJECTION, "rule"] == "unknown table" and counts.loc[INJECTION, "restored"] == -1
    note = f'table "{INJECTION}" does not exist in database src'
    assert result.unknown_tables == [note]
    (unknown,) = [f for f in findings.all_findings() if f.title == "key table not found"]
    assert unknown.severity == "P2" and unknown.detail.startswith(note)
    titles = [f.title for f in findings.all_findings()]
    assert "row counts off after restore" not in titles  # a wrong name is not a broken backup
    assert "row counts of key tables as expected" in titles
    assert result.dropped and _scratch_dbs(pg_cluster) == []


@pytest.mark.parametrize("fmt", ["custom", "plain-gzip"])
def test_odd_and_schema_qualified_key_tables_are_counted(pg_cluster, source_db, tmp_path, fmt):
    with psycopg.connect(source_db, autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "CREATE TABLE {weird} (id int primary key); INSERT INTO {weird} SELECT generate_series(1, 7);"
                "CREATE SCHEMA audit; CREATE TABLE audit.{event} (id int primary key);"
                "INSERT INTO audit.{event} SELECT generate_series(1, 12)"
            ).format(weird=sql.Identifier(WEIRD), event=sql.Identifier("Event"))
        )
    dump = backups.dump_database("OPSNB_TEST_SRC_URL", tmp_path, fmt=fmt, pg_bindir=str(pg_cluster.bindir))
    result = _restore(pg_cluster, dump, [WEIRD, "audit.Event", "public.Order"])
    assert result.restored, result.error
    assert {"audit.Event", f"public.{WEIRD}"} <= set(result.expected_tables) and result.missing_tables == []
    rows = {r["table"]: (r["restored"], r["source"], r["ok"]) for r in result.counts.to_dict("records")}
    assert rows == {WEIRD: (7, 7, True), "audit.Event": (12, 12, True), "public.Order": (300, 300, True)}
    titles = [f.title for f in findings.all_findings()]
    assert "row counts of key tables as expected" in titles
    assert "row counts off after restore" not in titles and "key table not found" not in titles


def test_key_table_missing_from_the_restore_is_still_p1(pg_cluster, source_db, tmp_path):
    dump = _dump(pg_cluster, tmp_path)
    with psycopg.connect(source_db, autocommit=True) as conn:
        conn.execute('CREATE TABLE "Late" (id int); INSERT INTO "Late" VALUES (1)')  # after the backup
    result = _restore(pg_cluster, dump, ["Late"])
    (off,) = [f for f in findings.all_findings() if f.title == "row counts off after restore"]
    assert off.severity == "P1"
    assert f'table "Late" does not exist in database {result.scratch}' in off.detail


# --- leftovers of killed runs ----------------------------------------------------------------------------


def _dead_pid() -> int:
    import subprocess

    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_later_run_removes_what_a_killed_run_left(pg_cluster, monkeypatch, tmp_path) -> None:
    """A SIGKILLed kernel leaves its scratch database and download folder; the next run removes both,
    says so, and leaves a live run's alone."""
    import json
    import socket

    monkeypatch.setenv("OPSNB_TEST_MAINT_URL", pg_cluster.dsn)
    host = socket.gethostname()
    dead = {"host": host, "pid": _dead_pid(), "run": "killedrun01", "started": 0}
    alive = {"host": host, "pid": os.getpid(), "run": "liverun0001", "started": 0}
    with psycopg.connect(pg_cluster.dsn, autocommit=True) as conn:
        for name, owner in (("opsnb_restore_killedrun01", dead), ("opsnb_restore_liverun0001", alive)):
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            conn.execute(
                sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                    sql.Identifier(name), sql.Literal(json.dumps(owner))
                )
            )
    for name, owner in (("killedrun01-x", dead), ("liverun0001-y", alive)):
        folder = tmp_path / f"{backups.WORK_DIR_PREFIX}{name}"
        folder.mkdir()
        (folder / "backup.dump").write_bytes(b"PGDMP" + b"\0" * 100)
        (folder / backups.OWNER_FILE).write_text(json.dumps(owner))

    table = backups.remove_leftovers("OPSNB_TEST_MAINT_URL", str(tmp_path))

    assert sorted(table["name"].str.rsplit("/", n=1).str[-1]) == [
        "opsnb-restore-killedrun01-x",
        "opsnb_restore_killedrun01",
    ]
    assert not (tmp_path / "opsnb-restore-killedrun01-x").exists()
    assert (tmp_path / "opsnb-restore-liverun0001-y").exists()
    with psycopg.connect(pg_cluster.dsn, autocommit=True) as conn:
        names = {
            r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'opsnb_restore_%'")
        }
        conn.execute("DROP DATABASE opsnb_restore_liverun0001")
    assert names == {"opsnb_restore_liverun0001"}
    [c] = findings.all_conclusions()
    assert (
        c.check == "restore.interrupted-runs"
        and c.status == "pass"
        and c.title.startswith("Removed 2 leftover")
    )


def test_leftover_cleanup_never_touches_other_databases(pg_cluster, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("OPSNB_TEST_MAINT_URL", pg_cluster.dsn)
    with psycopg.connect(pg_cluster.dsn, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS shop_keep")
        conn.execute("CREATE DATABASE shop_keep")
        conn.execute('COMMENT ON DATABASE shop_keep IS \'{"host": "x", "pid": 1, "started": 0}\'')
    backups.remove_leftovers("OPSNB_TEST_MAINT_URL", str(tmp_path))
    with psycopg.connect(pg_cluster.dsn, autocommit=True) as conn:
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname = 'shop_keep'").fetchone()
        conn.execute("DROP DATABASE shop_keep")
    assert findings.all_conclusions()[0].title == "No leftovers of interrupted runs"
