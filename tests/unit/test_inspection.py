"""Runbooks are listed and parsed without a kernel."""

from __future__ import annotations

import nbformat
import pytest

from opsnb.errors import UsageError
from opsnb.inspection import load_runbook, parse_parameters_cell, runbook_names


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
