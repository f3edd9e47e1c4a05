"""Every committed runbook notebook has the agreed shape (DESIGN.md, "Every runbook notebook")."""

from __future__ import annotations

import json

import pytest

from opsnb.paths import notebooks_dir
from opsnb.runner.inspection import load_runbook, runbook_names, scan_runbooks
from opsnb.runner.parameterize import coerce

NAMES = runbook_names()


def test_there_are_runbooks() -> None:
    assert NAMES, "no notebooks in notebooks/"


@pytest.mark.parametrize("name", NAMES)
def test_notebook_shape(name: str) -> None:
    nb = json.loads((notebooks_dir() / f"{name}.ipynb").read_text())
    cells = nb["cells"]
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    for cell in cells:  # committed without outputs
        assert not cell.get("outputs") and not cell.get("execution_count"), f"{name}: outputs committed"
    assert cells[0]["cell_type"] == "markdown"
    rb = load_runbook(name)
    assert rb.purpose, f"{name}: first markdown cell needs a one-line purpose"
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{name}: exactly one cell tagged parameters"
    assert rb.parameters, f"{name}: declares no parameters"
    for p in rb.parameters.values():
        assert p.help, f"{name}: parameter {p.name} has no '# help' comment"
    code = [c for c in cells if c["cell_type"] == "code"]
    last = "".join(code[-1]["source"]).strip()
    assert last.endswith("findings.record()"), f"{name}: the last cell must record the findings"


def test_every_notebook_is_a_valid_runbook() -> None:
    valid, invalid = scan_runbooks()
    assert not invalid, f"invalid runbooks: {invalid}"
    assert [rb.name for rb in valid] == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_numeric_parameters_declare_a_range(name: str) -> None:
    """Every int/float parameter says `[lo..hi]` in its help (`opsnb show` prints it; -p values are held to it)."""
    for p in load_runbook(name).parameters.values():
        if p.type in ("int", "float"):
            assert p.declared_range, f"{name}: {p.name} ({p.type}) declares no [lo..hi] range in its help"


@pytest.mark.parametrize("name", NAMES)
def test_defaults_pass_the_value_checks(name: str) -> None:
    """A default that `-p` would refuse (too long, control characters, out of range) is a bug in the notebook."""
    for p in load_runbook(name).parameters.values():
        if p.default is None:
            continue
        raw = p.default if isinstance(p.default, list) else str(p.default)
        assert coerce(p, raw, from_file=True) == p.default, f"{name}: default of {p.name}"
