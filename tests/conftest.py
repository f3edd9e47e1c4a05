"""Session fixtures shared by every test folder.

- `sandbox`: a running sandbox (all faults on, 12 000 orders) in a temp state folder; yields a `Sandbox`
  with the env-file values; always torn down (no postgres/uvicorn/moto process left, even on failures).
- `pg_cluster`: a bare PostgreSQL cluster (superuser DSN, pg_stat_statements, no shop) for database helpers.

The whole session runs with OPSNB_SANDBOX_DIR pointing into pytest's temp folder, so no test touches the
developer's own `.sandbox`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

TEST_SCALE = 12_000  # > 10 000 rows: PgHero's "missing index" table-size threshold still applies


@dataclass
class Sandbox:
    """A running sandbox: its state folder and the values of its sandbox.env."""

    state_dir: Path
    env: dict[str, str]
    env_file: Path
    up_seconds: float
    scale: int

    def __getitem__(self, key: str) -> str:
        return self.env[key]

    @property
    def app_url(self) -> str:
        return self.env["SANDBOX_APP_URL"]

    @property
    def database_url(self) -> str:
        """The shop app's own role (tests act as the app; the runbooks read as the reader role)."""
        return self.env["SANDBOX_APP_DATABASE_URL"]

    @property
    def reader_url(self) -> str:
        return self.env["SANDBOX_DATABASE_URL"]

    @property
    def admin_url(self) -> str:
        return self.env["SANDBOX_ADMIN_DATABASE_URL"]

    def set_fault(self, name: str, on: bool) -> None:
        """Switch a fault and refresh `env` (NEXTAUTH_URL follows the nextauth-url fault)."""
        from opsnb.sandbox import manager

        manager.set_fault(name, on)
        self.env.clear()
        self.env.update(manager.read_env())

    @contextlib.contextmanager
    def faults(self, **states: bool) -> Iterator[Sandbox]:
        """Temporarily set faults (`missing_index=False` style names); restored afterwards."""
        from opsnb.sandbox import manager

        before = manager.faults()
        names = {k.replace("_", "-"): v for k, v in states.items()}
        try:
            for name, on in names.items():
                if before[name] != on:
                    self.set_fault(name, on)
            yield self
        finally:
            for name in names:
                if manager.faults()[name] != before[name]:
                    self.set_fault(name, before[name])


@pytest.fixture(scope="session", autouse=True)
def _sandbox_state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Point OPSNB_SANDBOX_DIR at a temp folder for the whole session."""
    path = tmp_path_factory.mktemp("sandbox-state")
    old = os.environ.get("OPSNB_SANDBOX_DIR")
    os.environ["OPSNB_SANDBOX_DIR"] = str(path)
    try:
        yield path
    finally:
        if old is None:
            os.environ.pop("OPSNB_SANDBOX_DIR", None)
        else:
            os.environ["OPSNB_SANDBOX_DIR"] = old


@pytest.fixture(scope="session")
def sandbox(_sandbox_state_dir: Path) -> Iterator[Sandbox]:
    """A running sandbox with every fault on; torn down at the end of the session whatever happens."""
    from opsnb.sandbox import manager

    try:
        result = manager.up(scale=TEST_SCALE, faults="all", log=lambda _msg: None)
        yield Sandbox(
            state_dir=Path(result["state_dir"]),
            env=manager.read_env(),
            env_file=Path(result["env_file"]),
            up_seconds=result["seconds"],
            scale=TEST_SCALE,
        )
    finally:
        manager.down(keep=False)


@dataclass
class PgCluster:
    """A bare local PostgreSQL: `dsn` is a superuser URL to the `postgres` database."""

    postgres: object  # opsnb.sandbox.postgres.LocalPostgres
    dsn: str
    superuser: str
    password: str
    port: int
    bindir: Path

    def dsn_for(self, dbname: str) -> str:
        """Superuser URL to another database of the cluster."""
        return self.postgres.dsn(self.superuser, self.password, dbname)  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def pg_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgCluster]:
    """A throwaway cluster with pg_stat_statements created in `postgres`; removed at session end."""
    import psycopg

    from opsnb.sandbox.postgres import LocalPostgres, cluster_parent

    folder, _ = cluster_parent(tmp_path_factory.mktemp("pg-cluster") / "pg")
    password = secrets.token_urlsafe(16)
    pg = LocalPostgres(folder)
    try:
        pg.init(password, superuser="opsnb_admin")
        with open(
            pg.datadir / "postgresql.conf", "a"
        ) as conf:  # so the prepared-transactions check can be tested
            conf.write("max_prepared_transactions = 4\n")
        pg.start()
        dsn = pg.dsn("opsnb_admin", password, "postgres")
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        yield PgCluster(
            postgres=pg, dsn=dsn, superuser="opsnb_admin", password=password, port=pg.port, bindir=pg.bindir
        )
    finally:
        pg.remove()


# Foundations first: unit tests, the runner, the sandbox itself, then the runbooks that change the sandbox's
# state (indexes created, deployments rolled back, orders paid), then the all-runbooks canary.
_ORDER = ("tests/checks/", "tests/runner/", "tests/sandbox/", "tests/safety/", "tests/runbooks/")


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    def rank(item) -> int:
        path = Path(str(item.fspath)).resolve().relative_to(Path(str(config.rootpath)).resolve()).as_posix()
        return next((i for i, prefix in enumerate(_ORDER) if path.startswith(prefix)), len(_ORDER))

    items.sort(key=rank)
