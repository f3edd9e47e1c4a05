"""Read a runbook notebook without running it: its purpose and its declared parameters.

The parameters cell (tagged ``parameters``) declares each parameter as
``name: type = default  # help``. We parse it with ``ast`` so that listing and
validating runbooks never starts a kernel or imports papermill.
"""

from __future__ import annotations

import ast
import io
import json
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opsnb.errors import UsageError
from opsnb.paths import notebooks_dir


@dataclass(frozen=True)
class Parameter:
    """One declared parameter of a runbook."""

    name: str
    type: str  # the annotation as written, e.g. "int", "list[str]", "str | None"
    default: Any
    help: str
    required: bool


@dataclass(frozen=True)
class Runbook:
    """A runbook notebook: its name, path, one-line purpose and parameters."""

    name: str
    path: Path
    purpose: str
    parameters: dict[str, Parameter]


def runbook_names() -> list[str]:
    """Names of the runbooks in the notebooks folder, sorted."""
    return sorted(p.stem for p in notebooks_dir().glob("*.ipynb"))


def find_runbook(name: str) -> Path:
    """Path of the runbook called ``name``; a UsageError with a did-you-mean when there is none."""
    path = notebooks_dir() / f"{name}.ipynb"
    if path.is_file():
        return path
    from opsnb.suggest import did_you_mean

    names = runbook_names()
    raise UsageError(
        f"unknown runbook '{name}'{did_you_mean(name, names)}; runbooks: {', '.join(names) or 'none'}"
    )


def load_runbook(name: str) -> Runbook:
    """Parse the runbook notebook ``name`` (purpose and parameters)."""
    path = find_runbook(name)
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"runbook '{name}' is not a readable notebook: {exc}") from None
    cells = nb.get("cells", [])
    return Runbook(name=name, path=path, purpose=_purpose(cells), parameters=_parameters(name, cells))


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _purpose(cells: list[dict]) -> str:
    """The first sentence-like line of the first markdown cell that is not a heading."""
    for cell in cells:
        if cell.get("cell_type") != "markdown":
            continue
        for line in _source(cell).splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                return line.lstrip("*> ").rstrip()
    return ""


def _parameters(runbook: str, cells: list[dict]) -> dict[str, Parameter]:
    for cell in cells:
        if cell.get("cell_type") == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            return parse_parameters_cell(_source(cell), runbook)
    return {}


def parse_parameters_cell(source: str, runbook: str = "?") -> dict[str, Parameter]:
    """Declared parameters of a parameters cell, in order of appearance."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise UsageError(f"runbook '{runbook}': parameters cell is not valid Python: {exc.msg}") from None
    comments = _comments_by_line(source)
    params: dict[str, Parameter] = {}
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            name, annotation, value = node.target.id, ast.unparse(node.annotation), node.value
        elif (
            isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
        ):
            name, annotation, value = node.targets[0].id, None, node.value
        else:
            continue
        default = _literal(value)
        if annotation is None:
            annotation = type(default).__name__ if default is not None else "str | None"
        optional = "None" in annotation or "Optional" in annotation
        params[name] = Parameter(
            name=name,
            type=annotation,
            default=default,
            help=comments.get(node.lineno, ""),
            required=default is None and not optional,
        )
    return params


def _literal(node: ast.expr | None) -> Any:
    if node is None:
        return None
    try:
        return ast.literal_eval(node)
    except ValueError:
        return ast.unparse(node)


def _comments_by_line(source: str) -> dict[int, str]:
    out: dict[int, str] = {}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                out[tok.start[0]] = tok.string.lstrip("#").strip()
    except (tokenize.TokenError, IndentationError):
        pass
    return out
