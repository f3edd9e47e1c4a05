"""Parameters are typed by the notebook's declarations, never guessed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from opsnb.errors import UsageError
from opsnb.runner.inspection import Runbook, parse_parameters_cell
from opsnb.runner.parameterize import coerce, parse_cli_assignments, resolve_parameters, secret_references

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


STRICT_CELL = """app_url: str  # required, no default
count: int = 1  # no declared range: 0..10^9
top_n: int = 10  # rows [1..1000]
offset: int = 0  # may go below zero [-100..100]
share: float = 0.5  # a fraction [0..1]
ms: float = 20.0  # no declared range: 0..1e12
strict: bool = False  # flag
urls: list[str] = []  # URLs
ports: list[int] = []  # ports [1..65535]
token_env: str = "TOKEN"  # env var holding the token
"""


def strict() -> Runbook:
    return Runbook("strict", Path("strict.ipynb"), "purpose", parse_parameters_cell(STRICT_CELL))


def refused(name: str, raw, says: str, from_file: bool = False) -> None:
    with pytest.raises(UsageError, match=f"^parameter '{name}' .*{re.escape(says)}"):
        coerce(strict().parameters[name], raw, from_file=from_file)


@pytest.mark.parametrize(
    "name,raw,says",
    [
        ("ms", "nan", "must be a finite number, got 'nan'"),
        ("ms", "-inf", "must be a finite number"),
        ("ms", "Infinity", "must be a finite number"),
        ("ms", "1e400", "must be a finite number, got '1e400'"),
        ("ms", "1_000.5", "expects float, got '1_000.5'"),
        ("ms", "٣.٥", "expects float"),
        ("count", "١٠", "expects int, got '١٠'"),
        ("count", "10**30", "expects int, got '10**30'"),
        ("count", "1_000", "expects int, got '1_000'"),
        ("count", "1e3", "expects int"),
        ("count", "0x10", "expects int"),
        ("count", "", "expects int, got ''"),
        ("count", "-5", "must be within 0..1000000000, got -5"),
        ("count", "1" + "0" * 30, "must be within 0..1000000000"),
        ("ms", "-0.5", "must be within 0..1e+12, got -0.5"),
        ("ms", "2e12", "must be within 0..1e+12"),
        ("top_n", "-5", "must be within 1..1000, got -5"),
        ("top_n", "0", "must be within 1..1000, got 0"),
        ("top_n", "1001", "must be within 1..1000"),
        ("offset", "-101", "must be within -100..100"),
        ("share", "1.5", "must be within 0..1, got 1.5"),
        ("ports", "80,0", "must be within 1..65535, got 0"),
        ("strict", "maybe", "expects bool (true/false, yes/no, on/off, 1/0), got 'maybe'"),
        ("strict", "2", "expects bool"),
        ("strict", "", "expects bool"),
        ("app_url", "x" * 4097, "is too long: 4097 characters, at most 4096"),
        ("app_url", "http://a\nb", "contains a control character (U+000A)"),
        ("app_url", "a\x00b", "contains a control character (U+0000)"),
        ("app_url", "a\x7fb", "(U+007F)"),
        ("app_url", "a\x1b[31mb", "(U+001B)"),
        ("app_url", "a\x85b", "(U+0085)"),
        ("urls", ",".join(["u"] * 65), "has 65 items, at most 64"),
        ("urls", ["u"] * 65, "has 65 items, at most 64"),
        ("urls", ["ok", "x" * 4097], "is too long"),
        ("urls", ["ok", "a\tb"], "control character (U+0009)"),
        ("urls", {"a": "b"}, "expects list[str], got a mapping"),
        ("urls", ["a", ["b"]], "item 2 is a list or mapping"),
        ("urls", ["a", {"b": "c"}], "item 2 is a list or mapping"),
        ("token_env", "postgres://user:pw@host/db", "must name an environment variable"),
        ("token_env", "A B", "must name an environment variable"),
    ],
)
def test_values_refused(name: str, raw, says: str) -> None:
    refused(name, raw, says)


def test_list_from_a_parameters_file_must_be_a_yaml_list() -> None:
    refused(
        "urls",
        "http://a, http://b",
        "write a YAML list ([a, b]), got the single value 'http://a, http://b'",
        True,
    )
    refused("urls", "", "write a YAML list", from_file=True)
    assert coerce(strict().parameters["urls"], ["http://a", "http://b"], from_file=True) == [
        "http://a",
        "http://b",
    ]


@pytest.mark.parametrize(
    "name,raw,expected",
    [
        ("count", "+7", 7),
        ("count", " 42 ", 42),
        ("count", "1000000000", 10**9),
        ("count", "0", 0),
        ("offset", "-100", -100),
        ("top_n", "1000", 1000),
        ("share", "1", 1.0),
        ("share", ".25", 0.25),
        ("ms", "1.5e3", 1500.0),
        ("strict", "TRUE", True),
        ("strict", "No", False),
        ("strict", "1", True),
        ("strict", "0", False),
        ("ports", "80, 443", [80, 443]),
        ("urls", ["u"] * 64, ["u"] * 64),
        ("app_url", "x" * 4096, "x" * 4096),
        ("app_url", "café ☕", "café ☕"),
        ("token_env", "", ""),
        ("token_env", "_MY_TOKEN2", "_MY_TOKEN2"),
    ],
)
def test_values_accepted(name: str, raw, expected) -> None:
    assert coerce(strict().parameters[name], raw) == expected


def test_required_parameter_must_not_be_empty() -> None:
    rb = strict()
    for empty in ("", "   "):
        with pytest.raises(UsageError, match="needs a non-empty value for: app_url"):
            resolve_parameters(rb, {}, {}, {"app_url": empty})
    with pytest.raises(UsageError, match="needs a non-empty value for: app_url"):
        resolve_parameters(rb, {"app_url": ""}, {}, {})
    with pytest.raises(UsageError, match="needs a value for: app_url"):
        resolve_parameters(rb, {}, {}, {})
    # an empty default from the file is fine when the command line gives the value
    assert resolve_parameters(rb, {"app_url": ""}, {}, {"app_url": "http://x"}) == {"app_url": "http://x"}


def test_resolve_refuses_scalar_list_from_file_but_splits_the_command_line() -> None:
    rb = strict()
    with pytest.raises(UsageError, match="parameter 'urls' expects list"):
        resolve_parameters(rb, {}, {"urls": "a,b", "app_url": "x"}, {})
    with pytest.raises(UsageError, match="parameter 'urls' expects list"):
        resolve_parameters(rb, {"urls": "a,b"}, {}, {"app_url": "x"})
    assert resolve_parameters(rb, {}, {"app_url": "x"}, {"urls": "a,b"})["urls"] == ["a", "b"]


def test_unknown_parameter_with_a_newline_stays_one_line() -> None:
    with pytest.raises(UsageError) as info:
        resolve_parameters(strict(), {}, {}, {"cou\nnt": "1"})
    assert "\n" not in str(info.value) and "did you mean 'count'" in str(info.value)


def test_cli_assignment_given_twice() -> None:
    with pytest.raises(UsageError, match="-p top_n is given twice"):
        parse_cli_assignments(["top_n=1", " top_n =2"])


def test_error_messages_are_one_line() -> None:
    for name, raw in [("app_url", "a\nb"), ("count", "1\n2"), ("strict", "ye\ns"), ("urls", "a\nb,c")]:
        with pytest.raises(UsageError) as info:
            coerce(strict().parameters[name], raw)
        assert "\n" not in str(info.value), str(info.value)
