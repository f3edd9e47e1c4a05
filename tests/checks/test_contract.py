"""Every check in the package follows the one contract (opsnb.checks.findings): decorated with @check, so it
records exactly one conclusion, and nothing records conclusions any other way."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import opsnb.checks
from opsnb.checks import findings

CHECKS = Path(opsnb.checks.__file__).parent
NOTEBOOKS = CHECKS.parent.parent / "notebooks"
# The pre-contract API: gone from every module and notebook.
OLD_API = re.compile(r"\bfindings\.(add|ok|clear_check|all_findings)\(|\bfindings\.Finding\b")


def _modules():
    for info in pkgutil.walk_packages(opsnb.checks.__path__, "opsnb.checks."):
        yield importlib.import_module(info.name)


def test_every_check_function_is_a_decorated_check() -> None:
    undecorated = []
    ids: dict[str, str] = {}
    for module in _modules():
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if fn.__module__ != module.__name__ or not name.startswith("check_"):
                continue
            check_id = getattr(fn, "check_id", None)
            if check_id is None:
                undecorated.append(f"{module.__name__}.{name}")
                continue
            assert findings.CHECK_ID.match(check_id), check_id
            other = ids.setdefault(check_id, f"{module.__name__}.{name}")
            assert other == f"{module.__name__}.{name}", (
                f"{check_id} is used by {other} and {module.__name__}.{name}"
            )
    assert not undecorated, f"check_* functions without @findings.check: {undecorated}"
    assert len(ids) >= 20  # the package really was walked


def test_nothing_records_a_conclusion_another_way() -> None:
    offenders = []
    for path in CHECKS.rglob("*.py"):
        if path.name == "findings.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if OLD_API.search(line):
                offenders.append(f"{path.relative_to(CHECKS)}:{number}")
    for path in NOTEBOOKS.glob("*.ipynb"):
        if OLD_API.search(path.read_text()):
            offenders.append(path.name)
    assert not offenders, offenders


def test_conclude_is_only_called_inside_checks_or_with_an_explicit_id() -> None:
    """A bare conclude() outside a @check has no id; one with check_id= is a notebook-level conclusion."""
    loose = []
    for path in CHECKS.rglob("*.py"):
        if path.name == "findings.py":
            continue
        tree = ast.parse(path.read_text())
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef) or fn.name == "conclude":
                continue  # a forwarding helper (e.g. auth's Judgement.conclude) is itself called inside checks
            decorated = any("check" in ast.unparse(d) for d in fn.decorator_list)
            for call in ast.walk(fn):
                if (
                    isinstance(call, ast.Call)
                    and ast.unparse(call.func).endswith("conclude")
                    and not decorated
                    and not any(k.arg == "check_id" for k in call.keywords)
                ):
                    loose.append(f"{path.relative_to(CHECKS)}:{call.lineno} in {fn.name}")
    assert not loose, loose


def test_every_notebook_starts_fresh_and_ends_with_record() -> None:
    import nbformat

    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        code = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
        body = code[1:]  # after the parameters cell
        assert "findings.clear()" in body[0], f"{path.name}: first code cell must call findings.clear()"
        assert body[-1].strip().endswith("findings.record()"), (
            f"{path.name}: last cell must be findings.record()"
        )
