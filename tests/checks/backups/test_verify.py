"""opsnb.checks.backups.verify on real restores: the archive's tables, key-table row counts against the source
(names looked up in the catalog, never SQL), how recent the restored data is — from a table and column that
are parameters, also in a database that is not the shop — and pg_amcheck."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest
from psycopg import sql

from opsnb.checks import findings
from opsnb.checks.backups import dumps, inventory, restore, verify

# the key_tables value, completed so that pasted into 'SELECT count(*) FROM "{t}"' it runs: it ends
# the count, lifts the session's read-only default, commits and changes a row of the source database
INJECTION = (
    'Product" WHERE false; SET default_transaction_read_only = off; COMMIT; '
    'UPDATE "Product" SET id = -id WHERE id = 1; SELECT count(*) FROM "Product'
)
WEIRD = 'we;ird "na me"'
SCRATCH = "opsnb_restore_a1b2c3d4e5"


def _restore(pg_cluster, folder, fmt: str = "custom", **kwargs) -> restore.RestoreResult:
    dump = dumps.dump_database("OPSNB_TEST_SRC_URL", folder, fmt=fmt, pg_bindir=str(pg_cluster.bindir))
    result = restore.restore_and_verify(
        dump.path, maint_database_url_env="OPSNB_TEST_MAINT_URL", pg_bindir=str(pg_cluster.bindir), **kwargs
    )
    assert result.restored and result.dropped, result.error
    return result


def _only(check: str):
    (c,) = [c for c in findings.all_conclusions() if c.check == check]
    return c


def _product_checksum(url: str) -> str:
    with psycopg.connect(url) as conn:
        return conn.execute(
            """SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM "Product" t"""
        ).fetchone()[0]


def test_key_table_names_from_the_cli_string():
    assert verify.key_table_names("Product, audit.Event,,Product") == ["Product", "audit.Event"]
    with pytest.raises(TypeError):
        verify.key_table_names([1])


# --- tables --------------------------------------------------------------------------------------------------


def test_tables_pass_and_missing_tables_are_p1(pg_cluster, source_db, folder):
    result = _restore(pg_cluster, folder)
    verify.check_tables(result)
    assert _only("restore.tables").title == "All 3 tables of the backup exist in the restored database"
    result.found_tables.remove("public.User")  # as if the restore had lost it
    table = verify.check_tables(result)
    c = _only("restore.tables")
    assert (c.status, c.severity, c.detail) == ("fail", "P1", "public.User")
    assert not table.set_index("table").loc["public.User", "restored"]


def test_an_archive_without_tables_is_not_a_pass():
    result = restore.RestoreResult(scratch=SCRATCH, phases={"restore": 0.1})
    verify.check_tables(result)
    c = _only("restore.tables")
    assert (c.status, c.severity, c.title) == ("warn", "P2", "The backup holds no table")


def test_nothing_restored_is_nothing_verified():
    result = restore.RestoreResult(scratch=SCRATCH, error="pg_restore: error: boom")
    for judge in (verify.check_tables, verify.check_row_counts, verify.check_amcheck):
        assert judge(result) is None
    assert {c.status for c in findings.all_conclusions()} == {"inconclusive"}
    assert all("restore.restore says why" in c.detail for c in findings.all_conclusions())


# --- row counts -------------------------------------------------------------------------------------------


def test_counts_within_tolerance_pass(pg_cluster, source_db, folder):
    result = _restore(pg_cluster, folder)
    table = verify.check_row_counts(result, "OPSNB_TEST_SRC_URL")
    c = _only("restore.counts")
    assert c.status == "pass" and c.detail == "Product=50, Order=300, User=20"
    assert table["source"].tolist() == [50, 300, 20]


def test_counts_off_against_source_fail(pg_cluster, source_db, folder):
    result = _restore(pg_cluster, folder)
    with psycopg.connect(source_db, autocommit=True) as conn:
        conn.execute(
            'INSERT INTO "Product" SELECT generate_series(51, 100)'
        )  # source doubled since the backup
    table = verify.check_row_counts(result, "OPSNB_TEST_SRC_URL", row_tolerance=0.05)
    bad = table[~table["ok"]]
    assert list(bad["table"]) == ["Product"] and int(bad["source"].iloc[0]) == 100
    c = _only("restore.counts")
    assert (c.status, c.severity, c.title) == ("fail", "P1", "Row counts off after the restore: Product")


def test_without_a_source_the_minimums_judge(pg_cluster, source_db, folder):
    result = _restore(pg_cluster, folder)
    verify.check_row_counts(result, "", min_rows=30)
    c = _only("restore.counts")
    assert c.status == "fail" and c.title.endswith("User")  # 20 rows < 30
    verify.check_row_counts(result, "", min_rows=1)
    assert _only("restore.counts").title == "Row counts of the key tables are as expected (at least 1 row(s))"


def test_an_unreachable_source_is_a_blind_spot_not_a_pass(pg_cluster, source_db, folder, monkeypatch):
    result = _restore(pg_cluster, folder)
    monkeypatch.setenv("OPSNB_TEST_DEAD_SRC", "postgresql://nobody:x@127.0.0.1:9/src?connect_timeout=2")
    assert verify.check_row_counts(result, "OPSNB_TEST_DEAD_SRC") is None
    c = _only("restore.counts")
    assert c.status == "inconclusive" and c.essential and "could not count the key tables" in c.detail
    verify.check_row_counts(result, "OPSNB_TEST_DEAD_SRC", min_rows=30)  # what is visibly wrong still fails
    assert _only("restore.counts").status == "fail"


def test_a_source_table_the_reader_may_not_read_is_a_blind_spot(pg_cluster, source_db, folder, monkeypatch):
    result = _restore(pg_cluster, folder)
    with psycopg.connect(source_db, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS opsnb_unit_reader")
        conn.execute("CREATE ROLE opsnb_unit_reader LOGIN PASSWORD 'unit-reader-pw'")
        conn.execute('GRANT SELECT ON "Order", "User" TO opsnb_unit_reader')  # not "Product"
    monkeypatch.setenv(
        "OPSNB_TEST_READER_URL", pg_cluster.postgres.dsn("opsnb_unit_reader", "unit-reader-pw", "src")
    )
    try:
        table = verify.check_row_counts(result, "OPSNB_TEST_READER_URL")
    finally:
        with psycopg.connect(source_db, autocommit=True) as conn:
            conn.execute("DROP OWNED BY opsnb_unit_reader; DROP ROLE opsnb_unit_reader")
    assert table is None  # inconclusive: a count it could not read never passes
    c = _only("restore.counts")
    assert c.status == "inconclusive" and "could not count Product in the source database src" in c.detail
    assert "pg_read_all_data" in c.detail


def test_injected_key_table_changes_nothing_and_is_reported_unknown(pg_cluster, source_db, folder):
    before = _product_checksum(source_db)
    result = _restore(pg_cluster, folder, key_tables=["Product", INJECTION])
    table = verify.check_row_counts(result, "OPSNB_TEST_SRC_URL")
    assert _product_checksum(source_db) == before  # no row of the source changed
    counts = table.set_index("table")
    assert counts.loc["Product", "restored"] == 50 and counts.loc["Product", "ok"]
    assert counts.loc[INJECTION, "rule"] == "unknown table" and counts.loc[INJECTION, "restored"] == -1
    c = _only("restore.counts")
    # a wrong name is not a broken backup: P2, not P1
    assert (c.status, c.severity) == (
        "warn",
        "P2",
    ) and c.title == "1 key table(s) not found in the source database"
    assert c.detail.startswith(f'table "{INJECTION}" does not exist in database src')


@pytest.mark.parametrize("fmt", ["custom", "plain-gzip"])
def test_odd_and_schema_qualified_key_tables_are_counted(pg_cluster, source_db, folder, fmt):
    with psycopg.connect(source_db, autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "CREATE TABLE {weird} (id int primary key); INSERT INTO {weird} SELECT generate_series(1, 7);"
                "CREATE SCHEMA audit; CREATE TABLE audit.{event} (id int primary key);"
                "INSERT INTO audit.{event} SELECT generate_series(1, 12)"
            ).format(weird=sql.Identifier(WEIRD), event=sql.Identifier("Event"))
        )
    result = _restore(pg_cluster, folder, fmt, key_tables=[WEIRD, "audit.Event", "public.Order"])
    assert {"audit.Event", f"public.{WEIRD}"} <= set(result.expected_tables) and result.missing_tables == []
    table = verify.check_row_counts(result, "OPSNB_TEST_SRC_URL")
    rows = {r["table"]: (r["restored"], r["source"], r["ok"]) for r in table.to_dict("records")}
    assert rows == {WEIRD: (7, 7, True), "audit.Event": (12, 12, True), "public.Order": (300, 300, True)}
    assert _only("restore.counts").status == "pass"


def test_key_table_missing_from_the_restore_is_still_p1(pg_cluster, source_db, folder):
    result = _restore(pg_cluster, folder, key_tables=["Late"])
    with psycopg.connect(source_db, autocommit=True) as conn:
        conn.execute('CREATE TABLE "Late" (id int); INSERT INTO "Late" VALUES (1)')  # after the backup
    verify.check_row_counts(result, "OPSNB_TEST_SRC_URL")
    c = _only("restore.counts")
    assert (c.status, c.severity) == ("fail", "P1")
    assert f'table "Late" does not exist in database {result.scratch}' in c.detail


# --- freshness ------------------------------------------------------------------------------------------------


def _taken(folder, when: dt.datetime) -> None:
    inventory.Backup("b", "nightly/x.dump", 1, when, "metadata created-at", 1.0).save(folder)


def test_freshness_against_the_backup_time(pg_cluster, source_db, folder):
    result = _restore(pg_cluster, folder, freshness_table="Order", freshness_column="createdAt")
    newest = result.newest.value
    _taken(folder, newest + dt.timedelta(hours=30))
    table = verify.check_freshness(result, folder, max_lag_h=24)
    c = _only("restore.freshness")
    assert (c.status, c.severity, c.title) == (
        "warn",
        "P2",
        "The restored data is 30.0 h older than the backup",
    )
    assert table["lag_h"].tolist() == [30.0]
    _taken(folder, newest + dt.timedelta(hours=2))
    verify.check_freshness(result, folder, max_lag_h=24)
    assert _only("restore.freshness").title == 'The newest "Order"."createdAt" is 2.0 h older than the backup'


@pytest.mark.parametrize(
    ("table", "column", "title"),
    [
        ("Nope", "createdAt", 'Table "Nope" does not exist in the restored database'),
        ("Order", "placedAt", 'Column "placedAt" does not exist in table "Order" of the restored database'),
        ("Order", "id", 'Column "Order"."id" holds int, not a date or time'),
    ],
)
def test_a_missing_freshness_table_or_column_is_reported_as_missing(
    pg_cluster, source_db, folder, table, column, title
):
    result = _restore(pg_cluster, folder, freshness_table=table, freshness_column=column)
    _taken(folder, dt.datetime.now(dt.UTC))
    verify.check_freshness(result, folder)
    c = _only("restore.freshness")
    assert (c.status, c.severity, c.title) == ("warn", "P2", title)


def test_freshness_can_be_skipped_and_never_passes_on_an_empty_table(pg_cluster, source_db, folder):
    result = _restore(pg_cluster, folder)  # no freshness_table
    verify.check_freshness(result, folder)
    c = _only("restore.freshness")
    assert c.status == "inconclusive" and not c.essential and "freshness_table is empty" in c.title
    assert findings.verdict() == "PASS"
    with psycopg.connect(source_db, autocommit=True) as conn:
        conn.execute('DELETE FROM "Order"')
    result = _restore(pg_cluster, folder, freshness_table="Order", freshness_column="createdAt")
    _taken(folder, dt.datetime.now(dt.UTC))
    verify.check_freshness(result, folder)
    c = _only("restore.freshness")
    assert c.status == "inconclusive" and "has no value" in c.detail


def test_freshness_of_a_database_that_is_not_the_shop(pg_cluster, source_db, folder, scratch_left):
    """Another application's backup: its own schema, table and date column (no "Order" anywhere)."""
    with psycopg.connect(source_db, autocommit=True) as conn:
        conn.execute('DROP TABLE "Order"')
        conn.execute(
            "CREATE SCHEMA ledger; CREATE TABLE ledger.entries (id int primary key, booked date not null);"
            "INSERT INTO ledger.entries SELECT g, current_date - g FROM generate_series(0, 9) g"
        )
    result = _restore(
        pg_cluster,
        folder,
        key_tables=["ledger.entries"],
        freshness_table="ledger.entries",
        freshness_column="booked",
    )
    _taken(folder, dt.datetime.now(dt.UTC))
    verify.check_freshness(result, folder, max_lag_h=48)
    verify.check_row_counts(result, "OPSNB_TEST_SRC_URL")
    assert _only("restore.freshness").status == "pass"
    assert _only("restore.counts").detail == "ledger.entries=10"
    assert scratch_left() == []


# --- pg_amcheck ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("run", "status", "severity"),
    [
        (verify.AmcheckRun("clean", "no corruption found"), "pass", "info"),
        (verify.AmcheckRun("corrupt", 'heap table "public.x": block 3 is bad'), "fail", "P1"),
        (
            verify.AmcheckRun("unavailable", 'permission denied to create extension "amcheck"'),
            "inconclusive",
            "info",
        ),
        (None, "inconclusive", "info"),
    ],
)
def test_amcheck_verdicts(run, status, severity):
    result = restore.RestoreResult(scratch=SCRATCH, phases={"restore": 0.1}, amcheck=run)
    verify.check_amcheck(result)
    c = _only("restore.amcheck")
    assert (c.status, c.severity) == (status, severity) and not c.essential


def test_amcheck_as_a_role_that_cannot_install_it_is_unavailable(pg_cluster, source_db, folder, monkeypatch):
    with psycopg.connect(pg_cluster.dsn, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS opsnb_unit_maint")
        conn.execute("CREATE ROLE opsnb_unit_maint LOGIN CREATEDB PASSWORD 'unit-maint-pw'")
    monkeypatch.setenv(
        "OPSNB_TEST_MAINT_URL", pg_cluster.postgres.dsn("opsnb_unit_maint", "unit-maint-pw", "postgres")
    )
    try:
        result = _restore(pg_cluster, folder, amcheck=True)
    finally:
        with psycopg.connect(pg_cluster.dsn, autocommit=True) as conn:
            conn.execute("DROP ROLE opsnb_unit_maint")  # it owns nothing: its scratch database is gone
    assert result.amcheck.status == "unavailable" and "amcheck" in result.amcheck.output
