"""Restoring a backup into a scratch database and reading what it holds, with the scratch database ALWAYS
dropped at the end; the restore's own conclusion and the recovery time.

Runbook "Backup Verification → 2. Create test database, 3. Restore backup, 4. Verify data, 5. Cleanup" as one
step (:func:`restore_and_verify`), so that the drop happens whatever went wrong: a custom-format archive
goes through ``pg_restore -j N --exit-on-error --no-owner --no-privileges``, plain or gzip'd SQL is streamed
into ``psql -v ON_ERROR_STOP=1`` (the runbook's ``gunzip`` + ``psql test_restore < latest.sql``). What the
restored database holds is read by the functions of :mod:`opsnb.checks.backups.verify` before the drop and
judged by its checks afterwards.
"""

from __future__ import annotations

import gzip
import os
import re
import tempfile
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from opsnb.checks import findings
from opsnb.checks.backups import verify
from opsnb.checks.backups.download import downloaded
from opsnb.checks.backups.dumps import detect_format, parse_toc, table_names
from opsnb.checks.backups.scratch import (
    RefusedDatabase,
    create_scratch,
    drop_scratch,
    guard_scratch,
    maint_session,
    scratch_name,
)
from opsnb.checks.backups.tools import MB, ChildFailed, headline, libpq_env, run_child, tool
from opsnb.checks.postgres import Database, DatabaseError, connect
from opsnb.checks.secrets import Secret, scrub, secret
from opsnb.errors import OpsnbError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# failures of the world outside opsnb while restoring: reported, never raised past the drop
_OUTSIDE = (ChildFailed, DatabaseError, OpsnbError, OSError)


@dataclass
class RestoreResult:
    """Everything the restore-and-verify step did and read; the checks judge it."""

    scratch: str
    format: str = ""
    not_run: str | None = None  # why nothing was restored: no verified file to restore
    refused: str | None = None  # the target name was refused by the guard
    blocked: str | None = None  # the scratch database could not be created (connection, privilege)
    error: str | None = None  # the restore tool's own error text
    read_error: str | None = None  # reading the restored database failed
    phases: dict[str, float] = field(default_factory=dict)
    archive_bytes: int = 0
    expected_tables: list[str] = field(default_factory=list)
    found_tables: list[str] = field(default_factory=list)
    skipped_entries: list[str] = field(default_factory=list)  # entries this role may not restore
    restored_counts: dict[str, int | None] = field(default_factory=dict)
    freshness_table: str = ""
    newest: verify.Newest | None = None
    amcheck: verify.AmcheckRun | None = None
    dropped: bool = False
    leftover_error: str | None = None  # why the drop failed

    @property
    def restored(self) -> bool:
        """True when the restore ran to completion and what it restored could be read."""
        return (
            self.not_run is None
            and self.refused is None
            and self.blocked is None
            and self.error is None
            and self.read_error is None
            and "restore" in self.phases
        )

    @property
    def missing_tables(self) -> list[str]:
        """Tables of the archive that the restored database lacks."""
        return [t for t in self.expected_tables if t not in self.found_tables]

    def phases_table(self) -> pd.DataFrame:
        """Seconds per phase."""
        return pd.DataFrame(
            [{"phase": k, "seconds": round(v, 3)} for k, v in self.phases.items()],
            columns=["phase", "seconds"],
        )


# --- custom format: pg_restore with a filtered table of contents ------------------------------------------


def restore_list(listing: str, superuser: bool, trusted: set[str]) -> tuple[str, list[str]]:
    """The TOC with entries this role cannot restore commented out (untrusted extensions for a
    non-superuser, and their comments); returns (list file text, skipped entry descriptions)."""
    skipped: list[str] = []
    lines = []
    blocked = set()
    entries = {e.line: e for e in parse_toc(listing)}
    for line in listing.splitlines():
        e = entries.get(line)
        if e and e.desc == "EXTENSION" and not superuser and e.name not in trusted:
            blocked.add(e.name)
            skipped.append(f"EXTENSION {e.name}")
            lines.append(";" + line)
            continue
        if e and e.desc == "COMMENT" and e.name == "EXTENSION":
            ext = line.rsplit("EXTENSION", 1)[-1].strip().split(" ")[0]
            if ext in blocked:
                skipped.append(f"COMMENT ON EXTENSION {ext}")
                lines.append(";" + line)
                continue
        lines.append(line)
    return "\n".join(lines) + "\n", skipped


def restore_custom(
    path: str,
    result: RestoreResult,
    env: dict[str, str],
    pg_bindir: str,
    jobs: int,
    timeout_s: float,
    rights: tuple[bool, set[str]],
) -> None:
    """``pg_restore --list`` for the archive's tables, then ``pg_restore -j jobs --exit-on-error`` of every
    entry this role may restore into the scratch database. ChildFailed with pg_restore's own words."""
    listing = run_child([tool(pg_bindir, "pg_restore"), "--list", path], env=env, timeout_s=120)
    result.expected_tables = table_names(parse_toc(listing))
    text, result.skipped_entries = restore_list(listing, *rights)
    with tempfile.NamedTemporaryFile("w", suffix=".list", delete=False) as handle:
        handle.write(text)
    try:
        cmd = [
            tool(pg_bindir, "pg_restore"),
            f"--jobs={max(1, int(jobs))}",
            "--exit-on-error",
            "--no-owner",
            "--no-privileges",
            "--no-password",
            f"--use-list={handle.name}",
            f"--dbname={guard_scratch(result.scratch)}",
            path,
        ]
        run_child(cmd, env=env, timeout_s=timeout_s)
    finally:
        os.unlink(handle.name)


# --- plain SQL: streamed through a filter into psql ---------------------------------------------------------

# a name part as pg_dump writes it: "double-quoted" (inner quotes doubled) or plain lower case
_NAME_PART = rb'(?:"(?:[^"]|"")*"|[^\s".(]+)'
_CREATE_TABLE = re.compile(
    rb"^CREATE (?:UNLOGGED )?TABLE (" + _NAME_PART + rb"(?:\." + _NAME_PART + rb")?) \(", re.M
)
_SKIP_PLAIN = re.compile(
    rb"^(?:ALTER [A-Z ]+ .* OWNER TO .*;|GRANT .*;|REVOKE .*;|ALTER DEFAULT PRIVILEGES .*;)$"
)
_EXTENSION_STMT = re.compile(
    rb"^(?:CREATE EXTENSION IF NOT EXISTS|CREATE EXTENSION|COMMENT ON EXTENSION) (\S+)"
)
_SKIPPED = b"-- opsnb skipped: "


def _dump_name(raw: bytes) -> str:
    """schema.table from pg_dump's quoted form: quotes removed, doubled quotes made single."""
    parts = re.findall(_NAME_PART, raw)
    return ".".join(
        p[1:-1].replace(b'""', b'"').decode() if p.startswith(b'"') else p.decode() for p in parts
    )


class PlainFilter:
    """Streams a plain SQL dump to psql, rewriting statements a non-owner cannot run (owners, grants,
    untrusted extensions) into comments and collecting the CREATE TABLE names. COPY data passes through
    untouched and unparsed (fast path)."""

    def __init__(self, superuser: bool, trusted: set[str]):
        self.superuser, self.trusted = superuser, trusted
        self.in_copy = False
        self.carry = b""
        self.tables: list[str] = []
        self.skipped: list[str] = []

    def _line(self, line: bytes) -> bytes:
        m = _CREATE_TABLE.match(line)
        if m:
            self.tables.append(_dump_name(m.group(1)))
        if _SKIP_PLAIN.match(line):
            return _SKIPPED + line
        m = _EXTENSION_STMT.match(line)
        if m and not self.superuser and m.group(1).decode().strip('";') not in self.trusted:
            self.skipped.append(line.decode(errors="replace").split(" WITH ")[0].split(" IS ")[0].rstrip(";"))
            return _SKIPPED + line
        if line.startswith(b"COPY ") and line.rstrip().endswith(b"FROM stdin;"):
            self.in_copy = True
        return line

    def feed(self, chunk: bytes) -> bytes:
        """Filtered bytes for ``chunk`` (may hold back an incomplete last line)."""
        data = self.carry + chunk
        self.carry = b""
        out: list[bytes] = []
        pos = 0
        while pos < len(data):
            if self.in_copy:
                end = self._copy_end(data, pos)
                if end == -1:
                    # keep a tail that could be the start of the end marker
                    cut = max(pos, len(data) - 3)
                    out.append(data[pos:cut])
                    self.carry = data[cut:]
                    return b"".join(out)
                out.append(data[pos:end])
                pos = end
                self.in_copy = False
                continue
            nl = data.find(b"\n", pos)
            if nl == -1:
                self.carry = data[pos:]
                break
            out.append(self._line(data[pos:nl]) + b"\n")
            pos = nl + 1
        return b"".join(out)

    @staticmethod
    def _copy_end(data: bytes, pos: int) -> int:
        """Index just past the COPY data's end marker (a line holding only ``\\.``), -1 when not in ``data``."""
        if data.startswith(b"\\.\n", pos):
            return pos + 3
        end = data.find(b"\n\\.\n", pos)
        return -1 if end == -1 else end + 4

    def finish(self) -> bytes:
        """Whatever is left at the end of the stream."""
        rest, self.carry = self.carry, b""
        return rest if self.in_copy or not rest else self._line(rest)


def _plain_chunks(path: str, gzipped: bool, filt: PlainFilter, result: RestoreResult) -> Iterable[bytes]:
    """The file's bytes, decompressed and filtered; a read error stops the stream and is kept in ``result``."""
    opener = gzip.open if gzipped else open
    try:
        with opener(path, "rb") as handle:
            while block := handle.read(4 * MB):
                yield filt.feed(block)
        yield filt.finish()
    except (OSError, EOFError, zlib.error) as exc:
        result.error = f"reading {Path(path).name}: {type(exc).__name__}: {exc}"
        # stop feeding: psql sees end of input in the middle of the dump


def restore_plain(
    path: str,
    gzipped: bool,
    result: RestoreResult,
    env: dict[str, str],
    pg_bindir: str,
    timeout_s: float,
    rights: tuple[bool, set[str]],
) -> None:
    """Stream the (gzip'd) SQL file through :class:`PlainFilter` into ``psql -v ON_ERROR_STOP=1``.
    ChildFailed with psql's own words, or with the read error when the file itself is broken."""
    filt = PlainFilter(*rights)
    cmd = [
        tool(pg_bindir, "psql"),
        "-X",
        "-q",
        "--no-password",
        "-v",
        "ON_ERROR_STOP=1",
        f"--dbname={guard_scratch(result.scratch)}",
    ]
    try:
        run_child(cmd, env=env, timeout_s=timeout_s, stdin_chunks=_plain_chunks(path, gzipped, filt, result))
    finally:
        result.expected_tables = [t if "." in t else f"public.{t}" for t in filt.tables]
        result.skipped_entries = filt.skipped
    if result.error:  # the file itself was broken: psql may have "succeeded" on a prefix of it
        raise ChildFailed("gunzip" if gzipped else "read", 1, result.error)


# --- the one step: create, restore, read, drop --------------------------------------------------------------


def _creatable_extensions(db: Database) -> tuple[bool, set[str]]:
    """(superuser?, trusted extensions): what this role may create when restoring."""
    superuser = bool(db.scalar("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"))
    trusted = {
        r["name"] for r in db.rows("SELECT DISTINCT name FROM pg_available_extension_versions WHERE trusted")
    }
    return superuser, trusted


def restore_and_verify(
    path: str | None,
    *,
    maint_database_url_env: str,
    scratch_database: str = "",
    pg_bindir: str = "",
    jobs: int = 2,
    key_tables: Iterable[str] | str = verify.KEY_TABLES,
    freshness_table: str = "",
    freshness_column: str = "",
    amcheck: bool = False,
    timeout_s: float = 3600,
) -> RestoreResult:
    """Create the scratch database, restore ``path`` into it, read what it holds, and ALWAYS drop it.

    Read before the drop: its tables, the row counts of ``key_tables`` ("schema.table" or a table on the
    search path; looked up in the catalog, never pasted into SQL), the newest ``freshness_column`` of
    ``freshness_table`` ("" = not read) and, with ``amcheck``, what ``pg_amcheck`` says. Records nothing:
    the checks of this module and of ``verify`` judge the result. Failures of the tools, the server or the
    file are kept in the result, never raised.
    """
    scratch = scratch_name(scratch_database)
    result = RestoreResult(scratch=scratch, freshness_table=freshness_table)
    if not path:
        result.not_run = "no verified backup file to restore"
        return result
    try:
        guard_scratch(scratch)
    except RefusedDatabase as exc:
        result.refused = str(exc)
        return result
    names = verify.key_table_names(key_tables)
    result.archive_bytes = Path(path).stat().st_size
    result.format = detect_format(path)
    creating = False  # from the CREATE on, the finally drops (a CREATE may succeed and its COMMENT fail)
    try:
        t = time.monotonic()
        try:
            with maint_session(maint_database_url_env) as admin:
                rights = _creatable_extensions(admin)
                creating = True
                create_scratch(admin, scratch)
        except _OUTSIDE as exc:
            result.blocked = _words(exc)
            return result
        result.phases["create"] = time.monotonic() - t
        env = libpq_env(secret(maint_database_url_env), dbname=scratch)
        t = time.monotonic()
        try:
            _restore_file(path, result, env, pg_bindir, jobs, timeout_s, rights)
        except _OUTSIDE as exc:
            result.error = _words(exc)
            return result
        result.phases["restore"] = time.monotonic() - t
        t = time.monotonic()
        try:
            _read_restored(result, maint_database_url_env, names, freshness_table, freshness_column)
            if amcheck:
                result.amcheck = verify.run_amcheck(env, scratch, pg_bindir, timeout_s)
        except _OUTSIDE as exc:
            result.read_error = _words(exc)
        result.phases["verify"] = time.monotonic() - t
    finally:
        if creating:
            _drop(result, maint_database_url_env)
    return result


def _words(exc: BaseException) -> str:
    """A failure in its own words: a tool's stderr, else the exception's one (scrubbed) line."""
    if isinstance(exc, ChildFailed):
        return exc.stderr or str(exc)
    return scrub(f"{type(exc).__name__}: {exc}")


def _restore_file(
    path: str,
    result: RestoreResult,
    env: dict[str, str],
    pg_bindir: str,
    jobs: int,
    timeout_s: float,
    rights: tuple[bool, set[str]],
) -> None:
    """Restore by format: custom through pg_restore, plain or gzip'd SQL through psql."""
    if result.format == "custom":
        restore_custom(path, result, env, pg_bindir, jobs, timeout_s, rights)
    elif result.format in ("gzip", "plain"):
        restore_plain(path, result.format == "gzip", result, env, pg_bindir, timeout_s, rights)
    else:
        raise ChildFailed("detect", None, f"{Path(path).name}: not a pg_dump archive, gzip or SQL file")


def _read_restored(
    result: RestoreResult, maint_database_url_env: str, names: list[str], table: str, column: str
) -> None:
    """Read the restored database (read-only session, as the maint role): tables, key counts, newest value."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    maint = secret(maint_database_url_env)
    parts = {**conninfo_to_dict(maint.reveal()), "dbname": guard_scratch(result.scratch)}
    with connect(Secret(maint.name, make_conninfo(**parts)), statement_timeout_ms=300_000) as db:
        result.found_tables = verify.restored_tables(db)
        result.restored_counts = verify.key_table_counts(db, names)
        if table:
            result.newest = verify.newest_value(db, table, column)


def _drop(result: RestoreResult, maint_database_url_env: str) -> None:
    """Drop the scratch database, whatever happened before, in a session of its own (the one that created
    it may have been idle for the whole restore)."""
    t = time.monotonic()
    try:
        with maint_session(maint_database_url_env) as admin:
            result.dropped = drop_scratch(admin, result.scratch)
        if not result.dropped:
            result.leftover_error = "still listed in pg_database after DROP DATABASE"
    except _OUTSIDE as exc:
        result.leftover_error = _words(exc)
    result.phases["drop"] = time.monotonic() - t


# --- the checks ---------------------------------------------------------------------------------------------


@findings.check(
    "restore.restore", hint="check $maint_database_url_env: a role with CREATEDB on the restore-test server"
)
def check_restore(result: RestoreResult) -> pd.DataFrame:
    """Whether the backup restored (``restore_and_verify``): the restore tool's own error is a P1."""
    if result.not_run:
        raise findings.CouldNotLook(
            f"nothing was restored: {result.not_run}", "restore.download and restore.checksum say why"
        )
    if result.refused:
        raise findings.CouldNotLook(
            f"nothing was restored: {result.refused}", "restore.scratch-name says why"
        )
    if result.blocked:
        raise findings.CouldNotLook(
            f"could not create the scratch database {result.scratch}: {result.blocked}"
        )
    evidence = result.phases_table()
    if result.error:
        return findings.conclude(
            "fail",
            f"The restore failed: {headline(result.error)}",
            severity="P1",
            detail=f"{result.format or '?'} restore into {result.scratch}: {result.error}",
            evidence=evidence,
        )
    if result.read_error:
        raise findings.CouldNotLook(
            f"the backup restored, but reading {result.scratch} failed: {result.read_error}"
        )
    skipped = (
        f"; skipped (they need a superuser, production restores run as the owner): {', '.join(result.skipped_entries)}"
        if result.skipped_entries
        else ""
    )
    return findings.conclude(
        "pass",
        f"The backup restored in {result.phases['restore']:.1f} s",
        detail=f"{result.format} archive of {result.archive_bytes / MB:.1f} MB into {result.scratch}{skipped}",
        evidence=evidence,
    )


@findings.check("restore.rto", essential=False)
def check_rto(result: RestoreResult, folder: str | Path) -> Figure:
    """The recovery time a real recovery from this backup would take (RTO = download + restore), with
    creating, reading and dropping the scratch database shown apart, as a bar chart."""
    if not result.restored:
        raise findings.CouldNotLook("nothing was restored to time", "restore.restore says why")
    import matplotlib.pyplot as plt

    got = downloaded(folder)
    if got is None:
        raise findings.CouldNotLook("no download to time", "restore.download says why")
    phases = {"download": got.seconds, **result.phases}
    rto = got.seconds + phases["restore"]
    size_mb = result.archive_bytes / MB
    fig, ax = plt.subplots(figsize=(6, 2.4))
    ax.barh(
        list(phases),
        list(phases.values()),
        color=["#4C72B0" if p in ("download", "restore") else "#999999" for p in phases],
    )
    ax.invert_yaxis()
    ax.set_xlabel("seconds")
    ax.set_title(f"restore test phases (RTO download + restore = {rto:.1f} s)")
    fig.tight_layout()
    plt.close(fig)  # shown once, by the notebook's display of the return value
    return findings.conclude(
        "pass",
        f"Recovery from this backup takes {rto:.1f} s ({size_mb:.1f} MB)",
        detail=f"download {got.seconds:.1f} s ({got.mb_per_s:.1f} MB/s) + restore {phases['restore']:.1f} s "
        f"({size_mb / max(phases['restore'], 1e-6):.1f} MB/s); "
        + ", ".join(f"{k} {v:.2f} s" for k, v in phases.items()),
        evidence=fig,
    )
