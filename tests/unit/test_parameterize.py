"""Parameters are typed by the notebook's declarations, never guessed."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsnb.errors import UsageError
from opsnb.inspection import Runbook, parse_parameters_cell
from opsnb.parameterize import coerce, parse_cli_assignments, resolve_parameters, secret_references

CELL = """ticket: str = "T"  # ticket id
limit: int = 10  # rows
ratio: float = 0.5  # share
strict: bool = False  # flag
urls: list[str] = []  # extra URLs
since: str | None = None  # optional start
must: int = None  # required
db_env: str = "DATABASE_URL"  # where the DSN lives
"""


def runbook() -> Runbook:
    return Runbook("rb", Path("rb.ipynb"), "purpose", parse_parameters_cell(CELL))


def test_declarations_parsed_with_help() -> None:
    params = runbook().parameters
    assert list(params) == ["ticket", "limit", "ratio", "strict", "urls", "since", "must", "db_env"]
    assert params["limit"].type == "int" and params["limit"].default == 10 and params["limit"].help == "rows"
    assert params["must"].required and not params["since"].required


@pytest.mark.parametrize(
    "name,raw,expected",
    [
        ("ticket", "00123", "00123"),
        ("ticket", "1.10", "1.10"),
        ("limit", "00123", 123),
        ("ratio", "1.10", 1.1),
        ("strict", "yes", True),
        ("strict", "OFF", False),
        ("urls", "http://a, http://b", ["http://a", "http://b"]),
        ("urls", ["x", "y"], ["x", "y"]),
        ("since", "null", None),
        ("since", "2026-01-01", "2026-01-01"),
    ],
)
def test_coerce(name: str, raw, expected) -> None:
    assert coerce(runbook().parameters[name], raw) == expected


@pytest.mark.parametrize(
    "name,raw", [("limit", "ten"), ("ratio", "abc"), ("strict", "maybe"), ("limit", ["1"])]
)
def test_coerce_rejects(name: str, raw) -> None:
    with pytest.raises(UsageError, match=f"parameter '{name}' expects"):
        coerce(runbook().parameters[name], raw)


def test_merge_order_and_unknowns() -> None:
    rb = runbook()
    merged = resolve_parameters(rb, {"limit": "1", "other": "x"}, {"limit": "2", "must": "5"}, {"limit": "3"})
    assert merged == {"limit": 3, "must": 5}
    with pytest.raises(UsageError, match="did you mean 'limit'"):
        resolve_parameters(rb, {}, {"must": "1"}, {"limti": "3"})
    with pytest.raises(UsageError, match="needs a value for: must"):
        resolve_parameters(rb, {}, {}, {})


def test_secret_references_are_env_names() -> None:
    rb = runbook()
    assert secret_references(rb, {"db_env": "PROD_DB"}) == {"db_env": "PROD_DB"}
    assert secret_references(rb, {}) == {"db_env": "DATABASE_URL"}


def test_cli_assignments() -> None:
    assert parse_cli_assignments(["a=1", "b=x=y", "c="]) == {"a": "1", "b": "x=y", "c": ""}
    with pytest.raises(UsageError):
        parse_cli_assignments(["novalue"])
