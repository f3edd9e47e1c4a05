"""Turn raw parameter values (strings from -p, YAML scalars) into the types the notebook declares.

Values are never guessed: ``ticket=00123`` declared ``str`` stays ``"00123"``.
Parameters whose name ends in ``_env`` name an environment variable that holds a
secret; they are checked here (set or not) but their values never travel.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from opsnb.errors import ConfigError, UsageError
from opsnb.inspection import Parameter, Runbook
from opsnb.suggest import did_you_mean

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_NONE = {"none", "null", "~"}

SECRET_SUFFIX = "_env"


def _split_optional(type_name: str) -> tuple[str, bool]:
    """('int', True) for 'int | None' or 'Optional[int]'; ('list[str]', False) for 'list[str]'."""
    text = type_name.strip()
    if text.startswith("Optional[") and text.endswith("]"):
        return text[len("Optional[") : -1].strip(), True
    parts = [p.strip() for p in text.split("|")]
    base = [p for p in parts if p != "None"]
    return (base[0] if base else "str"), len(base) < len(parts)


def coerce(param: Parameter, raw: Any) -> Any:
    """``raw`` converted to ``param``'s declared type; UsageError naming the parameter otherwise."""
    base, optional = _split_optional(param.type)
    if raw is None or (optional and isinstance(raw, str) and raw.strip().lower() in _NONE):
        if optional:
            return None
        raise UsageError(f"parameter '{param.name}' expects {param.type}, got no value")
    try:
        return _coerce_to(base, raw)
    except (ValueError, TypeError):
        shown = raw if isinstance(raw, str) else repr(raw)
        raise UsageError(f"parameter '{param.name}' expects {param.type}, got '{shown}'") from None


def _coerce_to(base: str, raw: Any) -> Any:
    if base.startswith(("list[", "List[")) or base == "list":
        inner = base[base.index("[") + 1 : -1] if "[" in base else "str"
        items = raw if isinstance(raw, list) else [s.strip() for s in str(raw).split(",") if s.strip()]
        return [_coerce_to(inner, item) for item in items]
    if base.startswith(("dict", "Dict")):
        if not isinstance(raw, Mapping):
            raise TypeError("not a mapping")
        return {str(k): v for k, v in raw.items()}
    if isinstance(raw, (list, Mapping)):
        raise TypeError("not a scalar")
    text = str(raw).strip() if base != "str" else str(raw)
    if base == "str":
        return text
    if base == "bool":
        low = text.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueError(text)
    if base == "int":
        return int(text)
    if base == "float":
        return float(text)
    raise TypeError(f"unsupported type {base}")


def parse_cli_assignments(pairs: list[str]) -> dict[str, str]:
    """``["a=1", "b=x=y"]`` → ``{"a": "1", "b": "x=y"}``; UsageError on a pair without '='."""
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"-p expects name=value, got '{pair}'")
        out[name.strip()] = value
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
                    f"unknown parameter '{name}' for runbook '{runbook.name}' ({source})"
                    f"{did_you_mean(name, declared)}; valid: {valid}"
                )
    merged: dict[str, Any] = {}
    for layer in (defaults, runbook_block, cli):
        for name, raw in layer.items():
            if name in declared:
                merged[name] = coerce(declared[name], raw)
    missing = [p.name for p in declared.values() if p.required and merged.get(p.name) is None]
    if missing:
        raise UsageError(
            f"runbook '{runbook.name}' needs a value for: {', '.join(missing)} (use -p name=value)"
        )
    return merged


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
