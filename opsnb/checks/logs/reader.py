"""``read_logs``: request/app logs from a log source into one pandas DataFrame (``LogRead.frame``).

A source is a Vercel log-drain file (NDJSON, one JSON object per line; ``.ndjson``, ``.jsonl``, ``.log``,
``.json`` — a ``.json`` file may also hold one JSON array), a ``.gz`` of one, or a folder of them (read
recursively, in name order). Lines that are not log-drain JSON (truncated, binary, empty, not an object)
are counted in ``LogRead.garbage``, never raised.

Speed: each file is parsed in large blocks by pyarrow's multithreaded JSON reader with an explicit schema;
a block that fails is split in halves until the bad lines are isolated, and those small pieces are parsed
line by line with :mod:`json` (lenient about types). Clean files never touch the slow path.

Two API sources are named by a scheme (``api_base``/``token_env`` give the base URL and the NAME of the
environment variable holding the token); their responses become log rows in opsnb.checks.clients:

- ``vercel://PROJECT/DEPLOYMENT``: Vercel's runtime logs of one deployment
  (:func:`opsnb.checks.clients.vercel.runtime_logs_frame`; bad lines counted as garbage).
- ``sentry://ORG``: Sentry's unresolved issues of an organization, one row per issue
  (:func:`opsnb.checks.clients.sentry.issues_log_frame`, with an extra ``count`` column).

The frame's columns are ``opsnb.checks.logs.frame.COLUMNS``.
"""

from __future__ import annotations

import datetime as _dt
import gzip
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opsnb.checks.logs.frame import Garbage, LogRead, as_int, as_text
from opsnb.checks.logs.window import between, utc
from opsnb.errors import OpsnbError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

LOG_SUFFIXES = (".ndjson", ".jsonl", ".log", ".json")
BLOCK_BYTES = 2 << 20  # bytes per pyarrow call; blocks are parsed in parallel, a failing one is re-parsed
LINE_BY_LINE_BELOW = 64  # a failing piece with fewer lines than this is parsed line by line
API_SCHEMES = {"sentry": "https://sentry.io", "vercel": "https://api.vercel.com"}  # scheme → default API base


class LogSourceError(OpsnbError, ValueError):
    """The log source is not one read_logs can read (empty, an http URL, a malformed vercel:// or sentry://)."""


def read_logs(
    source: str | Path,
    *,
    since: str | _dt.datetime | _dt.timedelta | pd.Timestamp | None = None,
    until: str | _dt.datetime | _dt.timedelta | pd.Timestamp | None = None,
    api_base: str = "",
    token_env: str = "",
) -> LogRead:
    """Read a log source (file, .gz, folder, ``vercel://…`` or ``sentry://…``; see module doc) into a ``LogRead``.

    ``since``/``until`` (datetime, ISO string, pandas Timestamp, or a timedelta meaning "that long ago";
    naive = UTC) keep rows with since <= timestamp < until. Garbage lines are counted, never raised. For the
    API sources ``token_env`` NAMES the environment variable holding the token (required) and ``api_base``
    overrides the public API (``API_SCHEMES``); they are ignored for files.
    """
    if not str(source).strip():
        raise LogSourceError("no log source given")
    now = utc(_dt.datetime.now(_dt.UTC))
    start, end = utc(since, now), utc(until, now)
    if (api := api_source(source)) is not None:
        read = _read_api(*api, api_base=api_base, token_env=token_env)
        read.frame = between(read.frame, start, end).reset_index(drop=True)
        return read
    if is_url(source):
        raise LogSourceError(
            f"URL log sources are not supported by read_logs ({source}); "
            "use vercel://PROJECT/DEPLOYMENT or sentry://ORG"
        )
    return _read_files(log_files(source), start, end)


def api_source(source: str | Path) -> tuple[str, str] | None:
    """(scheme, rest) for ``sentry://ORG`` / ``vercel://PROJECT/DEPLOYMENT`` sources, else None."""
    if not isinstance(source, str) or "://" not in source:
        return None
    scheme, rest = source.split("://", 1)
    return (scheme.lower(), rest.strip("/")) if scheme.lower() in API_SCHEMES else None


def is_url(source: str | Path) -> bool:
    """True when ``source`` names an HTTP(S) endpoint rather than a file or folder."""
    return isinstance(source, str) and source.split("://", 1)[0].lower() in ("http", "https")


def log_files(source: str | Path) -> list[Path]:
    """The log files a file/folder source stands for (folder: recursive, name order, hidden files skipped)."""
    path = Path(source).expanduser()
    if path.is_dir():
        found = [
            p
            for p in path.rglob("*")
            if p.is_file()
            and not any(part.startswith(".") for part in p.relative_to(path).parts)
            and _log_suffix(p)
        ]
        return sorted(found)
    if path.is_file():
        return [path]
    raise FileNotFoundError(f"log source {path} does not exist")


# --- API sources ---------------------------------------------------------------------------------------------
def _read_api(scheme: str, rest: str, *, api_base: str, token_env: str) -> LogRead:
    """One API call for a ``vercel://`` or ``sentry://`` source, as a LogRead (no files)."""
    from opsnb.checks.secrets import secret

    if not token_env:
        raise LogSourceError(f"{scheme}:// log sources need token_env (the variable holding the API token)")
    base = api_base or API_SCHEMES[scheme]
    if scheme == "sentry":
        from opsnb.checks.clients.sentry import Sentry, issues_log_frame

        if not rest or "/" in rest:
            raise LogSourceError(f"sentry log source must be sentry://ORG, not sentry://{rest}")
        with Sentry(secret(token_env), base) as api:
            items = api.issues(rest)
        return LogRead(issues_log_frame(items), lines=len(items))
    from opsnb.checks.clients.vercel import Vercel, runtime_logs_frame

    project, _, deployment = rest.partition("/")
    if not project or not deployment or "/" in deployment:
        raise LogSourceError(f"vercel log source must be vercel://PROJECT/DEPLOYMENT, not vercel://{rest}")
    with Vercel(secret(token_env), base) as api:
        lines = api.runtime_logs(project, deployment)
    garbage = Garbage()
    frame = runtime_logs_frame(lines, garbage, project=project, deployment=deployment)
    return LogRead(frame, garbage.count, [], garbage.kinds, garbage.samples, len(lines))


# --- drain files ---------------------------------------------------------------------------------------------
def _read_files(files: list[Path], start: pd.Timestamp | None, end: pd.Timestamp | None) -> LogRead:
    """The drain files parsed, cut to [start, end), concatenated and sorted by time."""
    import pyarrow as pa

    garbage = Garbage()
    schema = _schema()
    tables, lines = [], 0
    for path in files:
        table, n = _parse(_read_bytes(path), schema, garbage)
        lines += n
        if table is not None and table.num_rows:
            tables.append(_cut(table, start, end))
    table = pa.concat_tables(tables) if tables else schema.empty_table()
    frame = _frame(table)
    del table, tables
    if len(frame) and not frame["timestamp"].is_monotonic_increasing:
        frame = frame.sort_values("timestamp", kind="stable").reset_index(drop=True)
    return LogRead(frame, garbage.count, files, garbage.kinds, garbage.samples, lines)


def _log_suffix(path: Path) -> bool:
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    return name.endswith(LOG_SUFFIXES)


def _read_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(data)
        except (OSError, EOFError):  # truncated .gz: keep what decompresses
            import zlib

            return zlib.decompressobj(wbits=31).decompress(data)
    return data


def _schema() -> pa.Schema:
    """The drain line's fields the frame uses, typed (pyarrow ignores the others)."""
    import pyarrow as pa

    proxy = pa.struct(
        [
            ("statusCode", pa.int64()),
            ("path", pa.string()),
            ("method", pa.string()),
            ("clientIp", pa.string()),
            ("region", pa.string()),
            ("host", pa.string()),
        ]
    )
    return pa.schema(
        [
            ("id", pa.string()),
            ("deploymentId", pa.string()),
            ("source", pa.string()),
            ("host", pa.string()),
            ("timestamp", pa.int64()),
            ("projectId", pa.string()),
            ("level", pa.string()),
            ("message", pa.string()),
            ("statusCode", pa.int64()),
            ("requestId", pa.string()),
            ("path", pa.string()),
            ("proxy", proxy),
        ]
    )


def _cut(table: pa.Table, start: pd.Timestamp | None, end: pd.Timestamp | None) -> pa.Table:
    """Rows with start <= timestamp < end, on the arrow table (epoch ms) before it becomes a frame."""
    import pyarrow.compute as pc

    if start is None and end is None:
        return table
    ts = table.column("timestamp")
    mask = None
    if start is not None:
        mask = pc.greater_equal(ts, int(start.timestamp() * 1000))
    if end is not None:
        upper = pc.less(ts, int(end.timestamp() * 1000))
        mask = upper if mask is None else pc.and_(mask, upper)
    return table.filter(pc.fill_null(mask, False))


def _parse(data: bytes, schema: pa.Schema, garbage: Garbage) -> tuple[pa.Table | None, int]:
    """(arrow table, lines looked at) for one file's bytes."""
    import pyarrow as pa

    stripped = data.lstrip()
    if stripped[:1] == b"[":  # a JSON array (Vercel's "json" drain format, or an exported file)
        try:
            items = json.loads(data)
        except ValueError:
            items = None
        if isinstance(items, list):
            rows = []
            for item in items:
                row = _row(item)
                if row is None:
                    garbage.add("not an object", json.dumps(item)[:120].encode())
                else:
                    rows.append(row)
            return pa.Table.from_pylist(rows, schema=schema), len(items)
    view = memoryview(data)
    bounds, start, size = [], 0, len(data)
    while start < size:
        end = data.find(b"\n", min(start + BLOCK_BYTES, size))
        end = size if end < 0 else end + 1
        bounds.append((start, end))
        start = end

    def one(bound: tuple[int, int]) -> tuple[list[pa.Table], Garbage, int]:
        lo, hi = bound
        n = data.count(b"\n", lo, hi) + (1 if data[hi - 1 : hi] != b"\n" else 0)
        own = Garbage()
        return _parse_block(view[lo:hi], n, schema, own), own, n

    workers = min(len(bounds), os.cpu_count() or 1)
    if workers > 1:  # pyarrow releases the GIL: one block per core
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(one, bounds))
    else:
        results = [one(b) for b in bounds]
    tables, lines = [], 0
    for block_tables, own, n in results:  # merged in file order: counts and samples are deterministic
        tables.extend(t for t in block_tables if t.num_rows)
        garbage.merge(own)
        lines += n
    return (pa.concat_tables(tables) if tables else None), lines


_READ_OPTIONS = None


def _read_json(block: bytes | memoryview, schema: pa.Schema) -> pa.Table | None:
    """pyarrow's JSON reader over ``block`` (None when any line fails or a string is not UTF-8)."""
    import pyarrow as pa
    import pyarrow.json as pj

    global _READ_OPTIONS
    if _READ_OPTIONS is None:  # blocks run in parallel already; each block in one thread
        _READ_OPTIONS = pj.ReadOptions(use_threads=False, block_size=BLOCK_BYTES + (1 << 20))
    options = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    try:
        table = pj.read_json(pa.py_buffer(block), parse_options=options, read_options=_READ_OPTIONS)
        table.validate(full=True)  # invalid UTF-8 inside strings
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return None
    return table


def _parse_block(block: memoryview, n_lines: int, schema: pa.Schema, garbage: Garbage) -> list[pa.Table]:
    """Arrow tables for a block of ``n_lines`` lines; garbage lines counted, never raised.

    Fast path: the whole block in one pyarrow call (it skips blank lines, counted here). On failure, lines
    that cannot be an object (not ``{...}``) go to the line-by-line path and the rest is retried in one call;
    only when that fails too is the rest halved until the bad lines are isolated.
    """
    table = _read_json(block, schema)
    if table is not None:
        for _ in range(max(n_lines - table.num_rows, 0)):  # pyarrow skips blank lines
            garbage.add("empty", b"")
        return [table]
    lines = bytes(block).split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    good, rejected = [], []
    for line in lines:
        stripped = line.strip()
        (good if stripped[:1] == b"{" and stripped[-1:] == b"}" else rejected).append(line)
    del lines
    out = [_parse_lines(rejected, schema, garbage)] if rejected else []
    return out + _parse_good(good, schema, garbage)


def _parse_good(lines: list[bytes], schema: pa.Schema, garbage: Garbage) -> list[pa.Table]:
    """Lines that look like objects: one pyarrow call, halving on failure, line by line when small."""
    if not lines:
        return []
    if len(lines) < LINE_BY_LINE_BELOW:
        return [_parse_lines(lines, schema, garbage)]
    table = _read_json(b"\n".join(lines) + b"\n", schema)
    if table is not None:
        return [table]
    half = len(lines) // 2
    return _parse_good(lines[:half], schema, garbage) + _parse_good(lines[half:], schema, garbage)


def _parse_lines(lines: list[bytes], schema: pa.Schema, garbage: Garbage) -> pa.Table:
    """The slow, lenient path: one json.loads per line."""
    import pyarrow as pa

    rows = []
    for line in lines:
        if not line.strip():
            garbage.add("empty", line)
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            garbage.add("binary", line)
            continue
        try:
            item = json.loads(text)
        except ValueError:
            kind = "binary" if any(ord(c) < 9 or 13 < ord(c) < 32 for c in text) else "invalid JSON"
            garbage.add(kind, line)
            continue
        row = _row(item)
        if row is None:
            garbage.add("not an object", line)
        else:
            rows.append(row)
    return pa.Table.from_pylist(rows, schema=schema)


def _row(item: Any) -> dict[str, Any] | None:
    """A log-drain object coerced to the schema's types (None when it is not an object)."""
    if not isinstance(item, dict):
        return None
    proxy = item.get("proxy") if isinstance(item.get("proxy"), dict) else None
    row: dict[str, Any] = {
        name: as_text(item.get(name))
        for name in (
            "id",
            "deploymentId",
            "source",
            "host",
            "projectId",
            "level",
            "message",
            "requestId",
            "path",
        )
    }
    row["timestamp"] = as_int(item.get("timestamp"))
    row["statusCode"] = as_int(item.get("statusCode"))
    if proxy is not None:
        row["proxy"] = {
            "statusCode": as_int(proxy.get("statusCode")),
            **{k: as_text(proxy.get(k)) for k in ("path", "method", "clientIp", "region", "host")},
        }
    else:
        row["proxy"] = None
    return row


def _frame(table: pa.Table) -> pd.DataFrame:
    """The arrow table flattened to COLUMNS as a pandas DataFrame with the documented dtypes."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    proxy = table.column("proxy")
    status = pc.coalesce(table.column("statusCode"), pc.struct_field(proxy, "statusCode"))
    path = pc.coalesce(table.column("path"), pc.struct_field(proxy, "path"))
    host = pc.coalesce(table.column("host"), pc.struct_field(proxy, "host"))
    ts = table.column("timestamp").cast(pa.timestamp("ms", tz="UTC"))
    flat = pa.table(
        {
            "timestamp": ts,
            "level": table.column("level"),
            "message": table.column("message"),
            "statusCode": status,
            "path": path,
            "method": pc.struct_field(proxy, "method"),
            "deploymentId": table.column("deploymentId"),
            "requestId": table.column("requestId"),
            "source": table.column("source"),
            "host": host,
            "projectId": table.column("projectId"),
            "id": table.column("id"),
            "region": pc.struct_field(proxy, "region"),
            "clientIp": pc.struct_field(proxy, "clientIp"),
        }
    )
    frame = flat.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)
    frame["timestamp"] = frame["timestamp"].astype("datetime64[ms, UTC]")
    return frame
