"""Fixtures of the unit tests: a shop database per module for the PostgreSQL checks, fresh findings."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from checks.pg_shop import Shop, make_shop

from opsnb.checks import findings


@pytest.fixture(scope="module")
def shop(pg_cluster, request) -> Iterator[Shop]:
    name = "unit_" + request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    made = make_shop(pg_cluster, name)
    os.environ[made.env] = made.url
    try:
        yield made
    finally:
        os.environ.pop(made.env, None)


@pytest.fixture(autouse=True)
def _fresh_findings():
    findings.clear()
    yield
    findings.clear()
