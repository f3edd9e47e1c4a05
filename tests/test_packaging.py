"""What opsnb imports is declared: pyproject's dependencies cover every third-party import of the package,
and requirements.txt (the install set CI uses) pins the same ranges."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import opsnb

ROOT = Path(opsnb.__file__).parent.parent


def _name(spec: str) -> str:
    return re.split(r"[\[<>=!~ ]", spec.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _declared() -> dict[str, str]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return {_name(d): d.replace(" ", "") for d in deps}


def _imported_top_levels() -> set[str]:
    found = set()
    for path in (ROOT / "opsnb").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
            elif isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
    return {m for m in found if m not in sys.stdlib_module_names and m != "opsnb"}


def test_every_third_party_import_is_a_declared_dependency() -> None:
    dists = packages_distributions()
    declared = set(_declared())
    missing = {}
    for module in sorted(_imported_top_levels()):
        names = {d.lower().replace("_", "-") for d in dists.get(module, [module])}
        if not names & declared:
            missing[module] = sorted(names)
    assert not missing, f"imported but not in pyproject dependencies: {missing}"


def test_requirements_install_what_pyproject_declares() -> None:
    lines = [
        line.split("#")[0].strip()
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.split("#")[0].strip()
    ]
    pinned = {_name(line): line.replace(" ", "") for line in lines}
    for name, spec in _declared().items():
        assert pinned.get(name) == spec, f"{name}: pyproject {spec!r}, requirements.txt {pinned.get(name)!r}"


def test_the_lock_pins_every_requirement_within_its_range() -> None:
    """make setup installs requirements.lock: it must satisfy requirements.txt (run `make lock` after a change)."""
    from packaging.requirements import Requirement

    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[_name(name)] = version.strip()
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        spec = line.split("#")[0].strip()
        if not spec:
            continue
        req = Requirement(spec)
        name = _name(req.name)
        assert name in pins, f"{name} is not in requirements.lock: run make lock"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"{name}=={pins[name]} outside {req.specifier}"
        )
