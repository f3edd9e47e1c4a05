"""Dump files: taking a dump with pg_dump, their formats and checksums, and the archive's table of contents.

Runbook "Backup & Recovery → Manual Backup": ``pg_dump $DATABASE_URL > backup_$(date +%Y%m%d_%H%M%S).sql``
then ``gzip``. A dump is written into the run's work folder together with its manifest
(``<file>.manifest.json``: format, size, sha256, when, from where), which the later steps (verify, upload)
read back with :func:`local_dump`.
"""

from __future__ import annotations

import datetime as _dt
import gzip
import hashlib
import json
import re
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from opsnb.checks import findings
from opsnb.checks.backups.tools import MB, ChildFailed, headline, libpq_env, run_child, tool
from opsnb.checks.secrets import secret

FORMATS = ("custom", "plain-gzip")
CUSTOM_MAGIC = b"PGDMP"
GZIP_MAGIC = b"\x1f\x8b"
MANIFEST_SUFFIX = ".manifest.json"
DUMP_COMPLETE = b"PostgreSQL database dump complete"  # pg_dump's last comment in a plain dump


@dataclass
class Dump:
    """A local dump file and what we know about it (its manifest)."""

    path: str
    format: str  # custom | plain-gzip
    size: int
    sha256: str
    seconds: float
    created_at: _dt.datetime
    source: str  # host:port/dbname (no credentials)

    @property
    def name(self) -> str:
        """The file's name (the object's name in the bucket)."""
        return Path(self.path).name

    def table(self) -> pd.DataFrame:
        """One-row DataFrame for display."""
        return pd.DataFrame(
            [
                {
                    "file": self.name,
                    "format": self.format,
                    "size_mb": round(self.size / MB, 2),
                    "sha256": self.sha256,
                    "seconds": round(self.seconds, 2),
                    "created_at": self.created_at.isoformat(timespec="seconds"),
                    "source": self.source,
                }
            ]
        )

    def manifest(self) -> dict[str, str | int | float]:
        """What is recorded beside the dump (locally, and in the bucket by the upload)."""
        return {
            "file": self.name,
            "format": self.format,
            "size": self.size,
            "sha256": self.sha256,
            "created-at": self.created_at.astimezone(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "source": self.source,
            "dump_seconds": round(self.seconds, 2),
        }

    def save_manifest(self) -> Path:
        """Write the manifest beside the dump file; its path."""
        path = Path(self.path + MANIFEST_SUFFIX)
        path.write_text(json.dumps(self.manifest(), indent=1))
        return path

    @classmethod
    def from_manifest(cls, path: str | Path) -> Dump:
        """The dump described by a manifest written by :meth:`save_manifest`."""
        data = json.loads(Path(path).read_text())
        return cls(
            str(Path(path).with_name(data["file"])),
            data["format"],
            int(data["size"]),
            data["sha256"],
            float(data["dump_seconds"]),
            _dt.datetime.strptime(data["created-at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=_dt.UTC),
            data["source"],
        )


def sha256_file(path: str | Path, chunk: int = 4 * MB) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def detect_format(path: str | Path) -> str:
    """'custom' (pg_dump -Fc, magic PGDMP), 'gzip', 'plain' (SQL text) or 'unknown', from the first bytes."""
    with open(path, "rb") as handle:
        head = handle.read(512)
    if head.startswith(CUSTOM_MAGIC):
        return "custom"
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.lstrip().startswith((b"--", b"SET ", b"CREATE ", b"SELECT ", b"BEGIN", b"\\")):
        return "plain"
    return "unknown"


def backup_filename(fmt: str, created_at: _dt.datetime) -> str:
    """The runbook's naming: backup_YYYYmmdd_HHMMSS.dump (custom) or .sql.gz (plain, gzip'd)."""
    stamp = created_at.astimezone(_dt.UTC).strftime("%Y%m%d_%H%M%S")
    return f"backup_{stamp}" + (".dump" if fmt == "custom" else ".sql.gz")


def dump_database(
    database_url_env: str,
    dest_dir: str | Path,
    *,
    fmt: str = "custom",
    pg_bindir: str = "",
    timeout_s: float = 3600,
    compress: int = 6,  # pg_dump's and gzip's default level
    log: Callable[[str], None] = print,
) -> Dump:
    """pg_dump the database at $``database_url_env`` (direct host, not a pooler) into ``dest_dir``, with its
    manifest beside it.

    ``fmt`` 'custom' = ``pg_dump -Fc`` (restorable in parallel, has a table of contents); 'plain-gzip' = plain
    SQL compressed with gzip (the runbook's manual backup). Raises ChildFailed with pg_dump's own error (and
    leaves no partial file behind).
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    env = libpq_env(secret(database_url_env))
    created = _dt.datetime.now(_dt.UTC).replace(microsecond=0)
    dest = Path(dest_dir) / backup_filename(fmt, created)
    dest.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    base = [tool(pg_bindir, "pg_dump"), "--no-password"]
    try:
        if fmt == "custom":
            run_child([*base, "-Fc", f"-Z{compress}", "-f", str(dest)], env=env, timeout_s=timeout_s)
        else:
            with gzip.open(dest, "wb", compresslevel=compress) as gz:
                run_child([*base, "-Fp"], env=env, timeout_s=timeout_s, stdout_sink=gz.write)
    except ChildFailed:
        dest.unlink(missing_ok=True)
        raise
    seconds = round(time.monotonic() - t0, 2)  # as the manifest keeps it
    size = dest.stat().st_size
    log(f"pg_dump {fmt}: {dest.name} {size / MB:.1f} MB in {seconds:.1f} s")
    source = f"{env.get('PGHOST', '')}:{env.get('PGPORT', '5432')}/{env.get('PGDATABASE', '')}"
    dump = Dump(str(dest), fmt, size, sha256_file(dest), seconds, created, source)
    dump.save_manifest()
    return dump


def local_dump(folder: str | Path) -> Dump | None:
    """The newest dump in ``folder`` that has its manifest beside it (None when there is none)."""
    dumps = []
    for manifest in Path(folder).glob("backup_*" + MANIFEST_SUFFIX):
        try:
            dump = Dump.from_manifest(manifest)
        except (OSError, ValueError, KeyError):
            continue
        if Path(dump.path).is_file():
            dumps.append(dump)
    return max(dumps, key=lambda d: d.created_at, default=None)


def _forget_dumps(folder: str | Path) -> None:
    """Remove the dumps an earlier run of the dump step left in this run's own work folder."""
    for path in Path(folder).glob("backup_*"):
        if path.is_file() and not path.is_symlink():
            path.unlink()


@dataclass
class TocEntry:
    """One line of ``pg_restore --list``: its id, kind (TABLE, TABLE DATA, EXTENSION…), schema and name."""

    id: str
    desc: str
    schema: str
    name: str
    line: str


_TOC_LINE = re.compile(r"^(?P<id>\d+);\s+(?P<cat>\d+)\s+(?P<oid>\d+)\s+(?P<rest>.*)$")
# longest first: "TABLE DATA" must win over "TABLE"
_TOC_DESCS = (
    "TABLE DATA",
    "SEQUENCE SET",
    "MATERIALIZED VIEW DATA",
    "DEFAULT ACL",
    "FK CONSTRAINT",
    "TABLE",
    "INDEX",
    "CONSTRAINT",
    "SEQUENCE OWNED BY",
    "SEQUENCE",
    "EXTENSION",
    "COMMENT",
    "ACL",
    "SCHEMA",
    "VIEW",
    "FUNCTION",
    "DEFAULT",
    "TRIGGER",
    "TYPE",
)


def parse_toc(listing: str) -> list[TocEntry]:
    """The entries of ``pg_restore --list`` output (comment lines skipped)."""
    out: list[TocEntry] = []
    for line in listing.splitlines():
        m = _TOC_LINE.match(line.strip())
        if not m:
            continue
        rest = m.group("rest")
        desc = next((d for d in _TOC_DESCS if rest.startswith(d + " ")), rest.split(" ")[0])
        tail = rest[len(desc) :].strip().split(" ")
        schema = tail[0] if tail else ""
        name = tail[1] if len(tail) > 1 else ""
        if desc == "TABLE" and len(tail) > 3:
            # "TABLE <schema> <name> <owner>": a name with spaces spans every word up to the owner
            name = " ".join(tail[1:-1])
        out.append(TocEntry(m.group("id"), desc, schema, name, line))
    return out


def table_names(entries: list[TocEntry]) -> list[str]:
    """'schema.name' of every TABLE entry."""
    return [f"{e.schema}.{e.name}" for e in entries if e.desc == "TABLE"]


def archive_tables(path: str | Path, pg_bindir: str = "", timeout_s: float = 120) -> list[str]:
    """Tables in a custom-format archive's table of contents (``pg_restore --list``), as 'schema.name'."""
    listing = run_child(
        [tool(pg_bindir, "pg_restore"), "--list", str(path)], env=libpq_env(""), timeout_s=timeout_s
    )
    return table_names(parse_toc(listing))


def gzip_tail(path: str | Path, keep: int = 4096) -> bytes:
    """Decompress a whole gzip file (proves the stream and its CRC) and return its last bytes."""
    tail = b""
    with gzip.open(path, "rb") as gz:
        while block := gz.read(4 * MB):
            tail = (tail + block)[-keep:]
    return tail


@findings.check("backups.dump", hint="check $database_url_env (the direct host, not the pooler)")
def check_dump(
    database_url_env: str,
    folder: str | Path,
    *,
    fmt: str = "custom",
    pg_bindir: str = "",
    timeout_s: float = 3600,
) -> pd.DataFrame:
    """Take the backup: pg_dump into the work folder (``dump_database``). pg_dump's own error is a P1
    failure: no backup was made."""
    _forget_dumps(folder)
    if fmt not in FORMATS:
        return findings.conclude(
            "fail",
            f"No backup was made: dump_format {fmt!r} is neither {' nor '.join(FORMATS)}",
            severity="P1",
            evidence=pd.DataFrame(),
        )
    try:
        dump = dump_database(database_url_env, folder, fmt=fmt, pg_bindir=pg_bindir, timeout_s=timeout_s)
    except ChildFailed as exc:
        words = exc.stderr or str(exc)
        return findings.conclude(
            "fail",
            f"No backup was made: {headline(words)}",
            severity="P1",
            detail=words,
            evidence=pd.DataFrame({"pg_dump said": words.splitlines()}),
        )
    return findings.conclude(
        "pass",
        f"pg_dump made {dump.name} ({dump.format}, {dump.size / MB:.1f} MB in {dump.seconds:.1f} s)",
        detail=f"from {dump.source}; sha256 {dump.sha256}",
        evidence=dump.table(),
    )


@findings.check("backups.dump-readable")
def check_dump_readable(folder: str | Path, *, pg_bindir: str = "", timeout_s: float = 600) -> pd.DataFrame:
    """Read the fresh dump back before it leaves the machine: its format's magic bytes, then the custom
    format's table of contents (``pg_restore --list``) or the whole gzip stream and pg_dump's closing line.
    An unreadable dump is a P1: a backup that cannot be read is no backup."""
    dump = local_dump(folder)
    if dump is None:
        raise findings.CouldNotLook("there is no dump to read", "backups.dump says why")
    expected = "custom" if dump.format == "custom" else "gzip"
    detected = detect_format(dump.path)
    rows = [{"check": "format", "ok": detected == expected, "detail": f"{detected} (expected {expected})"}]
    try:
        if detected == "custom":
            tables = archive_tables(dump.path, pg_bindir, timeout_s)
            rows.append({"check": "table of contents", "ok": bool(tables), "detail": f"{len(tables)} tables"})
        elif detected == "gzip":
            complete = DUMP_COMPLETE in gzip_tail(dump.path)
            detail = "complete" if complete else "pg_dump's closing line is missing"
            rows.append({"check": "gzip stream + closing line", "ok": complete, "detail": detail})
    except (ChildFailed, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        rows.append({"check": "readable", "ok": False, "detail": str(exc)})
    table = pd.DataFrame(rows)
    if table["ok"].all():
        return findings.conclude(
            "pass", f"{dump.name} reads back", detail="; ".join(table["detail"]), evidence=table
        )
    bad = table[~table["ok"]]
    return findings.conclude(
        "fail",
        f"{dump.name} is unreadable: {bad['detail'].iloc[0]}",
        severity="P1",
        detail="; ".join(f"{r.check}: {r.detail}" for r in bad.itertuples()),
        evidence=table,
    )
