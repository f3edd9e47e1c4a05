"""A throwaway PostgreSQL cluster from the system's server binaries (or pgserver's as a last resort).

`find_bindir()` locates initdb/postgres/pg_ctl (pg_config, PATH, Debian/Ubuntu and Homebrew folders);
`LocalPostgres` initdb's a private data folder, starts it on 127.0.0.1 with `pg_stat_statements`
preloaded (when the installation has it), and stops it. initdb and postgres refuse to run as root: as
root every server command runs as the `postgres` system user (`runuser -u postgres --`) and the cluster
folder is owned by that user.

Where the server comes from (`resolve_bindir()`), in order:
1. system binaries (`find_bindir()`, or `OPSNB_PG_BINDIR`);
2. the distribution's package, installed with apt-get when running as root (`install_server()`);
3. the `pgserver` wheel from PyPI (PostgreSQL 16 built for pip), installed into the running
   interpreter's environment with `python -m pip install --no-deps pgserver`; its binaries live in
   `<site-packages>/pgserver/pginstall/bin` (`pgserver_bindir()`). pgserver ships no
   `pg_stat_statements`: `stat_statements_available()` tells, and the cluster starts without it.

`OPSNB_PG_SOURCE` overrides the order: `auto` (default, 1→2→3), `system` (1→2, never pgserver),
`pgserver` (3 only: forces the fallback, for tests and for machines whose system server is unusable).
"""

from __future__ import annotations

import glob
import importlib.util
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

SERVER_BINARIES = ("initdb", "pg_ctl", "postgres")
PG_SYSTEM_USER = "postgres"
PG_SOURCE_ENV = "OPSNB_PG_SOURCE"
PG_SOURCES = ("auto", "system", "pgserver")
PGSERVER_PACKAGE = "pgserver"


class PostgresError(RuntimeError):
    """A PostgreSQL server could not be found, initialised, started or stopped."""


def _has_server(bindir: Path) -> bool:
    return all((bindir / name).is_file() and os.access(bindir / name, os.X_OK) for name in SERVER_BINARIES)


def _major_of(bindir: Path) -> int:
    try:
        out = subprocess.run(
            [str(bindir / "postgres"), "--version"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    match = re.search(r"(\d+)(?:\.\d+)?", out)
    return int(match.group(1)) if match else 0


def candidate_bindirs() -> list[Path]:
    """Folders that may hold server binaries, in the order they are tried."""
    found: list[Path] = []
    env = os.environ.get("OPSNB_PG_BINDIR")
    if env:
        found.append(Path(env))
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10)
            if out.returncode == 0 and out.stdout.strip():
                found.append(Path(out.stdout.strip()))
        except (OSError, subprocess.SubprocessError):
            pass
    on_path = shutil.which("initdb")
    if on_path:
        found.append(Path(os.path.realpath(on_path)).parent)

    def version_key(path: str) -> float:
        match = re.search(r"(?:postgresql/|pgsql-|postgresql@)(\d+(?:\.\d+)?)", path)
        return float(match.group(1)) if match else 0.0

    patterns = [
        "/usr/lib/postgresql/*/bin",
        "/usr/pgsql-*/bin",
        "/opt/homebrew/opt/postgresql@*/bin",
        "/usr/local/opt/postgresql@*/bin",
    ]
    for pattern in patterns:
        found += [Path(p) for p in sorted(glob.glob(pattern), key=version_key, reverse=True)]
    found += [Path("/opt/homebrew/bin"), Path("/usr/local/bin"), Path("/usr/bin")]
    unique: list[Path] = []
    for path in found:
        if path not in unique:
            unique.append(path)
    return unique


def find_bindir() -> Path | None:
    """Return the newest folder holding initdb, pg_ctl and postgres, or None."""
    for path in candidate_bindirs():
        if _has_server(path):
            return Path(os.path.realpath(path))
    return None


def install_server(log=print) -> Path | None:
    """Install the distribution's PostgreSQL server with apt-get when root; return its bindir or None."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return None
    log("no PostgreSQL server binaries found: installing them with `apt-get install -y postgresql`")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", "postgresql", "postgresql-contrib"]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        subprocess.run(["apt-get", "update"], capture_output=True, env=env)
        result = subprocess.run(cmd, capture_output=True, text=True, env=env)
    return find_bindir() if result.returncode == 0 else None


def pg_source() -> str:
    """The server source order chosen by OPSNB_PG_SOURCE: auto | system | pgserver."""
    value = (os.environ.get(PG_SOURCE_ENV) or "auto").strip().lower()
    if value not in PG_SOURCES:
        raise PostgresError(f"{PG_SOURCE_ENV}={value!r}: expected one of {', '.join(PG_SOURCES)}")
    return value


def _pgserver_package_dir() -> Path | None:
    """Folder of the installed pgserver package, found without importing it (None if absent)."""
    importlib.invalidate_caches()
    spec = importlib.util.find_spec(PGSERVER_PACKAGE)  # top-level: locates, does not execute
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _readable_by_postgres(path: Path) -> bool:
    """As root: can the `postgres` user reach `path` (every parent traversable)? True when not root."""
    if not _run_as_postgres():
        return True
    import grp

    uid, gid = _pg_ids()
    gids = {gid} | {g.gr_gid for g in grp.getgrall() if PG_SYSTEM_USER in g.gr_mem}
    return _user_can_traverse(path, uid, gids)


def _public_copy(pginstall: Path) -> Path:
    """Copy pgserver's install tree to a root-owned, world-readable folder under the temp dir (cached).

    Used as root when site-packages is not traversable by the `postgres` user (e.g. under /root or a 0700
    checkout). The binaries find their bundled libraries through RPATH `$ORIGIN/../../../pgserver.libs`, so
    the copy keeps that layout: `<copy>/pgserver/pginstall` beside `<copy>/pgserver.libs`."""
    libs = pginstall.parent.parent / "pgserver.libs"
    version = _major_of(pginstall / "bin") or 0
    size = (pginstall / "bin" / "postgres").stat().st_size
    target = Path(tempfile.gettempdir()) / f"opsnb-pgserver-{version}-{size}"
    copied = target / "pgserver" / "pginstall"
    complete = _has_server(copied / "bin") and (not libs.is_dir() or (target / "pgserver.libs").is_dir())
    if complete and target.stat().st_uid == os.geteuid():
        return copied
    staging = Path(tempfile.mkdtemp(prefix="opsnb-pgserver-", dir=tempfile.gettempdir()))
    shutil.copytree(pginstall, staging / "pgserver" / "pginstall", symlinks=True)
    if libs.is_dir():
        shutil.copytree(libs, staging / "pgserver.libs", symlinks=True)
    for folder in (staging, staging / "pgserver"):
        os.chmod(folder, 0o755)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(staging, target)
    return copied


def pgserver_bindir(install: bool = True, log=print) -> Path | None:
    """bindir of pgserver's PostgreSQL, pip-installing pgserver into this interpreter when missing.

    Only the wheel's files are used (nothing is imported). As root, the tree is copied where the
    `postgres` user can read it when site-packages is out of its reach."""
    package = _pgserver_package_dir()
    if package is None and install:
        log(
            f"no usable PostgreSQL server: installing `{PGSERVER_PACKAGE}` (PostgreSQL 16 for pip, "
            f"without pg_stat_statements) with `{sys.executable} -m pip install --no-deps {PGSERVER_PACKAGE}`"
        )
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--no-deps",
                "--disable-pip-version-check",
                "-q",
                PGSERVER_PACKAGE,
            ],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()
            log(f"pip install {PGSERVER_PACKAGE} failed: {detail[-1] if detail else result.returncode}")
            return None
        package = _pgserver_package_dir()
    if package is None:
        return None
    pginstall = package / "pginstall"
    if not _has_server(pginstall / "bin"):
        return None
    if not _readable_by_postgres(pginstall / "bin"):
        pginstall = _public_copy(pginstall)
    return Path(os.path.realpath(pginstall / "bin"))


def resolve_bindir(auto_install: bool = True, log=print) -> tuple[Path, str]:
    """(bindir, source) with source "system", "apt" or "pgserver", following OPSNB_PG_SOURCE; raises PostgresError."""
    source = pg_source()
    if source != "pgserver":
        bindir = find_bindir()
        if bindir is not None:
            return bindir, "system"
        if auto_install:
            bindir = install_server(log)
            if bindir is not None:
                return bindir, "apt"
    if source != "system":
        bindir = pgserver_bindir(install=auto_install, log=log)
        if bindir is not None:
            return bindir, "pgserver"
    if source == "pgserver":
        raise PostgresError(
            f"{PG_SOURCE_ENV}=pgserver but `{PGSERVER_PACKAGE}` could not be installed or holds no server "
            f"binaries (try `{sys.executable} -m pip install {PGSERVER_PACKAGE}`)"
        )
    raise PostgresError(
        "no PostgreSQL server binaries (initdb, pg_ctl, postgres) found via pg_config, PATH, "
        "/usr/lib/postgresql/*/bin or Homebrew; install the `postgresql` package "
        "(or set OPSNB_PG_BINDIR)"
        + ("" if source == "system" else f", or `{sys.executable} -m pip install {PGSERVER_PACKAGE}`")
    )


def require_bindir(auto_install: bool = True, log=print) -> Path:
    """Return the server bindir (see `resolve_bindir()` for the order), else raise PostgresError."""
    return resolve_bindir(auto_install, log)[0]


def extension_dirs(bindir: Path) -> list[Path]:
    """Candidate `<sharedir>/extension` folders of the installation in bindir (existing ones only)."""
    candidates: list[Path] = []
    pg_config = Path(bindir) / "pg_config"
    if pg_config.is_file() and os.access(pg_config, os.X_OK):
        try:
            out = subprocess.run([str(pg_config), "--sharedir"], capture_output=True, text=True, timeout=10)
            if out.returncode == 0 and out.stdout.strip():
                candidates.append(Path(out.stdout.strip()) / "extension")
        except (OSError, subprocess.SubprocessError):
            pass
    real = Path(os.path.realpath(bindir))
    candidates += [real.parent / "share" / "postgresql" / "extension", real.parent / "share" / "extension"]
    match = re.search(r"/usr/lib/postgresql/(\d+)/bin$", str(real))
    if match:  # Debian/Ubuntu: /usr/lib/postgresql/N/bin -> /usr/share/postgresql/N
        candidates.append(Path(f"/usr/share/postgresql/{match.group(1)}/extension"))
    found: list[Path] = []
    for path in candidates:
        if (path / "plpgsql.control").is_file() and path not in found:
            found.append(path)
    return found


def stat_statements_available(bindir: Path) -> bool:
    """Whether the installation in bindir ships pg_stat_statements (its .control file).

    True when the extension folder cannot be located at all (keep the old behaviour: preload it)."""
    dirs = extension_dirs(bindir)
    if not dirs:
        return True
    return any((path / "pg_stat_statements.control").is_file() for path in dirs)


def server_major(bindir: Path) -> int:
    """Major version of the server in bindir (e.g. 15)."""
    return _major_of(bindir)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.3) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _run_as_postgres() -> bool:
    return os.geteuid() == 0


def _pg_ids() -> tuple[int, int]:
    entry = pwd.getpwnam(PG_SYSTEM_USER)
    return entry.pw_uid, entry.pw_gid


def _user_can_traverse(path: Path, uid: int, gids: set[int]) -> bool:
    """Whether uid (with groups gids) can reach path: every parent needs the right x bit."""
    for part in [path, *path.parents]:
        if not part.exists():
            continue
        st = part.stat()
        if st.st_uid == uid:
            ok = st.st_mode & stat.S_IXUSR
        elif st.st_gid in gids:
            ok = st.st_mode & stat.S_IXGRP
        else:
            ok = st.st_mode & stat.S_IXOTH
        if not ok:
            return False
    return True


def cluster_parent(preferred: Path) -> tuple[Path, bool]:
    """Where to keep a cluster: (folder, is_temporary).

    `preferred` when the server user can reach it; as root with an unreachable `preferred` (e.g. a 0700
    temp dir), a fresh folder under the system temp dir owned by `postgres`.
    """
    preferred = Path(preferred)
    if not _run_as_postgres():
        return preferred, False
    uid, gid = _pg_ids()
    import grp

    gids = {gid} | {g.gr_gid for g in grp.getgrall() if PG_SYSTEM_USER in g.gr_mem}
    if _user_can_traverse(preferred.parent, uid, gids) and len(str(preferred)) < 80:
        return preferred, False
    tmp = Path(tempfile.mkdtemp(prefix="opsnb-pg-", dir="/tmp"))
    os.chown(tmp, uid, gid)
    return tmp, True


class LocalPostgres:
    """A private PostgreSQL cluster: `<folder>/data`, a unix socket in `<folder>/run`, a log file.

    `folder` must be reachable by the server user; use `cluster_parent()` to pick one.
    """

    def __init__(
        self,
        datadir: str | os.PathLike[str],
        port: int | None = None,
        bindir: Path | None = None,
        stat_statements: bool | None = None,
    ):
        self.folder = Path(datadir).resolve()
        self.datadir = self.folder / "data"
        self.socket_dir = self.folder / "run"
        self.log_path = self.folder / "postgres.log"
        self.port = port or free_port()
        self.bindir = Path(bindir) if bindir else require_bindir()
        self.superuser = "opsnb_admin"
        # None: probe the installation (pgserver has no pg_stat_statements)
        self.stat_statements = (
            stat_statements_available(self.bindir) if stat_statements is None else stat_statements
        )

    # --- helpers -----------------------------------------------------------------------------------
    def _cmd(self, name: str, *args: str) -> list[str]:
        cmd = [str(self.bindir / name), *args]
        if _run_as_postgres():
            cmd = ["runuser", "-u", PG_SYSTEM_USER, "--", *cmd]
        return cmd

    def _run(self, name: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            self._cmd(name, *args),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd="/",
            env=dict(os.environ, LC_ALL="C", LANG="C"),
        )
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()
            raise PostgresError(f"{name} failed: {detail[-1] if detail else result.returncode}")
        return result

    def _own(self, path: Path) -> None:
        if _run_as_postgres():
            uid, gid = _pg_ids()
            os.chown(path, uid, gid)

    @property
    def initialized(self) -> bool:
        """True when the data folder holds a cluster."""
        return (self.datadir / "PG_VERSION").is_file()

    # --- lifecycle ---------------------------------------------------------------------------------
    def init(self, password: str, superuser: str = "opsnb_admin") -> None:
        """initdb with a password-protected superuser (scram-sha-256 over TCP) and the sandbox settings."""
        self.superuser = superuser
        self.folder.mkdir(parents=True, exist_ok=True)
        self._own(self.folder)
        os.chmod(self.folder, 0o700)
        pwfile = self.folder / ".pwfile"
        pwfile.write_text(password + "\n")
        os.chmod(pwfile, 0o600)
        self._own(pwfile)
        try:
            self._run(
                "initdb",
                "-D",
                str(self.datadir),
                "-U",
                superuser,
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            )
        finally:
            pwfile.unlink(missing_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        self._own(self.socket_dir)
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.socket_dir}'",
            "track_io_timing": "on",
            "max_connections": "60",
            "shared_buffers": "64MB",
            "fsync": "off",  # throwaway cluster: speed over durability
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "logging_collector": "off",
            "log_min_duration_statement": "1000",
            "dynamic_shared_memory_type": "posix",
        }
        if self.stat_statements:
            settings["shared_preload_libraries"] = "'pg_stat_statements'"
            settings["pg_stat_statements.track"] = "all"
        with open(self.datadir / "postgresql.conf", "a") as conf:
            conf.write("\n# opsnb sandbox\n")
            for key, value in settings.items():
                conf.write(f"{key} = {value}\n")

    def set_port(self, port: int) -> None:
        """Change the port (cluster must be stopped)."""
        self.port = port
        with open(self.datadir / "postgresql.conf", "a") as conf:
            conf.write(f"port = {port}\n")

    def start(self, timeout: float = 30) -> int:
        """Start the server and wait until it accepts connections; return the postmaster pid."""
        if not self.initialized:
            raise PostgresError(f"no cluster in {self.datadir}: call init() first")
        self.log_path.touch(exist_ok=True)
        self._own(self.log_path)
        try:
            self._run(
                "pg_ctl",
                "-D",
                str(self.datadir),
                "-l",
                str(self.log_path),
                "-w",
                "-t",
                str(int(timeout)),
                "-o",
                f"-p {self.port}",
                "start",
                timeout=timeout + 10,
            )
        except (PostgresError, subprocess.TimeoutExpired) as exc:
            raise PostgresError(
                f"postgres failed to start on port {self.port} (log: {self.log_path})"
            ) from exc
        pid = self.pid()
        if pid is None:
            raise PostgresError(f"postgres started but wrote no postmaster.pid (log: {self.log_path})")
        return pid

    def pid(self) -> int | None:
        """The postmaster pid when the server is running, else None."""
        pidfile = self.datadir / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return pid

    def is_running(self) -> bool:
        """True when the postmaster is alive and accepts TCP connections."""
        return self.pid() is not None and port_open(self.port)

    def stop(self, timeout: float = 20) -> None:
        """Fast shutdown; kill the postmaster if pg_ctl cannot stop it in time."""
        pid = self.pid()
        if pid is None:
            return
        try:
            self._run("pg_ctl", "-D", str(self.datadir), "-m", "fast", "-w", "-t", str(int(timeout)), "stop")
        except (PostgresError, subprocess.TimeoutExpired):
            try:
                os.kill(pid, signal.SIGQUIT)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    return
                time.sleep(0.1)
            os.kill(pid, signal.SIGKILL)

    def remove(self) -> None:
        """Stop the server and delete its folder."""
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    # --- connections -------------------------------------------------------------------------------
    def dsn(
        self, user: str, password: str, dbname: str = "postgres", application_name: str | None = None
    ) -> str:
        """postgresql:// URL for user@127.0.0.1:port/dbname."""
        url = f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@127.0.0.1:{self.port}/{dbname}"
        if application_name:
            url += f"?application_name={quote(application_name)}"
        return url

    def tool(self, name: str) -> str:
        """Path of a client tool (pg_dump, pg_restore, psql) of the server's own major version."""
        return str(self.bindir / name)
