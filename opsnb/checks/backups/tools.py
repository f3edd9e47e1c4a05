"""The PostgreSQL client programs backups and restores run: pg_dump, pg_restore, psql, pg_amcheck.

Every child runs with a hard time limit, its stderr kept as the failure's own words (scrubbed), and the
connection details handed over through libpq environment variables, never on the command line (``ps`` would
show them).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from opsnb.checks import context
from opsnb.checks.secrets import Secret, scrub

MB = 1024 * 1024


class ChildFailed(subprocess.SubprocessError):
    """A pg_* child exited non-zero, could not start or ran out of time; ``stderr`` holds its own words."""

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


def headline(stderr: str, width: int = 160) -> str:
    """first_error() shortened to fit a conclusion's title."""
    line = first_error(stderr) or "(no output)"
    return line if len(line) <= width else line[: width - 1] + "…"


def tool(pg_bindir: str, name: str) -> str:
    """Path of a PostgreSQL client program: ``pg_bindir/name``, or ``name`` on PATH when bindir is ""."""
    return str(Path(pg_bindir) / name) if pg_bindir else name


# connection URL part -> the libpq environment variable that carries it
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
    # an inherited PGSERVICE or PGDATABASE would silently redirect the child
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update({_LIBPQ_ENV[k]: v for k, v in parts.items() if k in _LIBPQ_ENV})
    env.setdefault("PGCONNECT_TIMEOUT", "10")
    env["PGAPPNAME"] = application_name or f"opsnb/{context.runbook()}"
    if dbname is not None:
        env["PGDATABASE"] = dbname
    env.update({"LC_ALL": "C", "LANG": "C"})  # the tools' messages in English, as the runbook quotes them
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

    ``stdin_chunks`` are written to its stdin (streaming, e.g. gunzip → psql); ``stdout_path`` receives its
    stdout as a file; ``stdout_sink`` gets stdout chunks (e.g. pg_dump → gzip). stderr goes to a temporary
    file so that a chatty child never blocks on a full pipe.
    """
    name = Path(cmd[0]).name
    out = open(stdout_path, "wb") if stdout_path else contextlib.nullcontext()  # noqa: SIM115
    with tempfile.TemporaryFile() as err, out as out_file:
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
            raise ChildFailed(name, None, f"cannot start {cmd[0]}: {exc.strerror}") from None
        timed_out = threading.Event()
        timer = threading.Timer(timeout_s, lambda: (timed_out.set(), proc.kill()))
        timer.start()
        try:
            stdout = _communicate(proc, stdin_chunks, stdout_sink)
        finally:
            timer.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
    if timed_out.is_set():
        raise ChildFailed(
            name, proc.returncode, stderr + f"\n{name}: killed after {timeout_s:g} s", timed_out=True
        )
    if proc.returncode != 0:
        raise ChildFailed(name, proc.returncode, stderr)
    return stdout.decode("utf-8", "replace")


def _communicate(
    proc: subprocess.Popen, stdin_chunks: Iterable[bytes] | None, stdout_sink: Callable[[bytes], None] | None
) -> bytes:
    """Feed the child's stdin and collect (or pass on) its stdout until it exits; its stdout bytes."""
    if stdin_chunks is not None:
        return _feed(proc, stdin_chunks)
    if stdout_sink is not None:
        while chunk := proc.stdout.read(MB):
            stdout_sink(chunk)
        proc.wait()
        return b""
    stdout = proc.stdout.read() if proc.stdout else b""
    proc.wait()
    return stdout


def _feed(proc: subprocess.Popen, chunks: Iterable[bytes]) -> bytes:
    """Write ``chunks`` to the child's stdin while a thread drains its stdout (no deadlock on full pipes)."""
    buf: list[bytes] = []
    reader = None
    if proc.stdout is not None:
        reader = threading.Thread(target=lambda: buf.append(proc.stdout.read()), daemon=True)
        reader.start()
    try:
        for chunk in chunks:
            proc.stdin.write(chunk)
    except OSError:
        pass  # the child stopped reading (ON_ERROR_STOP): its stderr says why
    finally:
        try:
            proc.stdin.close()
        except OSError:
            pass
    proc.wait()
    if reader is not None:
        reader.join(5)
    return b"".join(buf)
