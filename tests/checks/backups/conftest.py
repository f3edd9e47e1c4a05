"""Fixtures of the backups tests: a run id, a moto S3 server over real HTTP with a fresh prefix per test, a
small source database on the test cluster, and the work folder of a run."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from checks.backups.s3_server import running_moto

from opsnb.checks.clients import s3 as s3mod

RUN_ID = "a1b2c3d4e5"
BUCKET = "opsnb-unit-backups"


@pytest.fixture(autouse=True)
def _run_id(monkeypatch) -> None:
    monkeypatch.setenv("OPSNB_RUN_ID", RUN_ID)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    with running_moto() as url:
        yield url


@pytest.fixture
def location(s3_endpoint, monkeypatch) -> s3mod.Location:
    """A fresh prefix in the unit bucket, keys named by environment variables (as parameters do)."""
    monkeypatch.setenv("OPSNB_UNIT_KEY_ID", "unit-key-id")
    monkeypatch.setenv("OPSNB_UNIT_SECRET", "unit-secret-key")
    where = s3mod.Location(
        bucket=BUCKET,
        prefix=f"t-{uuid.uuid4().hex[:8]}",
        endpoint_url=s3_endpoint,
        access_key_id_env="OPSNB_UNIT_KEY_ID",
        secret_access_key_env="OPSNB_UNIT_SECRET",
        region="us-east-1",
    )
    client = where.client()
    try:
        client.create_bucket(Bucket=BUCKET)
    except client.exceptions.BucketAlreadyOwnedByYou:
        pass
    return where


@pytest.fixture
def folder(tmp_path) -> Path:
    """A run's work folder."""
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def source_db(pg_cluster, monkeypatch) -> str:
    """A small database 'src' with "Product" (50), "User" (20), "Order" (300, newest a minute old); env vars
    OPSNB_TEST_SRC_URL (it) and OPSNB_TEST_MAINT_URL (a role that may create databases)."""
    with psycopg.connect(pg_cluster.dsn, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS src WITH (FORCE)")
        conn.execute("CREATE DATABASE src")
    src = pg_cluster.dsn_for("src")
    with psycopg.connect(src, autocommit=True) as conn:
        conn.execute(
            'CREATE TABLE "Product" (id int primary key); INSERT INTO "Product" SELECT generate_series(1, 50)'
        )
        conn.execute(
            'CREATE TABLE "User" (id int primary key); INSERT INTO "User" SELECT generate_series(1, 20)'
        )
        conn.execute(
            'CREATE TABLE "Order" (id int primary key, "createdAt" timestamp(3) not null);'
            "INSERT INTO \"Order\" SELECT g, now() - g * interval '1 minute' FROM generate_series(1, 300) g"
        )
    monkeypatch.setenv("OPSNB_TEST_SRC_URL", src)
    monkeypatch.setenv("OPSNB_TEST_MAINT_URL", pg_cluster.dsn)
    return src


@pytest.fixture
def scratch_left(pg_cluster) -> Callable[[], list[str]]:
    """A function listing the scratch databases on the test cluster."""

    def names() -> list[str]:
        with psycopg.connect(pg_cluster.dsn, autocommit=True) as conn:
            query = "SELECT datname FROM pg_database WHERE datname LIKE 'opsnb_restore_%' ORDER BY 1"
            return [r[0] for r in conn.execute(query)]

    return names
