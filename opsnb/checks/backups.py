"""Backups: dump, upload with checksums, inventory, and the restore test that proves a backup restores.

Runbook sections "Manual Backup", "Backup Verification" and "Recovery Procedures". The restore test goes
only into a scratch database this run creates (``opsnb_restore_<run id>``); ``guard_scratch()`` refuses
every other name, and ``restore_and_verify()`` drops the scratch database in a ``finally`` whatever happened.
Every child process (pg_dump, pg_restore, psql, pg_amcheck) runs with a timeout; connection details go to
children through libpq environment variables, never on the command line (``ps`` would show them).
"""

from __future__ import annotations

import datetime as _dt
import gzip
import hashlib
import json
import os
import re
import subprocess
import tempfile
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opsnb.checks import context, findings
from opsnb.checks.clients.s3 import Transfer  # s3 imports boto3 lazily: cheap to import here
from opsnb.checks.secrets import Secret, scrub, secret

MB = 1024 * 1024
SCRATCH_PREFIX = "opsnb_restore_"
KEY_TABLES = ("Product", "Order", "User")
MANIFEST_SUFFIX = ".manifest.json"
CUSTOM_MAGIC = b"PGDMP"
GZIP_MAGIC = b"\x1f\x8b"
FORMATS = ("custom", "plain-gzip")
_PROCESS_TOKEN = uuid.uuid4().hex[:8]  # tells interactive sessions apart (run id 'interactive')

# ---------------------------------------------------------------------------------------------------------
# child processes
# ---------------------------------------------------------------------------------------------------------


class ChildFailed(Exception):
    """A pg_* child exited non-zero or ran out of time; ``stderr`` holds its own words (scrubbed)."""

    def __init__(self, tool: str, returncode: int | None, stderr: str, timed_out: bool = False):
        self.tool, self.returncode, self.timed_out = tool, returncode, timed_out
        self.stderr = scrub(stderr.strip())
        what = "timed out after its time limit" if timed_out else f"exited with status {returncode}"
        super().__init__(f"{tool} {what}: {first_error(self.stderr) or '(no output)'}")


def first_error(stderr: str) -> str:
    """The first line of a pg_* tool's output that says 'error' or 'FATAL' (else its last line)."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for ln in lines:
        if "error" in ln.lower() or "fatal" in ln.lower():
            return ln
    return lines[-1] if lines else ""


def tool(pg_bindir: str, name: str) -> str:
    """Path of a PostgreSQL client program: ``pg_bindir/name``, or ``name`` on PATH when bindir is ""."""
    return str(Path(pg_bindir) / name) if pg_bindir else name


_LIBPQ_ENV = {
    "host": "PGHOST",
    "hostaddr": "PGHOSTADDR",
    "port": "PGPORT",
    "user": "PGUSER",
    "password": "PGPASSWORD",
    "dbname": "PGDATABASE",
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "channel_binding": "PGCHANNELBINDING",
    "options": "PGOPTIONS",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "application_name": "PGAPPNAME",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
}


def libpq_env(dsn: str | Secret, dbname: str | None = None, application_name: str = "") -> dict[str, str]:
    """Environment for a libpq child: the inherited one without PG* variables, plus the URL's parts."""
    from psycopg.conninfo import conninfo_to_dict

    url = dsn.reveal() if isinstance(dsn, Secret) else dsn
    parts = {k: str(v) for k, v in conninfo_to_dict(url).items() if v is not None}
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update({_LIBPQ_ENV[k]: v for k, v in parts.items() if k in _LIBPQ_ENV})
    env.setdefault("PGCONNECT_TIMEOUT", "10")
    env["PGAPPNAME"] = application_name or f"opsnb/{context.runbook()}"
    if dbname is not None:
        env["PGDATABASE"] = dbname
    env.update({"LC_ALL": "C", "LANG": "C"})
    return env


def run_child(
    cmd: list[str],
    *,
    env: dict[str, str],
    timeout_s: float,
    stdin_chunks: Iterable[bytes] | None = None,
    stdout_path: str | Path | None = None,
    stdout_sink: Callable[[bytes], None] | None = None,
) -> str:
    """Run ``cmd`` with a hard timeout; return its stdout text (unless redirected). ChildFailed on failure.

    ``stdin_chunks`` are written to its stdin (streaming, e.g. gunzip → psql); ``stdout_path`` receives
    its stdout as a file; ``stdout_sink`` gets stdout chunks (e.g. pg_dump → gzip). stderr goes to a temp
    file so that a chatty child never blocks on a full pipe.
    """
    name = Path(cmd[0]).name
    out_file = open(stdout_path, "wb") if stdout_path else None  # noqa: SIM115
    with tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen(
                cmd,
                env=env,
                stdin=subprocess.PIPE if stdin_chunks is not None else subprocess.DEVNULL,
                stdout=out_file or subprocess.PIPE,
                stderr=err,
                cwd="/",
            )
        except OSError as exc:
            if out_file:
                out_file.close()
            raise ChildFailed(name, None, f"cannot start {cmd[0]}: {exc.strerror}") from None
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            proc.kill()

        timer = threading.Timer(timeout_s, kill)
        timer.start()
        stdout = b""
        try:
            if stdin_chunks is not None:
                reader = None
                if proc.stdout is not None:
                    buf: list[bytes] = []
                    reader = threading.Thread(target=lambda: buf.append(proc.stdout.read()), daemon=True)
                    reader.start()
                try:
                    for chunk in stdin_chunks:
                        proc.stdin.write(chunk)
                except (BrokenPipeError, OSError):
                    pass  # the child stopped reading (ON_ERROR_STOP): its stderr says why
                finally:
                    try:
                        proc.stdin.close()
                    except OSError:
                        pass
                proc.wait()
                if reader is not None:
                    reader.join(5)
                    stdout = b"".join(buf)
            elif stdout_sink is not None:
                while chunk := proc.stdout.read(MB):
                    stdout_sink(chunk)
                proc.wait()
            else:
                stdout = proc.stdout.read() if proc.stdout else b""
                proc.wait()
        finally:
            timer.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if out_file:
                out_file.close()
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
    if timed_out.is_set():
        raise ChildFailed(
            name, proc.returncode, stderr + f"\n{name}: killed after {timeout_s:g} s", timed_out=True
        )
    if proc.returncode != 0:
        raise ChildFailed(name, proc.returncode, stderr)
    return stdout.decode("utf-8", "replace")


# ---------------------------------------------------------------------------------------------------------
# files: checksums and formats
# ---------------------------------------------------------------------------------------------------------


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
    text = head.lstrip()
    if text.startswith((b"--", b"SET ", b"CREATE ", b"SELECT ", b"BEGIN", b"\\")):
        return "plain"
    return "unknown"


# ---------------------------------------------------------------------------------------------------------
# backup: dump, key, metadata, upload, inventory
# ---------------------------------------------------------------------------------------------------------


@dataclass
class Dump:
    """A local dump file and what we know about it."""

    path: str
    format: str  # custom | plain-gzip
    size: int
    sha256: str
    seconds: float
    created_at: _dt.datetime
    source: str  # host:port/dbname (no credentials)

    def table(self):
        """One-row DataFrame for display."""
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "file": Path(self.path).name,
                    "format": self.format,
                    "size_mb": round(self.size / MB, 2),
                    "sha256": self.sha256,
                    "seconds": round(self.seconds, 2),
                    "created_at": self.created_at.isoformat(timespec="seconds"),
                    "source": self.source,
                }
            ]
        )


def _source_of(env: dict[str, str]) -> str:
    return f"{env.get('PGHOST', '')}:{env.get('PGPORT', '5432')}/{env.get('PGDATABASE', '')}"


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
    """pg_dump the database at $``database_url_env`` (direct host, not a pooler) into ``dest_dir``.

    ``fmt`` 'custom' = ``pg_dump -Fc`` (restorable in parallel, has a table of contents); 'plain-gzip' = plain
    SQL compressed with gzip (the runbook's manual backup). Raises ChildFailed with pg_dump's own error.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    env = libpq_env(secret(database_url_env))
    created = _dt.datetime.now(_dt.UTC).replace(microsecond=0)
    dest = Path(dest_dir) / backup_filename(fmt, created)
    dest.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    base = [tool(pg_bindir, "pg_dump"), "--no-password"]
    if fmt == "custom":
        run_child([*base, "-Fc", f"-Z{compress}", "-f", str(dest)], env=env, timeout_s=timeout_s)
    else:
        with gzip.open(dest, "wb", compresslevel=compress) as gz:
            run_child([*base, "-Fp"], env=env, timeout_s=timeout_s, stdout_sink=gz.write)
    seconds = time.monotonic() - t0
    size = dest.stat().st_size
    log(f"pg_dump {fmt}: {dest.name} {size / MB:.1f} MB in {seconds:.1f} s")
    return Dump(str(dest), fmt, size, sha256_file(dest), seconds, created, _source_of(env))


def make_dump(
    database_url_env: str,
    dest_dir: str | Path,
    *,
    fmt: str = "custom",
    pg_bindir: str = "",
    timeout_s: float = 3600,
) -> Dump | None:
    """dump_database() for a notebook: pg_dump's own error becomes a P1 finding instead of an exception."""
    try:
        dump = dump_database(database_url_env, dest_dir, fmt=fmt, pg_bindir=pg_bindir, timeout_s=timeout_s)
    except ChildFailed as exc:
        findings.add("P1", "pg_dump failed", exc.stderr or str(exc), check="backup.dump")
        return None
    findings.ok(
        f"pg_dump {fmt} took {dump.seconds:.1f} s",
        f"{dump.size / MB:.1f} MB from {dump.source}",
        check="backup.dump",
    )
    return dump


def archive_tables(path: str | Path, pg_bindir: str = "", timeout_s: float = 120) -> list[str]:
    """Tables in a custom-format archive's table of contents (``pg_restore --list``), as 'schema.name'."""
    listing = run_child(
        [tool(pg_bindir, "pg_restore"), "--list", str(path)], env=libpq_env("", None), timeout_s=timeout_s
    )
    return [f"{e['schema']}.{e['name']}" for e in parse_toc(listing) if e["desc"] == "TABLE"]


_TOC_LINE = re.compile(r"^(?P<id>\d+);\s+(?P<cat>\d+)\s+(?P<oid>\d+)\s+(?P<rest>.*)$")
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


def parse_toc(listing: str) -> list[dict[str, str]]:
    """Entries of ``pg_restore --list`` output: id, desc (TABLE, TABLE DATA, EXTENSION…), schema, name, line."""
    out: list[dict[str, str]] = []
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
        out.append({"id": m.group("id"), "desc": desc, "schema": schema, "name": name, "line": line})
    return out


def verify_dump(dump: Dump, pg_bindir: str = "", timeout_s: float = 600):
    """Check a fresh dump locally before it leaves the machine: format magic, readable TOC / complete gzip.

    Records a P1 when the dump is unreadable (a backup that cannot be read is no backup). Returns a table.
    """
    import pandas as pd

    rows = []
    detected = detect_format(dump.path)
    expected = "custom" if dump.format == "custom" else "gzip"
    rows.append(
        {"check": "format", "ok": detected == expected, "detail": f"{detected} (expected {expected})"}
    )
    try:
        if detected == "custom":
            tables = archive_tables(dump.path, pg_bindir, timeout_s)
            rows.append({"check": "table of contents", "ok": bool(tables), "detail": f"{len(tables)} tables"})
        elif detected == "gzip":
            tail = _gzip_tail(dump.path)
            complete = b"PostgreSQL database dump complete" in tail
            rows.append(
                {
                    "check": "gzip stream + dump trailer",
                    "ok": complete,
                    "detail": "complete" if complete else "trailer missing",
                }
            )
    except (ChildFailed, OSError, EOFError, zlib.error) as exc:
        rows.append({"check": "readable", "ok": False, "detail": str(exc)})
    table = pd.DataFrame(rows)
    if table["ok"].all():
        findings.ok(
            f"dump {Path(dump.path).name} is readable", "; ".join(table["detail"]), check="backup.verify"
        )
    else:
        bad = table[~table["ok"]]
        findings.add(
            "P1", "fresh dump is unreadable", "; ".join(bad["detail"]), evidence=bad, check="backup.verify"
        )
    return table


def _gzip_tail(path: str | Path, keep: int = 4096) -> bytes:
    """Decompress a whole gzip file (proves the stream and its CRC) and return its last bytes."""
    tail = b""
    with gzip.open(path, "rb") as gz:
        while block := gz.read(4 * MB):
            tail = (tail + block)[-keep:]
    return tail


def object_metadata(
    path: str | Path, fmt: str, created_at: _dt.datetime, sha256: str | None = None
) -> dict[str, str]:
    """S3 user metadata of a backup object: sha256, size, created-at (ISO UTC), format."""
    return {
        "sha256": sha256 or sha256_file(path),
        "size": str(Path(path).stat().st_size),
        "created-at": created_at.astimezone(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "format": fmt,
    }


def manifest_key(key: str) -> str:
    """Key of the manifest object stored beside a backup object."""
    return key + MANIFEST_SUFFIX


def normalize_prefix(prefix: str) -> str:
    """'' or 'folder/' (a trailing slash added, a leading one removed)."""
    prefix = prefix.strip().lstrip("/")
    return prefix if not prefix or prefix.endswith("/") else prefix + "/"


def upload_plan(dump: Dump, bucket: str, prefix: str) -> list[str]:
    """The steps the gated upload will take, as shown before it runs."""
    key = normalize_prefix(prefix) + Path(dump.path).name
    return [
        f"upload {Path(dump.path).name} ({dump.size / MB:.1f} MB, {dump.format}) to s3://{bucket}/{key}",
        f"object metadata: sha256={dump.sha256[:16]}…, size={dump.size}, created-at={dump.created_at.isoformat()}",
        f"write manifest s3://{bucket}/{manifest_key(key)}",
    ]


def upload_backup(
    s3, dump: Dump, bucket: str, prefix: str, *, multipart_threshold_mb: int = 64
) -> dict[str, Any]:
    """Upload the dump with its checksum metadata, then the manifest beside it; verify with a HEAD."""
    from opsnb.checks.clients import s3 as s3mod

    key = normalize_prefix(prefix) + Path(dump.path).name
    meta = object_metadata(dump.path, dump.format, dump.created_at, dump.sha256)
    moved = s3mod.upload(s3, dump.path, bucket, key, meta, multipart_threshold_mb=multipart_threshold_mb)
    manifest = {
        "key": key,
        **meta,
        "source": dump.source,
        "dump_seconds": round(dump.seconds, 2),
        "upload_seconds": round(moved.seconds, 2),
        "tool": "opsnb backup",
        "run_id": context.run_id(),
    }
    s3mod.put_text(s3, bucket, manifest_key(key), json.dumps(manifest, indent=1))
    stored = s3mod.head(s3, bucket, key)
    if stored["size"] != dump.size or stored["metadata"].get("sha256") != dump.sha256:
        raise RuntimeError(
            f"s3://{bucket}/{key} does not hold what was uploaded (size {stored['size']} != {dump.size})"
        )
    return {
        "key": key,
        "size": dump.size,
        "seconds": round(moved.seconds, 2),
        "mb_per_s": round(moved.mb_per_s, 1),
    }


def upload_step(s3, dump: Dump | None, bucket: str, prefix: str) -> dict[str, Any]:
    """The backup's write, as a gated action: plan (key, size) always; upload only with --allow-writes."""
    from opsnb.checks.actions import action

    if dump is None:
        findings.add("P1", "no dump to upload", "pg_dump failed (see above)", check="backup.upload")
        return {"status": "skipped"}
    entry = action(
        f"upload backup {Path(dump.path).name}",
        upload_plan(dump, bucket, prefix),
        lambda: upload_backup(s3, dump, bucket, prefix),
    )
    if entry["status"] == "applied":
        findings.ok("backup uploaded", str(entry["result"]), check="backup.upload")
    elif entry["status"] == "planned":
        findings.ok(
            "dry run: dump made and verified locally, not uploaded",
            "run with --allow-writes (cron) to upload it",
            check="backup.upload",
        )
    return entry


_KEY_STAMP = re.compile(r"(\d{8})[_T-]?(\d{6})")


def parse_time(text: str) -> _dt.datetime | None:
    """An aware UTC datetime from ISO 8601 text (a 'Z' suffix allowed), None when unparsable."""
    try:
        value = _dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None
    return value.replace(tzinfo=_dt.UTC) if value.tzinfo is None else value.astimezone(_dt.UTC)


def backup_time(
    key: str, last_modified: _dt.datetime, metadata: dict[str, str] | None = None
) -> tuple[_dt.datetime, str]:
    """When a backup was taken: metadata created-at, else the timestamp in its key, else LastModified."""
    created = parse_time((metadata or {}).get("created-at", ""))
    if created:
        return created, "metadata created-at"
    m = _KEY_STAMP.search(Path(key).name)
    if m:
        try:
            stamp = _dt.datetime.strptime(m.group(1) + m.group(2), "%Y%m%d%H%M%S").replace(tzinfo=_dt.UTC)
            return stamp, "key timestamp"
        except ValueError:
            pass
    lm = last_modified.replace(tzinfo=_dt.UTC) if last_modified.tzinfo is None else last_modified
    return lm.astimezone(_dt.UTC), "LastModified"


def resolve_now(now: str = "") -> _dt.datetime:
    """The reference time: ``now`` (ISO 8601, for replaying a night) or the current UTC time."""
    if now:
        parsed = parse_time(now)
        if parsed is None:
            raise ValueError(f"now must be ISO 8601 (e.g. 2025-01-31T02:00:00Z), got {now!r}")
        return parsed
    return _dt.datetime.now(_dt.UTC)


def is_backup_key(key: str) -> bool:
    """True for backup objects (not manifests or folder markers)."""
    return not key.endswith(MANIFEST_SUFFIX) and not key.endswith("/")


def inventory(s3, bucket: str, prefix: str = "", *, now: str = "", retention_days: int = 30):
    """Every backup under the prefix with its age, checksum metadata, manifest, and whether it is past retention.

    Retention 30 days: the runbook's "Retention: 30 days". Objects past it are listed, not deleted (a
    lifecycle rule should remove them); their presence is a P3.
    """
    import pandas as pd

    from opsnb.checks.clients import s3 as s3mod

    ref = resolve_now(now)
    objects = s3mod.list_objects(s3, bucket, normalize_prefix(prefix))
    keys = {o["key"] for o in objects}
    rows = []
    for obj in objects:
        if not is_backup_key(obj["key"]):
            continue
        meta = s3mod.head(s3, bucket, obj["key"])["metadata"]
        when, source = backup_time(obj["key"], obj["last_modified"], meta)
        age_h = (ref - when).total_seconds() / 3600
        rows.append(
            {
                "key": obj["key"],
                "size_mb": round(obj["size"] / MB, 2),
                "taken_at": when.isoformat(timespec="seconds"),
                "time_from": source,
                "age_h": round(age_h, 1),
                "format": meta.get("format", ""),
                "sha256_meta": "sha256" in meta,
                "manifest": manifest_key(obj["key"]) in keys,
                "outside_retention": age_h > retention_days * 24,
            }
        )
    columns = [
        "key",
        "size_mb",
        "taken_at",
        "time_from",
        "age_h",
        "format",
        "sha256_meta",
        "manifest",
        "outside_retention",
    ]
    table = pd.DataFrame(rows, columns=columns).sort_values("age_h", ignore_index=True)
    where = f"s3://{bucket}/{normalize_prefix(prefix)}"
    if table.empty:
        findings.add("P1", "no backups found", f"nothing under {where}", check="backup.inventory")
        return table
    old = table[table["outside_retention"]]
    if len(old):
        findings.add(
            "P3",
            f"{len(old)} backup(s) outside the {retention_days}-day retention",
            "listed, not deleted: add an S3 lifecycle rule that expires them",
            evidence=old[["key", "age_h"]],
            check="backup.retention",
        )
    else:
        findings.ok(
            f"{len(table)} backups under {where}, none past {retention_days} days", check="backup.retention"
        )
    return table


# ---------------------------------------------------------------------------------------------------------
# restore test: latest backup, download, checksum
# ---------------------------------------------------------------------------------------------------------


@dataclass
class Backup:
    """The backup object the restore test works on."""

    bucket: str
    key: str
    size: int
    taken_at: _dt.datetime
    time_from: str
    age_h: float
    metadata: dict[str, str] = field(default_factory=dict)
    manifest: dict[str, Any] | None = None

    def table(self):
        """One-row DataFrame for display."""
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "key": self.key,
                    "size_mb": round(self.size / MB, 2),
                    "taken_at": self.taken_at.isoformat(timespec="seconds"),
                    "time_from": self.time_from,
                    "age_h": round(self.age_h, 1),
                    "sha256": self.metadata.get("sha256", (self.manifest or {}).get("sha256", "(none)")),
                }
            ]
        )


def latest_backup(
    s3, bucket: str, prefix: str = "", *, now: str = "", max_age_h: float = 26, candidates: int = 20
) -> Backup | None:
    """The newest backup under the prefix; P1 "backups stopped" when it is older than ``max_age_h``.

    26 h = a daily 02:00 UTC backup (runbook "Automated Backups") plus two hours of slack. Newest by the
    time it was taken (metadata created-at > key timestamp > LastModified) among the ``candidates`` most
    recently written objects.
    """
    from opsnb.checks.clients import s3 as s3mod

    ref = resolve_now(now)
    where = f"s3://{bucket}/{normalize_prefix(prefix)}"
    try:
        objects = [
            o for o in s3mod.list_objects(s3, bucket, normalize_prefix(prefix)) if is_backup_key(o["key"])
        ]
    except s3mod.S3Error as exc:
        findings.add("P1", "cannot list backups", str(exc), check="restore.latest")
        return None
    if not objects:
        findings.add(
            "P1",
            "no backup found",
            f"nothing under {where}: backups stopped or wrong prefix",
            check="restore.latest",
        )
        return None
    recent = sorted(objects, key=lambda o: o["last_modified"], reverse=True)[:candidates]
    best: Backup | None = None
    for obj in recent:
        meta = s3mod.head(s3, bucket, obj["key"])["metadata"]
        when, source = backup_time(obj["key"], obj["last_modified"], meta)
        # same time (a custom and a plain dump of one night): prefer the custom one (parallel restore)
        if best is None or (when, _custom_key(obj["key"], meta)) > (
            best.taken_at,
            _custom_key(best.key, best.metadata),
        ):
            age = (ref - when).total_seconds() / 3600
            best = Backup(bucket, obj["key"], obj["size"], when, source, age, meta)
    assert best is not None
    text = s3mod.get_text(s3, bucket, manifest_key(best.key))
    if text:
        try:
            best.manifest = json.loads(text)
        except ValueError:
            best.manifest = None
    if best.age_h > max_age_h:
        findings.add(
            "P1",
            "backups stopped: latest backup is too old",
            f"{best.key} was taken {best.age_h:.1f} h ago ({best.time_from}), more than {max_age_h:g} h",
            evidence=best.table(),
            check="restore.latest",
        )
    else:
        findings.ok(
            f"latest backup is {best.age_h:.1f} h old",
            f"{best.key} (limit {max_age_h:g} h)",
            check="restore.latest",
        )
    return best


def _custom_key(key: str, meta: dict[str, str]) -> bool:
    return meta.get("format") == "custom" or key.endswith((".dump", ".backup", ".pgdump"))


WORK_DIR_PREFIX = "opsnb-restore-"
OWNER_FILE = ".owner.json"


def work_dir(base: str = "") -> Path:
    """A private folder for this run's downloaded file (under ``base`` or the system temp dir).

    It records its owner (host, kernel pid, start time) so that a later run can tell a folder left by a
    killed run from one a running run still uses.
    """
    root = Path(base) if base else Path(tempfile.gettempdir())
    path = root / f"{WORK_DIR_PREFIX}{sanitize(context.run_id())}-{_PROCESS_TOKEN}"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    (path / OWNER_FILE).write_text(json.dumps(owner_stamp()))
    return path


def owner_stamp() -> dict[str, Any]:
    """Who made a scratch database or work folder: host, kernel pid, run id, start time (UTC epoch)."""
    import socket

    return {"host": socket.gethostname(), "pid": os.getpid(), "run": context.run_id(), "started": time.time()}


def owner_is_gone(owner: dict[str, Any] | None, *, max_age_s: float) -> bool:
    """True when the owner cannot still be using it: its process on this host is dead, or it is older
    than ``max_age_s`` (another host's run, which we cannot see, is given that long)."""
    import socket

    if not isinstance(owner, dict):
        return False
    if owner.get("host") == socket.gethostname() and isinstance(owner.get("pid"), int):
        try:
            os.kill(owner["pid"], 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # alive, another user's
            return False
        return False
    started = owner.get("started")
    return isinstance(started, (int, float)) and time.time() - started > max_age_s


def fetch(s3, backup: Backup | None, dest_dir: str | Path) -> Transfer | None:
    """Download the backup with plain progress lines; P1 when the download fails."""
    from opsnb.checks.clients import s3 as s3mod

    if backup is None:
        return None
    dest = Path(dest_dir) / Path(backup.key).name
    try:
        moved = s3mod.download(s3, backup.bucket, backup.key, dest, size=backup.size)
    except s3mod.S3Error as exc:
        findings.add("P1", "backup download failed", str(exc), check="restore.download")
        return None
    findings.ok(
        f"downloaded {moved.bytes / MB:.1f} MB in {moved.seconds:.1f} s ({moved.mb_per_s:.1f} MB/s)",
        check="restore.download",
    )
    return moved


def verify_checksum(download: Transfer | None, backup: Backup | None):
    """Size and sha256 of the downloaded file against the object's metadata (else its manifest).

    Mismatch = P1 (the bytes are not what was backed up); no checksum recorded anywhere = P2.
    """
    import pandas as pd

    if download is None or backup is None:
        return pd.DataFrame(columns=["check", "expected", "actual", "ok"])
    expected_sha = backup.metadata.get("sha256") or (backup.manifest or {}).get("sha256")
    expected_size = backup.metadata.get("size") or (backup.manifest or {}).get("size")
    actual_sha = sha256_file(download.path)
    actual_size = Path(download.path).stat().st_size
    rows = [
        {"check": "size", "expected": str(expected_size or "(none)"), "actual": str(actual_size)},
        {"check": "sha256", "expected": expected_sha or "(none)", "actual": actual_sha},
    ]
    rows[0]["ok"] = expected_size is not None and str(expected_size) == str(actual_size)
    rows[1]["ok"] = expected_sha is not None and expected_sha.lower() == actual_sha
    table = pd.DataFrame(rows)
    if expected_sha is None:
        findings.add(
            "P2",
            "backup has no checksum",
            f"{backup.key}: no sha256 in metadata or manifest; cannot prove integrity",
            check="restore.checksum",
        )
    elif not table["ok"].all():
        bad = ", ".join(table.loc[~table["ok"], "check"])
        findings.add(
            "P1",
            f"backup checksum mismatch ({bad})",
            f"{backup.key}: the downloaded bytes are not what was backed up",
            evidence=table,
            check="restore.checksum",
        )
    else:
        findings.ok("size and sha256 match the backup's metadata", backup.key, check="restore.checksum")
    return table


def checksum_ok(table) -> bool:
    """True when a verify_checksum() table says size and sha256 both match."""
    return bool(len(table)) and bool(table["ok"].all())


def restorable(download: Transfer | None, checksums) -> str | None:
    """Path of the downloaded file when its checksum matched (an unverified file is never restored)."""
    return download.path if download is not None and checksum_ok(checksums) else None


# ---------------------------------------------------------------------------------------------------------
# restore test: the scratch database guard
# ---------------------------------------------------------------------------------------------------------


class RefusedDatabase(Exception):
    """A database name that is not a scratch database of this run."""


def sanitize(text: str) -> str:
    """Lower-case letters, digits and underscores only (a safe identifier fragment)."""
    return re.sub(r"[^a-z0-9_]+", "_", text.lower()).strip("_") or "run"


def scratch_prefix(run_id: str | None = None) -> str:
    """``opsnb_restore_<run id>``: the prefix every scratch database of this run carries."""
    rid = run_id if run_id is not None else context.run_id()
    prefix = SCRATCH_PREFIX + sanitize(rid)
    if rid == "interactive":  # JupyterLab: one run per kernel process
        prefix += "_" + _PROCESS_TOKEN
    return prefix[:55]


def scratch_name(run_id: str | None = None) -> str:
    """The scratch database name of this run."""
    return scratch_prefix(run_id)


def guard_scratch(name: str, run_id: str | None = None) -> str:
    """Return ``name`` when it is a scratch database of this run; RefusedDatabase otherwise.

    Every CREATE, restore and DROP goes through this: a name without this run's prefix (the live
    database, another run's scratch database, anything else) is refused before any connection is made.
    """
    prefix = scratch_prefix(run_id)
    if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9_]{1,63}", name or ""):
        raise RefusedDatabase(f"refusing database {name!r}: not a plain lower-case identifier")
    if not name.startswith(prefix):
        raise RefusedDatabase(
            f"refusing database {name!r}: not a scratch database of this run (prefix {prefix})"
        )
    return name


# ---------------------------------------------------------------------------------------------------------
# restore test: restore + verify, with the scratch database dropped in a finally
# ---------------------------------------------------------------------------------------------------------


@dataclass
class RestoreResult:
    """Everything the restore-and-verify step learned."""

    scratch: str
    format: str = ""
    refused: str | None = None
    error: str | None = None  # the restore tool's own error text
    phases: dict[str, float] = field(default_factory=dict)
    archive_bytes: int = 0
    expected_tables: list[str] = field(default_factory=list)
    found_tables: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    counts: Any = None  # DataFrame
    newest_order: _dt.datetime | None = None
    amcheck: str | None = None
    unknown_tables: list[str] = field(default_factory=list)  # key tables the source does not have
    dropped: bool = False
    leftover_error: str | None = None

    @property
    def missing_tables(self) -> list[str]:
        """Tables of the archive that the restored database lacks."""
        return [t for t in self.expected_tables if t not in self.found_tables]

    @property
    def restored(self) -> bool:
        """True when the restore ran to completion without an error."""
        return self.refused is None and self.error is None and "restore" in self.phases

    def phases_table(self):
        """Seconds per phase as a DataFrame."""
        import pandas as pd

        return pd.DataFrame([{"phase": k, "seconds": round(v, 3)} for k, v in self.phases.items()])


def _maint_db(maint_database_url_env: str, statement_timeout_ms: int = 600_000):
    from opsnb.checks.postgres import connect

    return connect(maint_database_url_env, read_only=False, statement_timeout_ms=statement_timeout_ms)


def _creatable_extensions(db) -> tuple[bool, set[str]]:
    superuser = bool(db.scalar("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"))
    trusted = {
        r["name"] for r in db.rows("SELECT DISTINCT name FROM pg_available_extension_versions WHERE trusted")
    }
    return superuser, trusted


def restore_list(listing: str, superuser: bool, trusted: set[str]) -> tuple[str, list[str]]:
    """The TOC with entries this role cannot restore commented out (untrusted extensions for a
    non-superuser, and their comments); returns (list file text, skipped entry descriptions)."""
    skipped: list[str] = []
    keep_ext = superuser
    lines = []
    blocked = set()
    entries = {e["line"]: e for e in parse_toc(listing)}
    for line in listing.splitlines():
        e = entries.get(line)
        if e and e["desc"] == "EXTENSION" and not keep_ext and e["name"] not in trusted:
            blocked.add(e["name"])
            skipped.append(f"EXTENSION {e['name']}")
            lines.append(";" + line)
            continue
        if e and e["desc"] == "COMMENT" and e["name"] == "EXTENSION":
            ext = line.rsplit("EXTENSION", 1)[-1].strip().split(" ")[0]
            if ext in blocked:
                skipped.append(f"COMMENT ON EXTENSION {ext}")
                lines.append(";" + line)
                continue
        lines.append(line)
    return "\n".join(lines) + "\n", skipped


def _restore_custom(path, scratch, env, pg_bindir, jobs, timeout_s, superuser, trusted, result) -> None:
    listing = run_child([tool(pg_bindir, "pg_restore"), "--list", path], env=env, timeout_s=120)
    result.expected_tables = [
        f"{e['schema']}.{e['name']}" for e in parse_toc(listing) if e["desc"] == "TABLE"
    ]
    text, result.skipped = restore_list(listing, superuser, trusted)
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
            f"--dbname={guard_scratch(scratch)}",
            path,
        ]
        run_child(cmd, env=env, timeout_s=timeout_s)
    finally:
        os.unlink(handle.name)


# a name part as pg_dump writes it: "double-quoted" (inner quotes doubled) or plain lower case
_NAME_PART = rb'(?:"(?:[^"]|"")*"|[^\s".(]+)'
_CREATE_TABLE = re.compile(
    rb"^CREATE (?:UNLOGGED )?TABLE (" + _NAME_PART + rb"(?:\." + _NAME_PART + rb")?) \(", re.M
)


def _dump_name(raw: bytes) -> str:
    """schema.table from pg_dump's quoted form: quotes removed, doubled quotes made single."""
    parts = re.findall(_NAME_PART, raw)
    return ".".join(
        p[1:-1].replace(b'""', b'"').decode() if p.startswith(b'"') else p.decode() for p in parts
    )


_SKIP_PLAIN = re.compile(
    rb"^(?:ALTER [A-Z ]+ .* OWNER TO .*;|GRANT .*;|REVOKE .*;|ALTER DEFAULT PRIVILEGES .*;)$"
)
_EXTENSION_STMT = re.compile(
    rb"^(?:CREATE EXTENSION IF NOT EXISTS|CREATE EXTENSION|COMMENT ON EXTENSION) (\S+)"
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
            return b"-- opsnb skipped: " + line
        m = _EXTENSION_STMT.match(line)
        if m and not self.superuser:
            ext = m.group(1).decode().strip('";')
            if ext not in self.trusted:
                self.skipped.append(
                    line.decode(errors="replace").split(" WITH ")[0].split(" IS ")[0].rstrip(";")
                )
                return b"-- opsnb skipped: " + line
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
                if data.startswith(b"\\.\n", pos):
                    end = pos
                else:
                    end = data.find(b"\n\\.\n", pos)
                    end = -1 if end == -1 else end + 1
                if end == -1:
                    # keep a tail that could be the start of the end marker
                    cut = max(pos, len(data) - 3)
                    out.append(data[pos:cut])
                    self.carry = data[cut:]
                    return b"".join(out)
                out.append(data[pos : end + 3])
                pos = end + 3
                self.in_copy = False
                continue
            nl = data.find(b"\n", pos)
            if nl == -1:
                self.carry = data[pos:]
                break
            out.append(self._line(data[pos : nl + 1].rstrip(b"\n")) + b"\n")
            pos = nl + 1
        return b"".join(out)

    def finish(self) -> bytes:
        """Whatever is left at the end of the stream."""
        rest, self.carry = self.carry, b""
        return rest if self.in_copy or not rest else self._line(rest)


def _plain_chunks(path: str, gzipped: bool, filt: PlainFilter, result: RestoreResult) -> Iterable[bytes]:
    opener = gzip.open if gzipped else open
    try:
        with opener(path, "rb") as handle:
            while block := handle.read(4 * MB):
                yield filt.feed(block)
        yield filt.finish()
    except (OSError, EOFError, zlib.error) as exc:
        result.error = f"reading {Path(path).name}: {type(exc).__name__}: {exc}"
        # stop feeding: psql sees end of input in the middle of the dump


def _restore_plain(path, gzipped, scratch, env, pg_bindir, timeout_s, superuser, trusted, result) -> None:
    filt = PlainFilter(superuser, trusted)
    cmd = [
        tool(pg_bindir, "psql"),
        "-X",
        "-q",
        "--no-password",
        "-v",
        "ON_ERROR_STOP=1",
        f"--dbname={guard_scratch(scratch)}",
    ]
    try:
        run_child(cmd, env=env, timeout_s=timeout_s, stdin_chunks=_plain_chunks(path, gzipped, filt, result))
    finally:
        result.expected_tables = [t if "." in t else f"public.{t}" for t in filt.tables]
        result.skipped = filt.skipped
    if result.error:  # the file itself was broken: psql may have "succeeded" on a prefix of it
        raise ChildFailed("gunzip" if gzipped else "read", 1, result.error)


def key_table_counts(db, tables: list[str]) -> dict[str, int | None]:
    """Row count of each table named in ``tables`` ("schema.table" or a name on the search path): None
    for a name the catalog does not know, -1 for a table that is there but could not be counted. The
    name is looked up with parameters and the count names the table the catalog returned
    (sql.Identifier(schema, table)): a name is never pasted into SQL, so one like
    'Product" WHERE false; …' only fails to match."""
    from psycopg import sql

    from opsnb.checks.postgres.session import DatabaseError
    from opsnb.checks.postgres.stats import resolve_table

    counts: dict[str, int | None] = {}
    for name in tables:
        found = resolve_table(db, name)
        if found is None:
            counts[name] = None
            continue
        try:
            counts[name] = int(db.scalar(sql.SQL("SELECT count(*) FROM {}").format(found.ident)))
        except DatabaseError:  # e.g. no privilege on it: counted as absent, as before
            counts[name] = -1
    return counts


def _key_table_names(key_tables: Iterable[str] | str) -> list[str]:
    # a single string is the CLI's comma-separated list; items are names exactly as written
    items = key_tables.split(",") if isinstance(key_tables, str) else list(key_tables)
    names = []
    for item in items:
        name = item.strip() if isinstance(item, str) else item
        if not isinstance(name, str):
            raise TypeError(f"key_tables holds {type(name).__name__}, not a table name")
        if name and name not in names:
            names.append(name)
    return names


def restore_and_verify(
    path: str | None,
    *,
    maint_database_url_env: str,
    database_url_env: str = "",
    scratch_database: str = "",
    pg_bindir: str = "",
    jobs: int = 2,
    key_tables: Iterable[str] | str = KEY_TABLES,
    row_tolerance: float = 0.05,
    min_rows: int = 1,
    amcheck: bool = False,
    timeout_s: float = 3600,
) -> RestoreResult:
    """Create the scratch database, restore ``path`` into it, verify it, and ALWAYS drop it.

    Custom format → ``pg_restore -j jobs --exit-on-error --no-owner --no-privileges`` (skipping extensions
    this role cannot create); plain or gzip'd SQL → ``psql -v ON_ERROR_STOP=1`` fed a streamed, filtered
    copy. Verification: every table of the archive exists; row counts of ``key_tables`` ("schema.table" or
    a table on the search path; each looked up in the catalog, never pasted into SQL) against the source
    database (read-only, within ``row_tolerance``, the source keeps growing after the backup) or against
    ``min_rows`` when the source is unreachable; a key table the source does not have is reported as
    unknown; the newest "Order"."createdAt" (judged by
    check_freshness()); optional ``pg_amcheck``. Records its findings; never raises for a failed
    restore (the tool's own error text becomes a P1).
    """
    from psycopg import sql

    scratch = scratch_database or scratch_name()
    result = RestoreResult(scratch=scratch)
    if not path:
        findings.add("info", "restore skipped", "no verified backup file to restore", check="restore.restore")
        return result
    try:
        guard_scratch(scratch)
    except RefusedDatabase as exc:
        result.refused = str(exc)
        findings.add(
            "P1", "restore refused: target is not a scratch database", str(exc), check="restore.guard"
        )
        return result
    result.archive_bytes = Path(path).stat().st_size
    kind = detect_format(path)
    result.format = kind
    maint = secret(maint_database_url_env)
    admin = None
    t = time.monotonic()
    try:
        admin = _maint_db(maint_database_url_env)
        superuser, trusted = _creatable_extensions(admin)
        admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(guard_scratch(scratch)))
        )
        # The owner goes with the database: a later run drops it if this kernel is killed before its DROP.
        admin.execute(
            sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                sql.Identifier(guard_scratch(scratch)), sql.Literal(json.dumps(owner_stamp()))
            )
        )
        result.phases["create"] = time.monotonic() - t
        env = libpq_env(maint, dbname=guard_scratch(scratch))
        t = time.monotonic()
        if kind == "custom":
            _restore_custom(path, scratch, env, pg_bindir, jobs, timeout_s, superuser, trusted, result)
        elif kind in ("gzip", "plain"):
            _restore_plain(
                path, kind == "gzip", scratch, env, pg_bindir, timeout_s, superuser, trusted, result
            )
        else:
            raise ChildFailed("detect", None, f"{Path(path).name}: not a pg_dump archive, gzip or SQL file")
        result.phases["restore"] = time.monotonic() - t
        t = time.monotonic()
        _verify(result, maint, database_url_env, _key_table_names(key_tables), row_tolerance, min_rows)
        if amcheck:
            _amcheck(result, env, pg_bindir, timeout_s)
        result.phases["verify"] = time.monotonic() - t
    except ChildFailed as exc:
        result.error = exc.stderr or str(exc)
    except Exception as exc:  # noqa: BLE001 - the notebook must go on to clean up and report
        result.error = scrub(f"{type(exc).__name__}: {exc}")
    finally:
        t = time.monotonic()
        try:
            if admin is None:
                admin = _maint_db(maint_database_url_env)
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(guard_scratch(scratch))
                )
            )
            result.dropped = not admin.scalar("SELECT 1 FROM pg_database WHERE datname = %s", (scratch,))
        except Exception as exc:  # noqa: BLE001
            result.leftover_error = scrub(f"{type(exc).__name__}: {exc}")
        finally:
            if admin is not None:
                admin.close()
        result.phases["drop"] = time.monotonic() - t
    _record_restore(result)
    return result


def _verify(result, maint, database_url_env, key_tables, tolerance, min_rows) -> None:
    import pandas as pd

    from opsnb.checks.postgres import connect
    from opsnb.checks.postgres.session import DatabaseError

    url = maint.reveal()
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    parts = conninfo_to_dict(url)
    parts["dbname"] = guard_scratch(result.scratch)
    db = connect(Secret(maint.name, make_conninfo(**parts)), read_only=True, statement_timeout_ms=300_000)
    try:
        found = db.rows(
            "SELECT table_schema || '.' || table_name AS t FROM information_schema.tables "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
        )
        result.found_tables = sorted(r["t"] for r in found)
        restored = key_table_counts(db, key_tables)
        try:
            newest = db.scalar('SELECT max("createdAt") FROM "Order"')
            result.newest_order = (
                newest.replace(tzinfo=_dt.UTC) if newest and newest.tzinfo is None else newest
            )
        except DatabaseError:
            result.newest_order = None
    finally:
        db.close()
    source: dict[str, int | None] | None = None
    source_db = ""
    source_note = ""
    if database_url_env:
        try:
            with connect(database_url_env, read_only=True, statement_timeout_ms=60_000) as src:
                source_db = str(src.scalar("SELECT current_database()"))
                source = key_table_counts(src, key_tables)
        except (DatabaseError, Exception) as exc:  # noqa: BLE001 - unreachable source: fall back to minimums
            source_note = scrub(str(exc))
    rows = []
    for t in key_tables:
        got = restored.get(t)
        src = source.get(t) if source else None
        note = "" if got is not None else f'table "{t}" does not exist in database {result.scratch}'
        if source is not None and src is None:
            # the source does not know the name: a wrong parameter (or a table dropped since), not a
            # restore problem; reported on its own, kept out of the P1 count check
            note = f'table "{t}" does not exist in database {source_db}'
            result.unknown_tables.append(note)
            ok, rule = False, "unknown table"
        elif src is not None and src >= 0:
            ok = got is not None and abs(src - got) <= max(1, tolerance * src) and got >= min_rows
            rule = f"within {tolerance:.0%} of source"
        else:
            ok = got is not None and got >= min_rows
            rule = f">= {min_rows} rows"
        restored_n = -1 if got is None else got  # -1: absent from the restored database
        rows.append({"table": t, "restored": restored_n, "source": src, "rule": rule, "ok": ok, "note": note})
    result.counts = pd.DataFrame(rows, columns=["table", "restored", "source", "rule", "ok", "note"])
    if source_note:
        result.counts.attrs["source_note"] = source_note


def _amcheck(result: RestoreResult, env, pg_bindir: str, timeout_s: float) -> None:
    """pg_amcheck --heapallindexed over the scratch database (installs amcheck there when the role may)."""
    cmd = [
        tool(pg_bindir, "pg_amcheck"),
        "--no-password",
        "--install-missing",
        "--heapallindexed",
        f"--database={guard_scratch(result.scratch)}",
    ]
    try:
        out = run_child(cmd, env=env, timeout_s=timeout_s)
        result.amcheck = out.strip() or "no corruption found"
    except ChildFailed as exc:
        text = exc.stderr or str(exc)
        if "permission denied to create extension" in text or "is not installed" in text:
            result.amcheck = "UNAVAILABLE: " + first_error(text)
        else:
            result.amcheck = "FAILED: " + text


def _record_restore(result: RestoreResult) -> None:
    """Findings of a restore_and_verify() run."""
    check = "restore.restore"
    if result.refused:
        return
    if result.error:
        findings.add(
            "P1",
            "restore FAILED",
            f"{result.format or '?'} restore into {result.scratch}: {result.error}",
            evidence={"error": result.error, "phases": result.phases},
            check=check,
        )
    elif result.restored:
        findings.ok(
            f"restore succeeded in {result.phases.get('restore', 0):.1f} s",
            f"{result.format} into {result.scratch}",
            check=check,
        )
    if result.skipped:
        findings.add(
            "info",
            "entries skipped (need superuser)",
            "; ".join(result.skipped) + ": production restores run as the owner",
            check="restore.skipped",
        )
    if result.restored:
        if result.missing_tables:
            findings.add(
                "P1",
                f"{len(result.missing_tables)} table(s) of the archive missing after restore",
                ", ".join(result.missing_tables),
                check="restore.tables",
            )
        else:
            findings.ok(
                f"all {len(result.expected_tables)} tables of the archive exist", check="restore.tables"
            )
        for note in result.unknown_tables:
            findings.add(
                "P2",
                "key table not found",
                note + ': check the key_tables parameter ("schema.table" or a table on the search path)',
                check="restore.counts",
            )
        if result.counts is not None and len(result.counts):
            counted = result.counts[result.counts["rule"] != "unknown table"]
            bad = counted[~counted["ok"].astype(bool)]
            if len(bad):
                findings.add(
                    "P1",
                    "row counts off after restore",
                    "; ".join(
                        f"{r.table}: {r.note or r.restored} ({r.rule}, source {r.source})"
                        for r in bad.itertuples()
                    ),
                    evidence=bad,
                    check="restore.counts",
                )
            elif len(counted):
                findings.ok(
                    "row counts of key tables as expected",
                    ", ".join(f"{r.table}={r.restored}" for r in counted.itertuples()),
                    check="restore.counts",
                )
        if result.amcheck is not None:
            if result.amcheck.startswith("UNAVAILABLE"):
                findings.add("info", "pg_amcheck not run", result.amcheck, check="restore.amcheck")
            elif result.amcheck.startswith("FAILED"):
                findings.add(
                    "P1", "pg_amcheck found a problem", result.amcheck[:2000], check="restore.amcheck"
                )
            else:
                findings.ok(
                    "pg_amcheck --heapallindexed found no corruption",
                    "(it can prove corruption, not its absence)",
                    check="restore.amcheck",
                )
    if result.dropped:
        findings.ok(f"scratch database {result.scratch} dropped", check="restore.cleanup")
    else:
        findings.add(
            "P2",
            f"scratch database {result.scratch} may be left behind",
            result.leftover_error or "still listed in pg_database",
            check="restore.cleanup",
        )


def check_freshness(
    result: RestoreResult, backup: Backup | None, max_order_lag_h: float = 24
) -> dict[str, Any]:
    """Newest "Order"."createdAt" in the restored data vs when the backup was taken (a frozen source or a
    backup of the wrong database shows here). 24 h: the shop takes orders every day."""
    out = {
        "newest_order": result.newest_order,
        "backup_taken_at": backup.taken_at if backup else None,
        "lag_h": None,
    }
    if not result.restored or backup is None:
        return out
    if result.newest_order is None:
        findings.add(
            "P2",
            'no "Order"."createdAt" in the restored data',
            "cannot tell how recent the data is",
            check="restore.freshness",
        )
        return out
    lag = (backup.taken_at - result.newest_order).total_seconds() / 3600
    out["lag_h"] = round(lag, 2)
    if lag > max_order_lag_h:
        findings.add(
            "P2",
            "restored data is older than the backup suggests",
            f'newest "Order" {lag:.1f} h before the backup was taken (limit {max_order_lag_h:g} h)',
            check="restore.freshness",
        )
    else:
        findings.ok(f'newest "Order" {lag:.1f} h before the backup was taken', check="restore.freshness")
    return out


def rto_report(result: RestoreResult, download: Transfer | None):
    """RTO = download + restore (+ create/verify/drop shown apart), MB/s, and a bar chart of the phases."""
    import matplotlib.pyplot as plt
    import pandas as pd

    phases = {}
    if download is not None:
        phases["download"] = download.seconds
    phases.update(result.phases)
    table = pd.DataFrame([{"phase": k, "seconds": round(v, 3)} for k, v in phases.items()])
    rto = phases.get("download", 0) + phases.get("restore", 0)
    size_mb = result.archive_bytes / MB
    summary = {
        "archive_mb": round(size_mb, 2),
        "download_mb_per_s": round(download.mb_per_s, 1) if download else None,
        "restore_mb_per_s": round(size_mb / phases["restore"], 1) if phases.get("restore") else None,
        "rto_s": round(rto, 2),
    }
    if len(table):
        fig, ax = plt.subplots(figsize=(6, 2.4))
        ax.barh(
            table["phase"],
            table["seconds"],
            color=["#4C72B0" if p in ("download", "restore") else "#999999" for p in table["phase"]],
        )
        ax.invert_yaxis()
        ax.set_xlabel("seconds")
        ax.set_title(f"restore test phases (RTO download+restore = {rto:.1f} s)")
        fig.tight_layout()
        plt.show()
    if result.restored:
        findings.ok(
            f"RTO {rto:.1f} s for {size_mb:.1f} MB",
            f"download + restore; restore {summary['restore_mb_per_s']} MB/s",
            check="restore.rto",
        )
    print(json.dumps(summary))
    return table


def tables_table(result: RestoreResult):
    """Each table of the archive and whether the restored database has it."""
    import pandas as pd

    return pd.DataFrame(
        [{"table": t, "restored": t in result.found_tables} for t in result.expected_tables],
        columns=["table", "restored"],
    )


def check_leftovers(maint_database_url_env: str):
    """Scratch databases still present after the cleanup: this run's = P2, earlier runs' = P3 (disk)."""
    import pandas as pd

    try:
        names = scratch_databases(maint_database_url_env)
    except Exception as exc:  # noqa: BLE001
        findings.add("P3", "cannot list scratch databases", scrub(str(exc)), check="restore.leftovers")
        return pd.DataFrame(columns=["database", "this_run"])
    mine = scratch_prefix()
    table = pd.DataFrame(
        [{"database": n, "this_run": n.startswith(mine)} for n in names], columns=["database", "this_run"]
    )
    if table["this_run"].any():
        findings.add(
            "P2",
            "this run's scratch database is still there",
            ", ".join(table.loc[table["this_run"], "database"]),
            check="restore.leftovers",
        )
    elif len(table):
        findings.add(
            "P3",
            f"{len(table)} scratch database(s) of earlier runs left behind",
            ", ".join(names) + ": drop them by hand",
            check="restore.leftovers",
        )
    else:
        findings.ok("no scratch database left on the server", check="restore.leftovers")
    return table


STALE_AFTER_S = 24 * 3600  # a scratch database or folder of another host's run is left alone this long


@findings.check("restore.interrupted-runs", essential=False)
def remove_leftovers(maint_database_url_env: str = "", work_base: str = "", max_age_s: float = STALE_AFTER_S):
    """Remove the scratch databases and download folders of earlier runs that were killed before their own
    cleanup (whose kernel is gone, or older than ``max_age_s``); conclude what was removed."""
    import shutil

    import pandas as pd

    rows = []
    root = Path(work_base) if work_base else Path(tempfile.gettempdir())
    for folder in sorted(root.glob(WORK_DIR_PREFIX + "*")):
        if folder.is_symlink() or not folder.is_dir():
            continue
        try:
            owner = json.loads((folder / OWNER_FILE).read_text())
        except (OSError, ValueError):
            owner = None
        if owner is None and time.time() - folder.stat().st_mtime > max_age_s:
            owner = {"started": folder.stat().st_mtime}
        if owner_is_gone(owner, max_age_s=max_age_s):
            shutil.rmtree(folder, ignore_errors=True)
            rows.append({"kind": "download folder", "name": str(folder), "owner run": owner.get("run", "?")})
    if maint_database_url_env:
        rows += _drop_stale_scratch(maint_database_url_env, max_age_s)
    table = pd.DataFrame(rows, columns=["kind", "name", "owner run"])
    if not rows:
        return findings.conclude("pass", "No leftovers of interrupted runs", evidence=table)
    return findings.conclude(
        "pass",
        f"Removed {len(rows)} leftover(s) of interrupted runs",
        detail="; ".join(f"{r['kind']} {r['name']}" for r in rows),
        evidence=table,
    )


def _drop_stale_scratch(maint_database_url_env: str, max_age_s: float) -> list[dict[str, Any]]:
    """Drop scratch databases this role owns whose creating kernel is gone; what was dropped."""
    from psycopg import sql

    dropped = []
    with _maint_db(maint_database_url_env) as db:
        found = db.rows(
            "SELECT d.datname, shobj_description(d.oid, 'pg_database') AS owner "
            "FROM pg_database d WHERE d.datname LIKE %s AND d.datdba = "
            "(SELECT oid FROM pg_roles WHERE rolname = current_user) ORDER BY 1",
            (SCRATCH_PREFIX + "%",),
        )
        for row in found:
            try:
                owner = json.loads(row["owner"] or "")
            except ValueError:
                owner = None
            if not owner_is_gone(owner, max_age_s=max_age_s):
                continue
            # The name comes from pg_database and must carry the scratch prefix: never the live database.
            name = row["datname"]
            if not re.fullmatch(SCRATCH_PREFIX + r"[a-z0-9_]{1,49}", name):
                continue
            db.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            dropped.append({"kind": "scratch database", "name": name, "owner run": owner.get("run", "?")})
    return dropped


def scratch_databases(maint_database_url_env: str) -> list[str]:
    """Databases whose name carries the scratch prefix (any run): what a cleanup check looks at."""
    from opsnb.checks.postgres import connect

    with connect(maint_database_url_env) as db:
        return [
            r["datname"]
            for r in db.rows(
                "SELECT datname FROM pg_database WHERE datname LIKE %s ORDER BY 1", (SCRATCH_PREFIX + "%",)
            )
        ]


def cleanup_local(path: str | Path | None) -> None:
    """Remove the downloaded backup file and its folder (evidence keeps only the figures)."""
    import shutil

    if path:
        shutil.rmtree(Path(path), ignore_errors=True)
