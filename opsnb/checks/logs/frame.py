"""The log frame every source is read into: its columns, what a read found, and the garbage-line counter.

Columns (``COLUMNS``): timestamp (UTC), level, message, statusCode (Int64; -1 = the function crashed; the
proxy's status when the top-level one is absent), path, method, deploymentId, requestId, source, host,
projectId, id, region, clientIp. The API adapters in opsnb.checks.clients build their rows with these keys and
turn them into a frame with :func:`log_frame`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

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
SAMPLES = 5  # garbage lines kept (shortened) as evidence
SAMPLE_BYTES = 120


@dataclass
class LogRead:
    """What a read found: the frame, how many lines were garbage (by kind, with samples), which files.

    ``error`` says why the source could not be read at all ('' when it was); the frame is then empty and
    must not be taken for a quiet log.
    """

    frame: pd.DataFrame
    garbage: int = 0
    files: list[Path] = field(default_factory=list)
    # by kind: empty / binary / invalid JSON / not an object
    garbage_kinds: dict[str, int] = field(default_factory=dict)
    garbage_samples: list[str] = field(default_factory=list)  # first few bad lines, shortened, repr()'d
    lines: int = 0  # lines looked at (valid + garbage)
    error: str = ""

    @classmethod
    def unreadable(cls, why: str) -> LogRead:
        """An empty read of a source that could not be read, saying why."""
        return cls(log_frame([]), error=why)

    def summary(self) -> pd.DataFrame:
        """One row: files, lines, rows, garbage (and by kind), first and last timestamp, error."""
        import pandas as pd

        frame = self.frame
        return pd.DataFrame(
            [
                {
                    "files": len(self.files),
                    "lines": self.lines,
                    "rows": len(frame),
                    "garbage": self.garbage,
                    "garbage_kinds": ", ".join(f"{k} {v}" for k, v in sorted(self.garbage_kinds.items())),
                    "first": frame["timestamp"].min() if len(frame) else None,
                    "last": frame["timestamp"].max() if len(frame) else None,
                    "error": self.error,
                }
            ]
        )


class Garbage:
    """Counter of lines that are not log objects, by kind, with the first few as samples."""

    def __init__(self) -> None:
        self.count = 0
        self.kinds: dict[str, int] = {}
        self.samples: list[str] = []

    def add(self, kind: str, line: bytes) -> None:
        """Count one bad ``line`` of ``kind``."""
        self.count += 1
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        if len(self.samples) < SAMPLES:
            self.samples.append(repr(line[:SAMPLE_BYTES]) + ("…" if len(line) > SAMPLE_BYTES else ""))

    def merge(self, other: Garbage) -> None:
        """Add ``other``'s counts (and samples while there is room)."""
        self.count += other.count
        for kind, n in other.kinds.items():
            self.kinds[kind] = self.kinds.get(kind, 0) + n
        self.samples.extend(other.samples[: SAMPLES - len(self.samples)])


def as_int(value: Any) -> int | None:
    """A JSON value as an int (numbers and numeric text; booleans and the rest → None)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(float(value)) if isinstance(value, (int, float, str)) else None
    except (TypeError, ValueError, OverflowError):
        return None


def as_text(value: Any) -> str | None:
    """A JSON value as text (objects and arrays as compact JSON; None stays None)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def log_frame(rows: list[dict[str, Any]], extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """Rows keyed by ``COLUMNS`` (plus ``extra`` integer columns) → a log frame, oldest first.

    timestamp becomes ``datetime64[ms, UTC]`` (rows without a readable time are dropped), statusCode and the
    extra columns nullable Int64 — the dtypes of the drain reader's frames.
    """
    import pandas as pd

    from opsnb.checks.logs.window import utc_column

    frame = pd.DataFrame(rows, columns=[*COLUMNS, *extra])
    frame["timestamp"] = utc_column(frame["timestamp"]).astype("datetime64[ms, UTC]")
    for name in ("statusCode", *extra):
        frame[name] = pd.array(frame[name].tolist(), dtype="Int64")
    frame = frame[frame["timestamp"].notna()]
    return frame.sort_values("timestamp", kind="stable").reset_index(drop=True)
