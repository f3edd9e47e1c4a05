"""Every committed runbook notebook has the agreed shape (DESIGN.md, "Every runbook notebook")."""

from __future__ import annotations

import json

import pytest

from opsnb.inspection import load_runbook, runbook_names
from opsnb.paths import notebooks_dir

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
