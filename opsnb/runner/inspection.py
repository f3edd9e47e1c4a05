"""Read a runbook notebook without running it: its purpose and its declared parameters.

The parameters cell (tagged ``parameters``) declares each parameter as
``name: type = default  # help``. We parse it with ``ast`` so that listing and
validating runbooks never starts a kernel or imports papermill (nor nbformat,
whose import alone takes a second: the notebook's shape is checked here by hand).

A help comment may declare the range of an int or float parameter as ``[lo..hi]``,
e.g. ``top_n: int = 10  # rows shown [1..1000]``; see ``Parameter.declared_range``.

A valid runbook is an nbformat-4 JSON notebook with exactly one code cell tagged
``parameters``; anything else raises ``InvalidRunbook``.
"""

from __future__ import annotations

import ast
import io
import json
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opsnb.errors import UsageError
from opsnb.paths import check_name, is_valid_name, notebooks_dir, printable

# "[lo..hi]" in a help comment: ASCII numbers, optional sign and decimals.
_RANGE = re.compile(r"\[\s*([+-]?[0-9]+(?:\.[0-9]+)?)\s*\.\.\s*([+-]?[0-9]+(?:\.[0-9]+)?)\s*\]")
_CELL_TYPES = {"code", "markdown", "raw"}
_JSON_TYPES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
}


class InvalidRunbook(UsageError):
    """A notebook that cannot serve as a runbook; ``reason`` says why in a few words."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"runbook '{name}' is not a valid runbook: {reason}")
        self.name = name
        self.reason = reason


@dataclass(frozen=True)
class Parameter:
    """One declared parameter of a runbook."""

    name: str
    type: str  # the annotation as written, e.g. "int", "list[str]", "str | None"
    default: Any
    help: str
    required: bool

    @property
    def declared_range(self) -> tuple[float, float] | None:
        """The ``[lo..hi]`` range its help comment declares, or None."""
        return parse_range(self.help)


@dataclass(frozen=True)
class Runbook:
    """A runbook notebook: its name, path, one-line purpose and parameters."""

    name: str
    path: Path
    purpose: str
    parameters: dict[str, Parameter]
    tags: tuple[str, ...] = ()  # groups for `opsnb run --all --tag`, from the notebook's metadata.opsnb.tags


def runbook_names() -> list[str]:
    """Names of the notebooks in the notebooks folder whose file name is a valid runbook name, sorted.

    Whether each one is a valid runbook is only known by loading it: see ``scan_runbooks``.
    """
    return sorted(p.stem for p in notebooks_dir().glob("*.ipynb") if is_valid_name(p.stem))


def scan_runbooks() -> tuple[list[Runbook], dict[str, str]]:
    """Every notebook in the notebooks folder: the valid runbooks, and name → reason for the others."""
    valid: list[Runbook] = []
    invalid: dict[str, str] = {}
    for path in sorted(notebooks_dir().glob("*.ipynb")):
        if not is_valid_name(path.stem):
            invalid[printable(path.stem)] = "file name is not a runbook name (lowercase letters, digits, '-')"
            continue
        try:
            valid.append(load_runbook(path.stem))
        except InvalidRunbook as exc:
            invalid[path.stem] = exc.reason
    return valid, invalid


def find_runbook(name: str) -> Path:
    """Path of the runbook called ``name``; a UsageError with a did-you-mean when there is none."""
    check_name(name, "runbook", runbook_names)
    path = notebooks_dir() / f"{name}.ipynb"
    if path.is_file():
        return path
    from opsnb.runner.suggest import did_you_mean

    names = runbook_names()
    raise UsageError(
        f"unknown runbook '{name}'{did_you_mean(name, names)}; runbooks: {', '.join(names) or 'none'}"
    )


def load_runbook(name: str) -> Runbook:
    """Parse the runbook notebook ``name`` (purpose and parameters); InvalidRunbook when it is not one."""
    path = find_runbook(name)
    nb = _notebook(name, path)
    cells = nb["cells"]
    parameters = _parameters(name, cells)
    return Runbook(
        name=name, path=path, purpose=_purpose(cells), parameters=parameters, tags=_tags(name, nb["metadata"])
    )


def _tags(name: str, metadata: dict) -> tuple[str, ...]:
    """The runbook's groups (``metadata.opsnb.tags``: a list of slugs, e.g. ["database", "nightly"])."""
    declared = metadata.get("opsnb", {})
    tags = declared.get("tags", []) if isinstance(declared, dict) else None
    if not isinstance(tags, list) or not all(isinstance(t, str) and is_valid_name(t) for t in tags):
        raise InvalidRunbook(name, "metadata.opsnb.tags must be a list of lowercase names")
    return tuple(tags)


def _notebook(name: str, path: Path) -> dict:
    """The notebook at ``path`` (a JSON object) after checking the shape execution relies on."""
    try:
        nb = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise InvalidRunbook(name, f"cannot read {path.name}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InvalidRunbook(name, f"{path.name} is not UTF-8 text") from None
    except ValueError as exc:  # json.JSONDecodeError
        raise InvalidRunbook(name, f"{path.name} is not JSON: {printable(str(exc))}") from None
    except RecursionError:
        raise InvalidRunbook(name, f"{path.name} is nested too deeply") from None
    if not isinstance(nb, dict):
        raise InvalidRunbook(name, f"the notebook is {_json_type(nb)}, expected an object")
    if nb.get("nbformat") != 4:
        raise InvalidRunbook(
            name, f"not an nbformat 4 notebook (nbformat: {printable(repr(nb.get('nbformat')))})"
        )
    if not isinstance(nb.get("metadata"), dict):
        raise InvalidRunbook(name, "notebook 'metadata' is missing or not an object")
    if "cells" not in nb:
        raise InvalidRunbook(name, "the notebook has no 'cells'")
    cells = nb["cells"]
    if not isinstance(cells, list):
        raise InvalidRunbook(name, f"'cells' is {_json_type(cells)}, expected an array")
    for number, cell in enumerate(cells, 1):
        problem = _cell_problem(cell)
        if problem:
            raise InvalidRunbook(name, f"cell {number}: {problem}")
    return nb


def _cell_problem(cell: Any) -> str | None:
    """What is wrong with one cell's shape, or None."""
    if not isinstance(cell, dict):
        return f"is {_json_type(cell)}, expected an object"
    if cell.get("cell_type") not in _CELL_TYPES:
        return f"cell_type {printable(repr(cell.get('cell_type')))} is not code, markdown or raw"
    source = cell.get("source", "")
    if not isinstance(source, str) and not (
        isinstance(source, list) and all(isinstance(s, str) for s in source)
    ):
        return "source must be a string or a list of strings"
    metadata = cell.get("metadata", {})
    if not isinstance(metadata, dict):
        return "metadata must be an object"
    tags = metadata.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        return "metadata.tags must be a list of strings"
    return None


def _json_type(value: Any) -> str:
    """'an array', 'a string', … for a parsed JSON value, in the words of JSON."""
    if value is None:
        return "null"
    return _JSON_TYPES.get(type(value), "a " + type(value).__name__)


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
    """Declarations of the one code cell tagged ``parameters``; InvalidRunbook without exactly one."""
    tagged = [
        cell
        for cell in cells
        if cell["cell_type"] == "code" and "parameters" in cell.get("metadata", {}).get("tags", [])
    ]
    if not tagged:
        raise InvalidRunbook(runbook, "no code cell is tagged 'parameters'")
    if len(tagged) > 1:
        # papermill injects after the first one; a second one would silently override the injected values
        raise InvalidRunbook(runbook, f"{len(tagged)} code cells are tagged 'parameters', expected one")
    params = parse_parameters_cell(_source(tagged[0]), runbook)
    for param in params.values():
        _check_range(runbook, param)
    return params


def _check_range(runbook: str, param: Parameter) -> None:
    """InvalidRunbook when ``param``'s declared range is upside down."""
    bounds = param.declared_range
    if bounds and bounds[0] > bounds[1]:
        raise InvalidRunbook(
            runbook, f"parameter '{param.name}' declares [{bounds[0]}..{bounds[1]}] with lo > hi"
        )


def parse_range(help_text: str) -> tuple[float, float] | None:
    """``(lo, hi)`` from the first ``[lo..hi]`` in ``help_text`` (ints stay ints), or None."""
    match = _RANGE.search(help_text or "")
    if not match:
        return None
    return _number(match.group(1)), _number(match.group(2))


def _number(text: str) -> float:
    return float(text) if "." in text else int(text)


def parse_parameters_cell(source: str, runbook: str = "?") -> dict[str, Parameter]:
    """Declared parameters of a parameters cell, in order of appearance."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError) as exc:  # ValueError: a NUL byte in the source
        raise InvalidRunbook(
            runbook, f"parameters cell is not valid Python: {getattr(exc, 'msg', exc)}"
        ) from None
    except RecursionError:
        raise InvalidRunbook(runbook, "parameters cell is nested too deeply") from None
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
    except (ValueError, TypeError, RecursionError):  # not a plain literal: keep its source text
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
