"""Request/app logs from a log source into one pandas DataFrame.

A source is a Vercel log-drain file (NDJSON, one JSON object per line; ``.ndjson``, ``.jsonl``, ``.log``,
``.json`` — a ``.json`` file may also hold one JSON array), a ``.gz`` of one, or a folder of them (read
recursively, in name order). Lines that are not log-drain JSON (truncated, binary, empty, not an object)
are counted in ``LogRead.garbage``, never raised.

Speed: each file is parsed in large blocks by pyarrow's multithreaded JSON reader with an explicit schema;
a block that fails is split in halves until the bad lines are isolated, and those small pieces are parsed
line by line with :mod:`json` (lenient about types). Clean files never touch the slow path.

Two API sources are named by a scheme (``api_base``/``token_env`` keyword arguments give the base URL and
the NAME of the environment variable holding the token; see ``read_logs``):

- ``vercel://PROJECT/DEPLOYMENT``: Vercel's runtime logs of one deployment
  (``GET /v1/projects/{p}/deployments/{d}/runtime-logs``, NDJSON; bad lines counted as garbage).
- ``sentry://ORG``: Sentry's unresolved issues of an organization (``GET /api/0/organizations/{org}/issues/``),
  one row per issue: timestamp = lastSeen, message = title, path = culprit, statusCode 500 for error/fatal
  issues, source "sentry", plus a ``count`` column (events of the issue).

Columns of ``LogRead.frame`` (see ``COLUMNS``): timestamp (UTC), level, message, statusCode (Int64;
-1 = the function crashed; the proxy's status when the top-level one is absent), path, method,
deploymentId, requestId, source, host, projectId, id, region, clientIp.
"""

from __future__ import annotations

import datetime as _dt
import gzip
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOG_SUFFIXES = (".ndjson", ".jsonl", ".log", ".json")
COLUMNS = [
    "timestamp",
    "level",
    "message",
    "statusCode",
    "path",
    "method",
    "deploymentId",
    "requestId",
    "source",
    "host",
    "projectId",
    "id",
    "region",
    "clientIp",
]
BLOCK_BYTES = 2 << 20  # bytes per pyarrow call; blocks are parsed in parallel, a failing one is re-parsed
LINE_BY_LINE_BELOW = 64  # a failing piece with fewer lines than this is parsed line by line
SAMPLES = 5  # garbage lines kept (shortened) as evidence


@dataclass
class LogRead:
    """What ``read_logs`` found: the frame, how many lines were garbage, and which files were read."""

    frame: Any  # pandas.DataFrame with COLUMNS
    garbage: int = 0
    files: list[Path] = field(default_factory=list)
    garbage_kinds: dict[str, int] = field(
        default_factory=dict
    )  # empty / binary / truncated JSON / not an object
    garbage_samples: list[str] = field(default_factory=list)  # first few bad lines, shortened, repr()'d
    lines: int = 0  # lines looked at (valid + garbage)

    def summary(self) -> dict[str, Any]:
        """One-row description: files, lines, rows, garbage (by kind), time span."""
        frame = self.frame
        return {
            "files": len(self.files),
            "lines": self.lines,
            "rows": len(frame),
            "garbage": self.garbage,
            "garbage_kinds": dict(self.garbage_kinds),
            "first": frame["timestamp"].min() if len(frame) else None,
            "last": frame["timestamp"].max() if len(frame) else None,
        }


class _Garbage:
    """Counter of bad lines with a few samples."""

    def __init__(self) -> None:
        self.count = 0
        self.kinds: dict[str, int] = {}
        self.samples: list[str] = []

    def merge(self, other: _Garbage) -> None:
        self.count += other.count
        for kind, n in other.kinds.items():
            self.kinds[kind] = self.kinds.get(kind, 0) + n
        self.samples.extend(other.samples[: SAMPLES - len(self.samples)])

    def add(self, kind: str, line: bytes) -> None:
        self.count += 1
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        if len(self.samples) < SAMPLES:
            self.samples.append(repr(line[:120]) + ("…" if len(line) > 120 else ""))


def _schema():
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


API_SCHEMES = {"sentry": "https://sentry.io", "vercel": "https://api.vercel.com"}  # scheme → default API base


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


def _to_utc(value: Any, now: _dt.datetime):
    """since/until as an aware UTC datetime; a timedelta means that long before now."""
    import pandas as pd

    if value is None:
        return None
    if isinstance(value, _dt.timedelta):
        return now - value
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.to_pydatetime()


def read_logs(
    source: str | Path,
    *,
    since: Any = None,
    until: Any = None,
    api_base: str = "",
    token_env: str = "",
) -> LogRead:
    """Read a log source (file, .gz, folder, ``vercel://…`` or ``sentry://…``; see module doc) into a ``LogRead``.

    ``since``/``until`` (datetime, ISO string, pandas Timestamp, or a timedelta meaning "that long ago")
    keep rows with since <= timestamp < until. Garbage lines are counted, never raised. For the API sources
    ``token_env`` NAMES the environment variable holding the token (required) and ``api_base`` overrides the
    public API (``API_SCHEMES``); they are ignored for files.
    """
    import pyarrow as pa

    now = _dt.datetime.now(_dt.UTC)
    lo, hi = _to_utc(since, now), _to_utc(until, now)
    if (api := api_source(source)) is not None:
        read = _read_api(*api, api_base=api_base, token_env=token_env)
        frame = read.frame
        if lo is not None:
            frame = frame[frame["timestamp"] >= lo]
        if hi is not None:
            frame = frame[frame["timestamp"] < hi]
        read.frame = frame.reset_index(drop=True)
        return read
    if is_url(source):
        raise ValueError(
            f"URL log sources are not supported by read_logs ({source}); use vercel://PROJECT/DEPLOYMENT or sentry://ORG"
        )
    files = log_files(source)
    garbage = _Garbage()
    schema = _schema()
    tables, lines = [], 0
    for path in files:
        data = _read_bytes(path)
        table, n = _parse(data, schema, garbage)
        lines += n
        if table is not None and table.num_rows:
            tables.append(_filter(table, lo, hi))
    table = pa.concat_tables(tables) if tables else schema.empty_table()
    frame = _frame(table)
    del table, tables
    if len(frame) and not frame["timestamp"].is_monotonic_increasing:
        frame = frame.sort_values("timestamp", kind="stable").reset_index(drop=True)
    return LogRead(frame, garbage.count, files, garbage.kinds, garbage.samples, lines)


def _filter(table, lo, hi):
    import pyarrow.compute as pc

    if lo is None and hi is None:
        return table
    ts = table.column("timestamp")
    mask = None
    if lo is not None:
        mask = pc.greater_equal(ts, int(lo.timestamp() * 1000))
    if hi is not None:
        upper = pc.less(ts, int(hi.timestamp() * 1000))
        mask = upper if mask is None else pc.and_(mask, upper)
    return table.filter(pc.fill_null(mask, False))


def _parse(data: bytes, schema, garbage: _Garbage):
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

    def one(bound: tuple[int, int]) -> tuple[list, _Garbage, int]:
        lo, hi = bound
        n = data.count(b"\n", lo, hi) + (1 if data[hi - 1 : hi] != b"\n" else 0)
        own = _Garbage()
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


def _read_json(block, schema):
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


def _parse_block(block, n_lines: int, schema, garbage: _Garbage) -> list:
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


def _parse_good(lines: list[bytes], schema, garbage: _Garbage) -> list:
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


def _parse_lines(lines: list[bytes], schema, garbage: _Garbage):
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


def _int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(float(value)) if isinstance(value, (int, float, str)) else None
    except (TypeError, ValueError, OverflowError):
        return None


def _str(value: Any) -> str | None:
    if value is None:
        return None
    return (
        value
        if isinstance(value, str)
        else json.dumps(value)
        if isinstance(value, (dict, list))
        else str(value)
    )


def _row(item: Any) -> dict | None:
    """A log-drain object coerced to the schema's types (None when it is not an object)."""
    if not isinstance(item, dict):
        return None
    proxy = item.get("proxy") if isinstance(item.get("proxy"), dict) else None
    row: dict[str, Any] = {
        name: _str(item.get(name))
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
    row["timestamp"] = _int(item.get("timestamp"))
    row["statusCode"] = _int(item.get("statusCode"))
    if proxy is not None:
        row["proxy"] = {
            "statusCode": _int(proxy.get("statusCode")),
            **{k: _str(proxy.get(k)) for k in ("path", "method", "clientIp", "region", "host")},
        }
    else:
        row["proxy"] = None
    return row


def _frame(table):
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


# --- API sources -------------------------------------------------------------------------------------------
def _read_api(scheme: str, rest: str, *, api_base: str, token_env: str) -> LogRead:
    """One API call for a ``vercel://`` or ``sentry://`` source, as a LogRead (no files)."""
    from opsnb.checks.secrets import secret

    if not token_env:
        raise ValueError(f"{scheme}:// log sources need token_env (the variable holding the API token)")
    base = api_base or API_SCHEMES[scheme]
    if scheme == "sentry":
        from opsnb.checks.clients.sentry import Sentry

        if not rest or "/" in rest:
            raise ValueError(f"sentry log source must be sentry://ORG, not sentry://{rest}")
        with Sentry(secret(token_env), base) as api:
            items = api.issues(rest)
        return LogRead(sentry_frame(items), lines=len(items))
    from opsnb.checks.clients.vercel import Vercel

    project, _, deployment = rest.partition("/")
    if not project or not deployment or "/" in deployment:
        raise ValueError(f"vercel log source must be vercel://PROJECT/DEPLOYMENT, not vercel://{rest}")
    with Vercel(secret(token_env), base) as api:
        lines = api.runtime_logs(project, deployment)
    garbage = _Garbage()
    frame = runtime_logs_frame(lines, garbage, project=project, deployment=deployment)
    return LogRead(frame, garbage.count, [], garbage.kinds, garbage.samples, len(lines))


def _iso(value: Any) -> Any:
    """An ISO 8601 time (Sentry's ``2024-06-11T10:00:00.123456Z``) as aware UTC, None when unreadable."""
    import pandas as pd

    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        return None
    if pd.isna(ts):
        return None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _api_frame(rows: list[dict[str, Any]], extra: tuple[str, ...] = ()) -> Any:
    """Rows (dicts with COLUMNS keys) → DataFrame with read_logs' dtypes, oldest first."""
    import pandas as pd

    frame = pd.DataFrame(rows, columns=[*COLUMNS, *extra])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True, errors="coerce").astype(
        "datetime64[ms, UTC]"
    )
    frame["statusCode"] = pd.array(frame["statusCode"].tolist(), dtype="Int64")
    for name in extra:
        frame[name] = pd.array(frame[name].tolist(), dtype="Int64")
    frame = frame[frame["timestamp"].notna()]
    return frame.sort_values("timestamp", kind="stable").reset_index(drop=True)


def runtime_logs_frame(
    lines: list[bytes], garbage: _Garbage | None = None, *, project: str = "", deployment: str = ""
) -> Any:
    """Vercel runtime-log NDJSON lines → the frame's COLUMNS (bad lines added to ``garbage``).

    Fields: timestampInMs → timestamp, level, message, responseStatusCode → statusCode, requestPath → path,
    requestMethod → method, domain → host, rowId → id, source; deployment/project from the request.
    """
    import pandas as pd

    garbage = garbage if garbage is not None else _Garbage()
    rows = []
    for line in lines:
        if not line.strip():
            garbage.add("empty", line)
            continue
        try:
            item = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            garbage.add("invalid JSON", line)
            continue
        if not isinstance(item, dict):
            garbage.add("not an object", line)
            continue
        ts = _int(item.get("timestampInMs"))
        rows.append(
            {
                "timestamp": None if ts is None else pd.Timestamp(ts, unit="ms", tz="UTC"),
                "level": _str(item.get("level")),
                "message": _str(item.get("message")),
                "statusCode": _int(item.get("responseStatusCode")),
                "path": _str(item.get("requestPath")),
                "method": _str(item.get("requestMethod")),
                "deploymentId": deployment or None,
                "requestId": None,
                "source": _str(item.get("source")),
                "host": _str(item.get("domain")),
                "projectId": project or None,
                "id": _str(item.get("rowId")),
                "region": None,
                "clientIp": None,
            }
        )
    return _api_frame(rows)


def sentry_frame(items: list[dict[str, Any]]) -> Any:
    """Sentry issue objects → the frame's COLUMNS plus ``count`` (one row per issue; see module doc)."""
    rows = []
    for item in items:
        if not isinstance(item, dict):
            continue
        level = _str(item.get("level")) or ""
        project = item.get("project") if isinstance(item.get("project"), dict) else {}
        rows.append(
            {
                "timestamp": _iso(item.get("lastSeen")),
                "level": level,
                "message": _str(item.get("title")),
                "statusCode": 500 if level in ("error", "fatal") else None,
                "path": _str(item.get("culprit")),
                "method": None,
                "deploymentId": None,
                "requestId": _str(item.get("shortId")),
                "source": "sentry",
                "host": None,
                "projectId": _str(project.get("slug")),
                "id": _str(item.get("id")),
                "region": None,
                "clientIp": None,
                "count": _int(item.get("count")),
            }
        )
    return _api_frame(rows, extra=("count",))
