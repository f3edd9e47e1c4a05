"""Runbooks are listed and parsed without a kernel."""

from __future__ import annotations

import json

import nbformat
import pytest

from opsnb.errors import UsageError
from opsnb.runner.inspection import (
    InvalidRunbook,
    load_runbook,
    parse_parameters_cell,
    parse_range,
    runbook_names,
    scan_runbooks,
)


def test_purpose_and_parameters(tmp_path, monkeypatch) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Slow queries\n\nFind what makes the database slow.\n\nMore text."),
        nbformat.v4.new_code_cell(
            "top_n: int = 10  # how many statements\n", metadata={"tags": ["parameters"]}
        ),
    ]
    nbformat.write(nb, tmp_path / "slow.ipynb")
    monkeypatch.setenv("OPSNB_NOTEBOOKS", str(tmp_path))
    rb = load_runbook("slow")
    assert rb.purpose == "Find what makes the database slow."
    assert rb.parameters["top_n"].help == "how many statements"
    assert runbook_names() == ["slow"]
    with pytest.raises(UsageError, match="did you mean 'slow'"):
        load_runbook("slw")


def test_broken_parameters_cell_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="not valid Python"):
        parse_parameters_cell("x: int = = 3")


def test_untyped_parameter_takes_type_of_literal() -> None:
    params = parse_parameters_cell("n = 3  # count\nname = 'a'\n")
    assert (params["n"].type, params["name"].type) == ("int", "str")


def write_valid(folder, name: str, params: str = "n: int = 1  # count\n") -> None:
    """A minimal valid runbook notebook ``folder/name.ipynb``."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(f"# {name}\n\nPurpose of {name}."),
        nbformat.v4.new_code_cell(params, metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("findings.record()"),
    ]
    nbformat.write(nb, folder / f"{name}.ipynb")


def nb_json(cells) -> str:
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells})


PARAMS = {"cell_type": "code", "source": "n: int = 1\n", "metadata": {"tags": ["parameters"]}, "outputs": []}
INVALID = {
    "array": ("[]", "the notebook is an array, expected an object"),
    "cells-string": (nb_json("cells"), "'cells' is a string, expected an array"),
    "not-json": ("{not json", "not-json.ipynb is not JSON"),
    "not-utf8": (b'{"cells": "\xff"}', "not-utf8.ipynb is not UTF-8 text"),
    "no-cells": ('{"nbformat": 4, "metadata": {}}', "the notebook has no 'cells'"),
    "v3": ('{"nbformat": 3, "metadata": {}, "worksheets": []}', "not an nbformat 4 notebook (nbformat: 3)"),
    "no-metadata": ('{"nbformat": 4, "cells": []}', "notebook 'metadata' is missing"),
    "no-parameters": (
        nb_json([{"cell_type": "code", "source": "x = 1", "metadata": {}, "outputs": []}]),
        "no code cell is tagged 'parameters'",
    ),
    "two-parameters": (nb_json([PARAMS, PARAMS]), "2 code cells are tagged 'parameters', expected one"),
    "cell-not-object": (nb_json([PARAMS, "x"]), "cell 2: is a string, expected an object"),
    "bad-cell-type": (nb_json([{"cell_type": "image", "source": ""}]), "cell 1: cell_type 'image'"),
    "bad-source": (nb_json([{"cell_type": "code", "source": [1, 2]}]), "cell 1: source must be a string"),
    "bad-tags": (nb_json([{"cell_type": "code", "source": "", "metadata": {"tags": "parameters"}}]), "tags"),
    "bad-python": (nb_json([{**PARAMS, "source": "n: int = = 1"}]), "parameters cell is not valid Python"),
    "upside-down": (
        nb_json([{**PARAMS, "source": "n: int = 1  # [10..1]"}]),
        "declares [10..1] with lo > hi",
    ),
}


@pytest.mark.parametrize("name", INVALID)
def test_invalid_notebooks_are_not_runbooks(tmp_path, monkeypatch, name) -> None:
    content, reason = INVALID[name]
    path = tmp_path / f"{name}.ipynb"
    path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    monkeypatch.setenv("OPSNB_NOTEBOOKS", str(tmp_path))
    with pytest.raises(InvalidRunbook) as info:
        load_runbook(name)
    assert reason in info.value.reason
    assert str(info.value).startswith(f"runbook '{name}' is not a valid runbook: ")
    assert "\n" not in str(info.value)


def test_scan_separates_valid_from_invalid(tmp_path, monkeypatch) -> None:
    write_valid(tmp_path, "good")
    write_valid(tmp_path, "Bad Name")
    (tmp_path / "array.ipynb").write_text("[]")
    monkeypatch.setenv("OPSNB_NOTEBOOKS", str(tmp_path))
    valid, invalid = scan_runbooks()
    assert [rb.name for rb in valid] == ["good"]
    assert invalid == {
        "Bad Name": "file name is not a runbook name (lowercase letters, digits, '-')",
        "array": "the notebook is an array, expected an object",
    }
    assert runbook_names() == ["array", "good"]


@pytest.mark.parametrize("name", ["../good", "/tmp/good", "a/b", "Good", "good.ipynb", "-good", "g" * 65])
def test_runbook_name_must_be_a_slug(tmp_path, monkeypatch, name) -> None:
    write_valid(tmp_path, "good")
    monkeypatch.setenv("OPSNB_NOTEBOOKS", str(tmp_path))
    with pytest.raises(UsageError, match=r"invalid runbook name .*; runbooks: good$"):
        load_runbook(name)


@pytest.mark.parametrize(
    "help_text,expected",
    [
        ("rows [1..1000]", (1, 1000)),
        ("[0..100] percent", (0, 100)),
        ("offset [ -10 .. 10 ]", (-10, 10)),
        ("fraction [0.05..0.5]", (0.05, 0.5)),
        ("no range here", None),
        ("a list [a..b]", None),
        ("", None),
    ],
)
def test_parse_range(help_text, expected) -> None:
    assert parse_range(help_text) == expected


def test_declared_range_of_a_parameter() -> None:
    params = parse_parameters_cell("jobs: int = 2  # pg_restore -j [1..64]\nname: str = ''  # text\n")
    assert params["jobs"].declared_range == (1, 64)
    assert params["name"].declared_range is None
