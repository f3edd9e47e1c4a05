"""Turn raw parameter values (strings from -p, YAML scalars) into the types the notebook declares.

Values are never guessed: ``ticket=00123`` declared ``str`` stays ``"00123"``.
Parameters whose name ends in ``_env`` name an environment variable that holds a
secret; they are checked here (set or not) but their values never travel.

What a value may be:

- ``int``: ASCII digits with an optional sign (no ``1_000``, ``10**30``, other scripts' digits);
  ``float``: a plain decimal or exponent number, finite (no ``nan``/``inf``).
  Both must lie in the range the help comment declares (``[lo..hi]``), else in
  0..10^9 (int) or 0..10^12 (float): negative values only where a range allows them.
- ``bool``: true/false, yes/no, on/off, 1/0 (any case).
- ``list[...]``: on the command line items separated by commas (``-p urls=a,b``);
  in a parameters file a YAML list (``[a, b]``), never a single value or a mapping;
  at most 64 items, each a single value.
- every text: at most 4096 characters, no control characters (C0, DEL, C1).
- a required parameter (declared without a default) must be given and not empty.
"""

from __future__ import annotations

import math
import os
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from opsnb.errors import ConfigError, UsageError
from opsnb.paths import printable
from opsnb.runner.inspection import Parameter, Runbook
from opsnb.runner.suggest import did_you_mean

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_NONE = {"none", "null", "~"}

SECRET_SUFFIX = "_env"

MAX_TEXT_LENGTH = 4096
MAX_LIST_ITEMS = 64
DEFAULT_INT_RANGE = (0, 10**9)
DEFAULT_FLOAT_RANGE = (0.0, 1e12)

_INT_TEXT = re.compile(r"[+-]?[0-9]+")
_FLOAT_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class _Refused(ValueError):
    """A value of the right kind that breaks a rule; its message completes "parameter 'x' …"."""


def _split_optional(type_name: str) -> tuple[str, bool]:
    """('int', True) for 'int | None' or 'Optional[int]'; ('list[str]', False) for 'list[str]'."""
    text = type_name.strip()
    if text.startswith("Optional[") and text.endswith("]"):
        return text[len("Optional[") : -1].strip(), True
    parts = [p.strip() for p in text.split("|")]
    base = [p for p in parts if p != "None"]
    return (base[0] if base else "str"), len(base) < len(parts)


def coerce(param: Parameter, raw: Any, from_file: bool = False) -> Any:
    """``raw`` converted to ``param``'s declared type; UsageError naming the parameter otherwise.

    ``from_file``: ``raw`` comes from a parameters file, where a list must be a YAML list
    (on the command line a comma-separated string is the list syntax).
    """
    base, optional = _split_optional(param.type)
    if raw is None or (optional and isinstance(raw, str) and raw.strip().lower() in _NONE):
        if optional:
            return None
        raise UsageError(f"parameter '{param.name}' expects {param.type}, got no value")
    try:
        value = _coerce_to(base, raw, param.declared_range, from_file)
        if param.name.endswith(SECRET_SUFFIX) and isinstance(value, str):
            _check_env_name(value)
        return value
    except _Refused as exc:
        raise UsageError(f"parameter '{param.name}' {exc}") from None
    except (ValueError, TypeError):
        raise UsageError(f"parameter '{param.name}' expects {param.type}, got '{_shown(raw)}'") from None


def _shown(raw: Any) -> str:
    """``raw`` as it appears in a one-line message."""
    return printable(raw if isinstance(raw, str) else repr(raw))


def _is_list_type(base: str) -> bool:
    return base.startswith(("list[", "List[")) or base == "list"


def _coerce_to(base: str, raw: Any, bounds: tuple[float, float] | None, from_file: bool) -> Any:
    """``raw`` as a ``base`` value (no Optional); ValueError/TypeError when it is not one, _Refused on a rule."""
    if _is_list_type(base):
        return _coerce_list(base, raw, bounds, from_file)
    if base.startswith(("dict", "Dict")):
        if not isinstance(raw, Mapping):
            raise TypeError("not a mapping")
        _check_size(raw)
        return {str(k): v for k, v in raw.items()}
    if isinstance(raw, (list, Mapping)):
        raise TypeError("not a scalar")
    text = str(raw)
    _check_text(text)
    if base == "str":
        return text
    text = text.strip()
    if base == "bool":
        low = text.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise _Refused(f"expects bool (true/false, yes/no, on/off, 1/0), got '{printable(text)}'")
    if base == "int":
        if not _INT_TEXT.fullmatch(text):  # int() alone would take '1_000', ' ١٠ ' and other scripts' digits
            raise ValueError(text)
        return _within(int(text), bounds or DEFAULT_INT_RANGE)
    if base == "float":
        if not _FLOAT_TEXT.fullmatch(text):  # float() alone would take 'nan', 'inf', '1_0'
            if text.lower().lstrip("+-") in {"nan", "inf", "infinity"}:
                raise _Refused(f"must be a finite number, got '{text}'")
            raise ValueError(text)
        number = float(text)
        if not math.isfinite(number):
            raise _Refused(f"must be a finite number, got '{printable(text)}'")
        return _within(number, bounds or DEFAULT_FLOAT_RANGE)
    raise TypeError(f"unsupported type {base}")


def _coerce_list(base: str, raw: Any, bounds: tuple[float, float] | None, from_file: bool) -> list:
    """Items of a list parameter, each coerced to the declared item type."""
    inner = base[base.index("[") + 1 : -1] if "[" in base else "str"
    if isinstance(raw, Mapping):
        raise _Refused(f"expects {base}, got a mapping")
    if isinstance(raw, list):
        items = raw
    elif from_file:
        # In YAML "a, b" is one string; splitting it would guess, so ask for a real list.
        raise _Refused(f"expects {base}: write a YAML list ([a, b]), got the single value '{_shown(raw)}'")
    else:
        items = [s.strip() for s in str(raw).split(",") if s.strip()]
    if len(items) > MAX_LIST_ITEMS:
        raise _Refused(f"has {len(items)} items, at most {MAX_LIST_ITEMS}")
    for number, item in enumerate(items, 1):
        if isinstance(item, (list, Mapping)):
            raise _Refused(f"expects {base}: item {number} is a list or mapping, items must be single values")
    return [_coerce_to(inner, item, bounds, from_file) for item in items]


def _within(number: float, bounds: tuple[float, float]) -> float:
    """``number`` when ``lo <= number <= hi``; _Refused otherwise."""
    lo, hi = bounds
    if not lo <= number <= hi:
        raise _Refused(f"must be within {_plain(lo)}..{_plain(hi)}, got {_plain(number)}")
    return number


def _plain(number: float) -> str:
    """A number as a person writes it: 10, 0.5, 1e+12."""
    return str(number) if isinstance(number, int) else f"{number:g}"


def _check_text(text: str) -> None:
    """_Refused when ``text`` is too long or holds a control character."""
    if len(text) > MAX_TEXT_LENGTH:
        raise _Refused(f"is too long: {len(text)} characters, at most {MAX_TEXT_LENGTH}")
    for char in text:
        # Cc covers C0 (NUL, newline, tab, ESC…), DEL and C1: none belongs in a one-line value.
        if unicodedata.category(char) == "Cc":
            raise _Refused(f"contains a control character (U+{ord(char):04X}), which is not allowed")


def _check_size(value: Any) -> None:
    """_Refused when a nested value (dict parameter) holds too many items or a bad text anywhere."""
    if isinstance(value, Mapping):
        items = list(value.keys()) + list(value.values())
    elif isinstance(value, list):
        items = value
    else:
        _check_text(str(value))
        return
    if len(value) > MAX_LIST_ITEMS:
        raise _Refused(f"has {len(value)} items, at most {MAX_LIST_ITEMS}")
    for item in items:
        _check_size(item)


def _check_env_name(value: str) -> None:
    """_Refused unless ``value`` is empty or a plain environment variable name."""
    if value and not _ENV_NAME.fullmatch(value):
        raise _Refused(
            f"must name an environment variable (letters, digits, '_'), got '{printable(value)}'"
            " — the secret itself never goes in a parameter"
        )


def parse_cli_assignments(pairs: list[str]) -> dict[str, str]:
    """``["a=1", "b=x=y"]`` → ``{"a": "1", "b": "x=y"}``; UsageError on a pair without '=' or a name given twice."""
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UsageError(f"-p expects name=value, got '{printable(pair)}'")
        if name in out:
            # Two values for one name is a typo or a copy-paste slip; taking the last would hide it.
            raise UsageError(f"-p {printable(name)} is given twice")
        out[name] = value
    return out


def resolve_parameters(
    runbook: Runbook,
    defaults: Mapping[str, Any],
    runbook_block: Mapping[str, Any],
    cli: Mapping[str, Any],
) -> dict[str, Any]:
    """Merged, typed parameters: defaults < runbook block < command line.

    ``defaults`` are shared by every runbook, so names a runbook does not declare
    are ignored there; in the runbook block and on the command line they are errors.
    """
    declared = runbook.parameters
    for source, values in (("parameters file", runbook_block), ("command line", cli)):
        for name in values:
            if name not in declared:
                valid = ", ".join(declared) or "none"
                raise UsageError(
                    f"unknown parameter '{printable(name)}' for runbook '{runbook.name}' ({source})"
                    f"{did_you_mean(name, declared)}; valid: {valid}"
                )
    merged: dict[str, Any] = {}
    for layer, from_file in ((defaults, True), (runbook_block, True), (cli, False)):
        for name, raw in layer.items():
            if name in declared:
                merged[name] = coerce(declared[name], raw, from_file=from_file)
    missing = [p.name for p in declared.values() if p.required and merged.get(p.name) is None]
    if missing:
        raise UsageError(
            f"runbook '{runbook.name}' needs a value for: {', '.join(missing)} (use -p name=value)"
        )
    empty = [p.name for p in declared.values() if p.required and _is_empty(merged[p.name])]
    if empty:
        raise UsageError(
            f"runbook '{runbook.name}' needs a non-empty value for: {', '.join(empty)} (it has no default)"
        )
    return merged


def _is_empty(value: Any) -> bool:
    """True for '', blanks and empty lists or mappings: no value for a required parameter."""
    if isinstance(value, str):
        return not value.strip()
    return isinstance(value, (list, Mapping)) and not value


def secret_references(runbook: Runbook, params: Mapping[str, Any]) -> dict[str, str]:
    """Parameter name → environment variable name, for every ``*_env`` parameter in use."""
    refs: dict[str, str] = {}
    for name, param in runbook.parameters.items():
        if not name.endswith(SECRET_SUFFIX):
            continue
        value = params.get(name, param.default)
        if isinstance(value, str) and value:
            refs[name] = value
    return refs


def check_secret_references(refs: Mapping[str, str], env: Mapping[str, str], env_file: str | None) -> None:
    """ConfigError naming the first variable that a ``*_env`` parameter names but that is unset."""
    for param, var in refs.items():
        if not env.get(var) and not os.environ.get(var):
            where = f"the environment or {env_file}" if env_file else "the environment"
            raise ConfigError(f"parameter '{param}' names ${var}, which is not set in {where}")
