"""The pgserver fallback: PostgreSQL from pip when the machine has no server binaries.

OPSNB_PG_SOURCE=pgserver forces the fallback even though this machine has system binaries; pgserver is
pip-installed into the running interpreter when missing (a real install from the package index).
"""

from __future__ import annotations

import secrets
import subprocess
import tempfile
from pathlib import Path

import psycopg
import pytest

from opsnb.sandbox import postgres


@pytest.fixture
def pgserver_bin(monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(postgres.PG_SOURCE_ENV, "pgserver")
    lines: list[str] = []
    bindir, source = postgres.resolve_bindir(log=lines.append)
    assert source == "pgserver"
    assert bindir.parts[-3:] == ("pgserver", "pginstall", "bin")  # in site-packages or in a public copy
    assert bindir != postgres.find_bindir()
    for line in lines:  # when it had to install, it said how, in one line
        assert "pip install --no-deps pgserver" in line
    return bindir


def test_pgserver_cluster_runs_without_pg_stat_statements(pgserver_bin: Path, tmp_path: Path) -> None:
    assert postgres.server_major(pgserver_bin) == 16
    assert not postgres.stat_statements_available(pgserver_bin)
    assert postgres.extension_dirs(pgserver_bin)  # the probe found pgserver's extension folder

    folder, _ = postgres.cluster_parent(tmp_path / "pg")
    pg = postgres.LocalPostgres(folder, bindir=pgserver_bin)
    assert pg.stat_statements is False
    password = secrets.token_urlsafe(12)
    try:
        pg.init(password, superuser="opsnb_admin")
        pg.start()
        with psycopg.connect(pg.dsn("opsnb_admin", password), autocommit=True, connect_timeout=5) as conn:
            version = conn.execute("SELECT version()").fetchone()[0]
            assert version.startswith("PostgreSQL 16")
            assert conn.execute("SHOW shared_preload_libraries").fetchone()[0] == ""
            available = {r[0] for r in conn.execute("SELECT name FROM pg_available_extensions")}
            assert "plpgsql" in available and "pg_stat_statements" not in available
            with pytest.raises(psycopg.errors.FeatureNotSupported):  # as the probe said: not shipped
                conn.execute("CREATE EXTENSION pg_stat_statements")
        # pgserver's client tools work too (the backups and restore-test use them)
        out = subprocess.run(
            [pg.tool("pg_dump"), "--schema-only", pg.dsn("opsnb_admin", password)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert out.returncode == 0 and "PostgreSQL database dump" in out.stdout
    finally:
        pg.remove()  # removes the folder, also the temporary one cluster_parent() made
    assert not folder.exists()


def test_system_binaries_keep_pg_stat_statements(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(postgres.PG_SOURCE_ENV, "system")
    bindir, source = postgres.resolve_bindir(auto_install=False)
    assert source == "system" and bindir == postgres.find_bindir()
    assert postgres.stat_statements_available(bindir)
    monkeypatch.delenv(postgres.PG_SOURCE_ENV)
    assert postgres.resolve_bindir(auto_install=False) == (bindir, "system")  # auto: system first


def test_bad_source_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(postgres.PG_SOURCE_ENV, "docker")
    with pytest.raises(postgres.PostgresError, match="OPSNB_PG_SOURCE"):
        postgres.resolve_bindir(auto_install=False)


def test_public_copy_of_pginstall(
    pgserver_bin: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """As root with site-packages out of the postgres user's reach, the tree is copied (once) to the temp dir."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    pginstall = pgserver_bin.parent
    copy = postgres._public_copy(pginstall)
    top = copy.parent.parent
    assert top.parent == tmp_path and top.name.startswith("opsnb-pgserver-16-")
    assert all((p.stat().st_mode & 0o755) == 0o755 for p in (top, copy.parent, copy))
    assert postgres.server_major(copy / "bin") == 16
    # the binaries load their bundled libraries (RPATH $ORIGIN/../../../pgserver.libs) from the copy
    ran = subprocess.run(
        [str(copy / "bin" / "initdb"), "--version"], capture_output=True, text=True, timeout=30
    )
    assert ran.returncode == 0 and "16" in ran.stdout, ran.stderr
    assert not postgres.stat_statements_available(copy / "bin")
    mtime = copy.stat().st_mtime_ns
    assert postgres._public_copy(pginstall) == copy and copy.stat().st_mtime_ns == mtime  # cached
    assert [p.name for p in tmp_path.iterdir()] == [top.name]  # no staging folder left behind


def test_fresh_environment_installs_pgserver_with_pip(tmp_path: Path) -> None:
    """A fresh venv without pgserver: the fallback pip-installs it (real index) and finds its binaries."""
    import os
    import sys

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    cache = tmp_path / "tmp"
    cache.mkdir()
    repo = Path(postgres.__file__).resolve().parents[2]
    script = (
        f"import sys; sys.path.insert(0, {str(repo)!r}); from opsnb.sandbox import postgres; "
        "b, s = postgres.resolve_bindir(log=lambda m: print('LOG', m)); print('BINDIR', b); print('SOURCE', s)"
    )
    env = {**os.environ, postgres.PG_SOURCE_ENV: "pgserver", "TMPDIR": str(cache)}
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", script], capture_output=True, text=True, timeout=300, env=env
    )
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    logs = [line for line in lines if line.startswith("LOG ")]
    assert len(logs) == 1 and "-m pip install --no-deps pgserver" in logs[0] and str(venv) in logs[0]
    assert "SOURCE pgserver" in lines
    bindir = Path(next(line for line in lines if line.startswith("BINDIR "))[7:])
    assert list((venv / "lib").glob("python3*/site-packages/pgserver/pginstall/bin/postgres"))
    if os.geteuid() == 0:  # pytest's 0700 temp dir is out of the postgres user's reach: a public copy
        top = bindir.parents[2]
        assert top.parent == cache and top.name.startswith("opsnb-pgserver-16-")
    else:
        assert str(bindir).startswith(str(venv))
    assert postgres.server_major(bindir) == 16
