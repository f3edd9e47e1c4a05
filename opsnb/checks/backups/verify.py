"""Verifying the restored data: the archive's tables exist, key tables hold the rows the source holds, the data
is as recent as the backup, and pg_amcheck finds no corruption.

Runbook "Backup Verification → 4. Verify data": ``SELECT COUNT(*) FROM "Product"`` / ``"Order"`` in the test
database. What the restored database holds is read while it exists, by ``restore_and_verify()`` through the
functions here (``restored_tables``, ``key_table_counts``, ``newest_value``, ``run_amcheck``); the checks
judge it afterwards, when the scratch database is already gone.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from psycopg import sql

from opsnb.checks import findings
from opsnb.checks.backups.inventory import chosen_backup
from opsnb.checks.backups.tools import ChildFailed, first_error, run_child, tool
from opsnb.checks.postgres import Database, DatabaseError, connect
from opsnb.checks.postgres.names import UnknownName, require_column, resolve_table
from opsnb.errors import OpsnbError

if TYPE_CHECKING:
    from opsnb.checks.backups.restore import RestoreResult

KEY_TABLES = ("Product", "Order", "User")  # the runbook counts "Product" and "Order"


def _restored(result: RestoreResult) -> RestoreResult:
    """``result`` when it restored something; CouldNotLook (nothing to verify) otherwise."""
    if not result.restored:
        raise findings.CouldNotLook("nothing was restored to verify", "restore.restore says why")
    return result


# --- what the restored database holds (read while it exists) ---------------------------------------------

RESTORED_TABLES_SQL = (
    "SELECT table_schema || '.' || table_name AS t FROM information_schema.tables "
    "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
)


def restored_tables(db: Database) -> list[str]:
    """Every table (and view) of the database as 'schema.name'."""
    return sorted(r["t"] for r in db.rows(RESTORED_TABLES_SQL))


def key_table_names(key_tables: Iterable[str] | str) -> list[str]:
    """The key tables as a list of names exactly as written (a single string is the CLI's comma-separated
    list); empty items and repeats dropped. TypeError for an item that is not a name."""
    items = key_tables.split(",") if isinstance(key_tables, str) else list(key_tables)
    names = []
    for item in items:
        name = item.strip() if isinstance(item, str) else item
        if not isinstance(name, str):
            raise TypeError(f"key_tables holds {type(name).__name__}, not a table name")
        if name and name not in names:
            names.append(name)
    return names


def key_table_counts(db: Database, tables: list[str]) -> dict[str, int | None]:
    """Row count of each table named in ``tables`` ("schema.table" or a name on the search path): None
    for a name the catalog does not know, -1 for a table that is there but could not be counted. The
    name is looked up with parameters and the count names the table the catalog returned: a name is never
    pasted into SQL, so one like 'Product" WHERE false; …' only fails to match."""
    counts: dict[str, int | None] = {}
    for name in tables:
        found = resolve_table(db, name)
        if found is None:
            counts[name] = None
            continue
        try:
            counts[name] = int(db.scalar(sql.SQL("SELECT count(*) FROM {}").format(found.ident)))
        except DatabaseError:  # e.g. no privilege on it: there, but not counted
            counts[name] = -1
    return counts


@dataclass
class Newest:
    """The newest value of a time column in the restored data (how recent the backup's data is)."""

    table: str
    column: str
    value: _dt.datetime | None = None
    missing: str = ""  # why there is no value: the table or column does not exist, or is not a time


def newest_value(db: Database, table: str, column: str) -> Newest:
    """``max(column)`` of ``table``, both looked up in the catalog first; a missing table or column is
    reported as missing, not as an error."""
    out = Newest(table, column)
    found = resolve_table(db, table)
    if found is None:
        out.missing = f'table "{table}" does not exist in the restored database'
        return out
    try:
        require_column(db, found, column)
    except UnknownName:
        out.missing = f'column "{column}" does not exist in table "{table}" of the restored database'
        return out
    value = db.scalar(sql.SQL("SELECT max({}) FROM {}").format(sql.Identifier(column), found.ident))
    if isinstance(value, _dt.date) and not isinstance(value, _dt.datetime):
        value = _dt.datetime.combine(value, _dt.time(), _dt.UTC)
    if value is not None and not isinstance(value, _dt.datetime):
        out.missing = f'column "{table}"."{column}" holds {type(value).__name__}, not a date or time'
        return out
    # timestamp without time zone: the shop (Prisma) writes UTC
    out.value = value.replace(tzinfo=_dt.UTC) if value is not None and value.tzinfo is None else value
    return out


@dataclass
class AmcheckRun:
    """What pg_amcheck said: status 'clean' | 'corrupt' | 'unavailable', and its output."""

    status: str
    output: str


def run_amcheck(
    env: dict[str, str], scratch: str, pg_bindir: str = "", timeout_s: float = 3600
) -> AmcheckRun:
    """``pg_amcheck --heapallindexed`` over the scratch database (installing amcheck there when the role may)."""
    cmd = [
        tool(pg_bindir, "pg_amcheck"),
        "--no-password",
        "--install-missing",
        "--heapallindexed",
        f"--database={scratch}",
    ]
    try:
        out = run_child(cmd, env=env, timeout_s=timeout_s)
    except ChildFailed as exc:
        text = exc.stderr or str(exc)
        if "permission denied to create extension" in text or "is not installed" in text:
            return AmcheckRun("unavailable", first_error(text))
        return AmcheckRun("corrupt", text)
    return AmcheckRun("clean", out.strip() or "no corruption found")


# --- the checks -------------------------------------------------------------------------------------------


@findings.check("restore.tables")
def check_tables(result: RestoreResult) -> pd.DataFrame:
    """Every table of the archive's table of contents (or of the plain dump's CREATE TABLEs) exists in the
    restored database; a missing one is a P1."""
    _restored(result)
    table = pd.DataFrame(
        [{"table": t, "restored": t in result.found_tables} for t in result.expected_tables],
        columns=["table", "restored"],
    )
    if table.empty:
        return findings.conclude(
            "warn",
            "The backup holds no table",
            severity="P2",
            detail=f"nothing to verify in {result.scratch}: is it a backup of the right database?",
            evidence=table,
        )
    if result.missing_tables:
        return findings.conclude(
            "fail",
            f"{len(result.missing_tables)} table(s) of the backup are missing after the restore",
            severity="P1",
            detail=", ".join(result.missing_tables),
            evidence=table,
        )
    return findings.conclude(
        "pass", f"All {len(table)} tables of the backup exist in the restored database", evidence=table
    )


SOURCE_HINT = 'check $database_url_env, or set it to "" to judge the counts by min_rows alone'


@findings.check("restore.counts")
def check_row_counts(
    result: RestoreResult, database_url_env: str = "", *, row_tolerance: float = 0.05, min_rows: int = 1
) -> pd.DataFrame:
    """Row counts of the key tables in the restored database against the source database, read now with
    ``key_table_counts`` (within ``row_tolerance``: the source keeps growing after the backup), or against
    ``min_rows`` when no source is given. A key table off or missing after the restore is a P1; a name the
    source does not know is a P2 (a wrong key_tables parameter, not a broken backup)."""
    _restored(result)
    source, source_db, source_error = None, "", ""
    if database_url_env:
        try:
            with connect(database_url_env, statement_timeout_ms=60_000) as src:
                source_db = str(src.scalar("SELECT current_database()"))
                source = key_table_counts(src, list(result.restored_counts))
        except (DatabaseError, OpsnbError) as exc:  # unreachable, or its variable unset
            source_error = str(exc)
    table = _counts_table(result, source, source_db, row_tolerance, min_rows)
    off = table[(table["rule"] != "unknown table") & ~table["ok"]]
    unknown = table[table["rule"] == "unknown table"]
    if len(off):
        return findings.conclude(
            "fail",
            f"Row counts off after the restore: {', '.join(off['table'])}",
            severity="P1",
            detail="; ".join(
                f"{r.table}: {r.note or r.restored} ({r.rule}, source {r.source})" for r in off.itertuples()
            )
            + "".join(f"; {note}" for note in unknown["note"]),
            evidence=table,
        )
    # the minimums held, but the comparison the run was asked for could not be made
    if source_error:
        raise findings.CouldNotLook(
            f"could not count the key tables in the source database: {source_error}", SOURCE_HINT
        )
    unreadable = table.loc[table["rule"] == "source unreadable", "table"]
    if len(unreadable):
        raise findings.CouldNotLook(
            f"could not count {', '.join(unreadable)} in the source database {source_db}",
            "grant the reader role pg_read_all_data (README 'Read-only by privilege')",
        )
    if len(unknown):
        return findings.conclude(
            "warn",
            f"{len(unknown)} key table(s) not found in the source database",
            severity="P2",
            detail="; ".join(unknown["note"])
            + ': check the key_tables parameter ("schema.table" or a table on '
            "the search path)",
            evidence=table,
        )
    if table.empty:
        raise findings.CouldNotLook("no key table given", "name the tables to count in key_tables")
    rule = (
        f"within {row_tolerance:.0%} of the source" if source is not None else f"at least {min_rows} row(s)"
    )
    return findings.conclude(
        "pass",
        f"Row counts of the key tables are as expected ({rule})",
        detail=", ".join(f"{r.table}={r.restored}" for r in table.itertuples()),
        evidence=table,
    )


def _counts_table(
    result: RestoreResult,
    source: dict[str, int | None] | None,
    source_db: str,
    tolerance: float,
    min_rows: int,
) -> pd.DataFrame:
    """One row per key table: restored (-1 = absent), source, the rule applied, ok, and a note."""
    rows = []
    for name, got in result.restored_counts.items():
        src = source.get(name) if source else None
        note = "" if got is not None else f'table "{name}" does not exist in database {result.scratch}'
        if source is not None and src is None:
            note = f'table "{name}" does not exist in database {source_db}'
            ok, rule = False, "unknown table"
        elif src is not None and src >= 0:
            ok = got is not None and abs(src - got) <= max(1, tolerance * src) and got >= min_rows
            rule = f"within {tolerance:.0%} of source"
        elif src == -1:  # there, but this role may not count it: judged by the minimum, and said so
            ok, rule = got is not None and got >= min_rows, "source unreadable"
        else:
            ok, rule = got is not None and got >= min_rows, f">= {min_rows} rows"
        restored = -1 if got is None else got
        rows.append(
            {"table": name, "restored": restored, "source": src, "rule": rule, "ok": ok, "note": note}
        )
    return pd.DataFrame(rows, columns=["table", "restored", "source", "rule", "ok", "note"])


@findings.check("restore.freshness", essential=False)
def check_freshness(result: RestoreResult, folder: str | Path, *, max_lag_h: float = 24) -> pd.DataFrame:
    """The newest value of the freshness column in the restored data (``newest_value``) against when the
    backup was taken: a larger gap than ``max_lag_h`` (24 h: the shop takes orders every day) means the
    backup came from a frozen or wrong database, a P2. The table and column are parameters ("" = skip)."""
    if not result.freshness_table:
        return findings.conclude(
            "inconclusive",
            "How recent the restored data is was not checked (freshness_table is empty)",
            evidence=pd.DataFrame(),
        )
    _restored(result)
    backup = chosen_backup(folder)
    newest = result.newest
    if backup is None or newest is None:
        raise findings.CouldNotLook("no backup time or newest value to compare", "restore.latest says why")
    where = f'"{newest.table}"."{newest.column}"'
    row = {"column": where, "newest": newest.value, "backup_taken_at": backup.taken_at, "lag_h": None}
    if newest.missing:
        return findings.conclude(
            "warn",
            newest.missing[0].upper() + newest.missing[1:],
            severity="P2",
            detail="cannot tell how recent the restored data is: check freshness_table and freshness_column",
            evidence=pd.DataFrame([row]),
        )
    if newest.value is None:
        raise findings.CouldNotLook(
            f"{where} has no value in the restored data: cannot tell how recent it is",
            "name a freshness_table and freshness_column that every backup fills",
        )
    lag = (backup.taken_at - newest.value).total_seconds() / 3600
    row["lag_h"] = round(lag, 2)
    evidence = pd.DataFrame([row])
    if lag > max_lag_h:
        return findings.conclude(
            "warn",
            f"The restored data is {lag:.1f} h older than the backup",
            severity="P2",
            detail=f"newest {where} {lag:.1f} h before the backup was taken (limit {max_lag_h:g} h): "
            "was the backup taken from a frozen or wrong database?",
            evidence=evidence,
        )
    return findings.conclude(
        "pass",
        f"The newest {where} is {lag:.1f} h older than the backup",
        detail=f"limit {max_lag_h:g} h",
        evidence=evidence,
    )


@findings.check("restore.amcheck", essential=False)
def check_amcheck(result: RestoreResult) -> pd.DataFrame:
    """What ``pg_amcheck --heapallindexed`` said about the restored database (``run_amcheck``): corruption is a
    P1. It can prove corruption, not its absence."""
    _restored(result)
    if result.amcheck is None:
        return findings.conclude(
            "inconclusive", "pg_amcheck was not run (amcheck is off)", evidence=pd.DataFrame()
        )
    evidence = pd.DataFrame({"pg_amcheck said": result.amcheck.output.splitlines() or [""]})
    if result.amcheck.status == "unavailable":
        raise findings.CouldNotLook(
            f"pg_amcheck could not run: {result.amcheck.output}",
            "run restore-test as a role that may create the amcheck extension, or leave amcheck off",
        )
    if result.amcheck.status == "corrupt":
        return findings.conclude(
            "fail",
            "pg_amcheck found corruption in the restored data",
            severity="P1",
            detail=result.amcheck.output[:2000],
            evidence=evidence,
        )
    return findings.conclude(
        "pass",
        "pg_amcheck --heapallindexed found no corruption",
        detail="it can prove corruption, not its absence",
        evidence=evidence,
    )
