"""Adding a runbook is a recipe (README "Adding a runbook"): every notebook comes with each of its parts, and
this test names the part a runbook lacks."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest
import yaml

from opsnb.paths import notebooks_dir, parameters_dir, project_root
from opsnb.runner.inspection import load_runbook, runbook_names
from opsnb.sandbox import faults

CHECK_IMPORT = re.compile(r"^opsnb\.checks\.(?!findings$|secrets$|context$|actions$|display$|plots$)\w+")


def _checks_areas(name: str) -> set[str]:
    """The opsnb.checks areas the notebook's code imports (findings/secrets/… do not count as an area)."""
    areas = set()
    nb = nbformat.read(notebooks_dir() / f"{name}.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code" or "parameters" in cell.metadata.get("tags", []):
            continue
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module == "opsnb.checks":
                    modules = [f"opsnb.checks.{a.name}" for a in node.names]
                else:
                    modules = [node.module]
                areas |= {m.split(".")[2] for m in modules if CHECK_IMPORT.match(m)}
    return areas


def _runbook_blocks(file: str) -> dict:
    return yaml.safe_load((parameters_dir() / file).read_text()).get("runbooks") or {}


@pytest.mark.parametrize("name", runbook_names())
def test_every_runbook_has_every_part(name: str) -> None:
    missing = []
    runbook = load_runbook(name)  # 1. a valid notebook: purpose, typed parameters cell
    if not runbook.tags:
        missing.append("tags in the notebook's metadata.opsnb.tags")
    if not _checks_areas(name):  # 2. its checks live in an opsnb.checks area, not in cells
        missing.append("an opsnb.checks area module the notebook imports")
    for file in ("sandbox.yaml", "production.example.yaml"):  # 3. parameters for the sandbox and production
        if name not in _runbook_blocks(file):
            missing.append(f"a runbooks: {name}: block in parameters/{file}")
    if not faults.for_runbook(name):  # 4. a planted sandbox fault that makes it FAIL or WARN
        missing.append("a sandbox fault in opsnb/sandbox/faults.py that this runbook finds")
    test = project_root() / "tests" / "runbooks" / f"test_{name.replace('-', '_')}.py"
    if not Path(test).exists():  # 5. its end-to-end test on the sandbox
        missing.append(f"tests/runbooks/{test.name}")
    assert not missing, f"runbook {name} lacks: " + "; ".join(missing)
