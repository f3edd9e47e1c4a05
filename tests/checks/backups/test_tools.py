"""opsnb.checks.backups.tools: children with hard time limits, their own words on failure, streaming in and
out, and connection details kept off the command line."""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import sys

import pytest

from opsnb.checks.backups import tools


def test_run_child_timeout_kills():
    cmd = [sys.executable, "-c", "import time; time.sleep(30)"]
    with pytest.raises(tools.ChildFailed) as err:
        tools.run_child(cmd, env=dict(os.environ), timeout_s=0.5)
    assert err.value.timed_out and "killed after 0.5 s" in err.value.stderr


def test_run_child_failure_keeps_the_tools_own_words():
    cmd = [
        sys.executable,
        "-c",
        "import sys; sys.stderr.write('pg_restore: error: could not find block ID 7\\n'); sys.exit(1)",
    ]
    with pytest.raises(tools.ChildFailed) as err:
        tools.run_child(cmd, env=dict(os.environ), timeout_s=10)
    assert err.value.stderr == "pg_restore: error: could not find block ID 7"
    assert "could not find block ID 7" in str(err.value) and err.value.returncode == 1
    # a failed child is a failure to look for the check contract, never a bug
    assert isinstance(err.value, subprocess.SubprocessError)


def test_missing_binary_is_a_child_failure(tmp_path):
    with pytest.raises(tools.ChildFailed) as err:
        tools.run_child([str(tmp_path / "nope" / "pg_restore"), "--list"], env=dict(os.environ), timeout_s=5)
    assert "cannot start" in err.value.stderr and err.value.returncode is None


def test_stdin_is_streamed_and_stdout_kept():
    upper = [sys.executable, "-c", "import sys; sys.stdout.write(sys.stdin.read().upper())"]
    out = tools.run_child(
        upper, env=dict(os.environ), timeout_s=10, stdin_chunks=iter([b"ab", b"cd" * 100_000])
    )
    assert out == "AB" + "CD" * 100_000


def test_stdout_goes_to_a_sink_or_a_file(tmp_path):
    emit = [sys.executable, "-c", "import sys; sys.stdout.write('x' * 3_000_000)"]
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb") as gz:
        assert tools.run_child(emit, env=dict(os.environ), timeout_s=10, stdout_sink=gz.write) == ""
    assert gzip.decompress(buf.getvalue()) == b"x" * 3_000_000
    tools.run_child(emit, env=dict(os.environ), timeout_s=10, stdout_path=tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == b"x" * 3_000_000


def test_first_error_and_headline():
    text = "pg_dump: last line\npg_dump: error: connection to server failed\nmore"
    assert tools.first_error(text) == "pg_dump: error: connection to server failed"
    assert tools.first_error("only\nlines") == "lines" and tools.first_error("") == ""
    assert len(tools.headline("error: " + "x" * 500)) == 160 and tools.headline("") == "(no output)"


def test_libpq_env_keeps_the_password_off_the_command_line(monkeypatch):
    monkeypatch.setenv("PGSERVICE", "inherited")
    env = tools.libpq_env(
        "postgresql://u:s3cr%40t@db.example:6543/shop?sslmode=require", dbname="opsnb_restore_a1b2c3d4e5"
    )
    assert env["PGPASSWORD"] == "s3cr@t" and env["PGHOST"] == "db.example" and env["PGPORT"] == "6543"
    assert env["PGDATABASE"] == "opsnb_restore_a1b2c3d4e5" and env["PGSSLMODE"] == "require"
    assert "PGSERVICE" not in env and env["LC_ALL"] == "C"


def test_tool_path():
    assert (
        tools.tool("", "psql") == "psql" and tools.tool("/usr/lib/pg/bin", "psql") == "/usr/lib/pg/bin/psql"
    )
