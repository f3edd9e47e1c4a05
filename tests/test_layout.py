"""The layout is the architecture: the kernel side never reaches into the runner or the sandbox."""

from __future__ import annotations

import ast
from pathlib import Path

import opsnb

PACKAGE = Path(opsnb.__file__).parent


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return found


def test_checks_never_import_the_runner_or_the_sandbox() -> None:
    bad = {
        f"{path.relative_to(PACKAGE)} imports {module}"
        for path in (PACKAGE / "checks").rglob("*.py")
        for module in _imports(path)
        if module.startswith(("opsnb.runner", "opsnb.sandbox", "opsnb.cli"))
    }
    assert not bad, sorted(bad)


def test_runner_never_imports_the_sandbox() -> None:
    bad = {
        f"{path.relative_to(PACKAGE)} imports {module}"
        for path in (PACKAGE / "runner").rglob("*.py")
        for module in _imports(path)
        if module.startswith("opsnb.sandbox")
    }
    assert not bad, sorted(bad)


def test_no_module_left_in_the_flat_package() -> None:
    flat = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert flat == ["__init__.py", "cli.py", "envfile.py", "errors.py", "liveness.py", "paths.py"], flat
