"""Small JSON files shared by the sandbox manager and the stand-in process.

Writes are atomic (temp file + rename) under an advisory lock; readers re-load only when the file changed,
so the stand-ins see `opsnb sandbox fault ...` on their next request without a restart.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def write_json(path: Path, data: Any, mode: int = 0o600) -> None:
    """Atomically replace path with data as JSON (file mode `mode`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=1, sort_keys=False)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read_json(path: Path, default: Any = None) -> Any:
    """Parsed JSON of path, or default when it does not exist."""
    try:
        with open(path) as handle:
            return json.load(handle)
    except FileNotFoundError:
        return default


class JsonStore:
    """A JSON document on disk with cached reads and locked read-modify-write updates."""

    def __init__(self, path: Path, default: Any = None):
        self.path = Path(path)
        self.default = default
        self._stamp: tuple[int, int] | None = None
        self._data: Any = None

    def load(self) -> Any:
        """Current content (re-read only when the file changed since the last read)."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._stamp, self._data = None, None
            return copy.deepcopy(self.default)
        stamp = (st.st_mtime_ns, st.st_ino)
        if stamp != self._stamp:
            self._data = read_json(self.path, copy.deepcopy(self.default))
            self._stamp = stamp
        return self._data

    @contextlib.contextmanager
    def update(self) -> Iterator[Any]:
        """Lock, load fresh, yield the document for in-place changes, then write it back."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        with open(lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                data = read_json(self.path, copy.deepcopy(self.default))
                yield data
                write_json(self.path, data)
                self._stamp = None
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
