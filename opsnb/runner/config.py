"""Environments: ``parameters/<env>.yaml`` and the secrets file it names.

Layout of a parameters file::

    env_file: .sandbox/sandbox.env      # optional dotenv file with secrets, mode 0600 or stricter
    defaults: {app_url: ..., database_url_env: DATABASE_URL}
    runbooks:
      slow-queries: {min_mean_ms: "50"}

YAML is read with every scalar as a string so that the notebook's declared
type alone decides what a value becomes. String values may use ``${VAR}`` and
``${VAR:-fallback}``, expanded from the process environment, then the env file.
The file must be UTF-8; duplicate keys, anchors/aliases and explicit tags are
refused (see ``StrictLoader``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from opsnb.envfile import read_env_file, read_utf8  # noqa: F401 - read_env_file is part of the config API
from opsnb.errors import ConfigError, UsageError
from opsnb.paths import check_name, is_valid_name, parameters_dir, printable, project_root
from opsnb.runner.suggest import did_you_mean

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

# A parameters file is a few kilobytes; anything this large is a mistake, not configuration.
MAX_PARAMETERS_FILE_BYTES = 1 << 20

# The only node tags a parameters file may produce: plain strings, lists and mappings.
_PLAIN_TAGS = {"tag:yaml.org,2002:str", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"}


class StrictLoader(yaml.SafeLoader):
    """A SafeLoader for parameters files: strings only, no anchors/aliases, no duplicate keys.

    - No implicit resolvers: ``00123`` stays the string "00123" and ``no`` stays "no",
      because the notebook's declared type decides what a value becomes.
    - Anchors and aliases are refused as soon as the parser meets one, so an alias
      bomb ("billion laughs") fails at its first anchor instead of expanding.
    - A key given twice in one mapping is refused with its line (YAML would keep the last).
    """

    yaml_implicit_resolvers: dict = {}

    def compose_node(self, parent, index):
        """Compose one node, refusing anchors, aliases and explicit tags such as ``!!int``."""
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise yaml.composer.ComposerError(
                None, None, "anchors and aliases (&name, *name) are not allowed", event.start_mark
            )
        node = super().compose_node(parent, index)
        if node.tag not in _PLAIN_TAGS:
            raise yaml.composer.ComposerError(
                None, None, f"explicit tags ({printable(node.tag)}) are not allowed", node.start_mark
            )
        return node

    def construct_mapping(self, node, deep=False):
        """The mapping of ``node``; refuses a key given twice."""
        seen: dict[str, int] = {}
        for key_node, _ in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key is None:
                raise yaml.constructor.ConstructorError(
                    None, None, "keys must be plain strings", key_node.start_mark
                )
            line = key_node.start_mark.line + 1
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key '{printable(key)}' (first on line {seen[key]})",
                    key_node.start_mark,
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


@dataclass
class Environment:
    """A loaded environment: its name, parameter layers and secrets from its env file."""

    name: str
    path: Path
    defaults: dict[str, Any] = field(default_factory=dict)
    runbooks: dict[str, dict[str, Any]] = field(default_factory=dict)
    env_file: Path | None = None
    secrets: dict[str, str] = field(default_factory=dict)

    def runbook_block(self, runbook: str) -> dict[str, Any]:
        """The ``runbooks: <runbook>:`` block, empty when absent."""
        return self.runbooks.get(runbook) or {}


def environment_names() -> list[str]:
    """Environments that have a parameters file (``*.example.yaml`` and other non-names excluded)."""
    return sorted(p.stem for p in parameters_dir().glob("*.yaml") if is_valid_name(p.stem))


def load_environment(name: str) -> Environment:
    """Read, check and expand ``parameters/<name>.yaml`` and its env file."""
    check_name(name, "environment", environment_names)
    path = parameters_dir() / f"{name}.yaml"
    if not path.is_file():
        names = environment_names()
        raise UsageError(
            f"unknown environment '{name}'{did_you_mean(name, names)}; environments: {', '.join(names) or 'none'}"
        )
    data = load_parameters_yaml(path)
    unknown = set(data) - {"env_file", "defaults", "runbooks"}
    if unknown:
        bad = sorted(unknown)[0]
        raise ConfigError(
            f"{path.name}: unknown key '{bad}'{did_you_mean(bad, ['env_file', 'defaults', 'runbooks'])}; valid: env_file, defaults, runbooks"
        )
    env = Environment(name=name, path=path)
    if data.get("env_file"):
        if not isinstance(data["env_file"], str):
            raise ConfigError(f"{path.name}: env_file must be a path, not a list or mapping")
        env.env_file = _resolve_path(expand(data["env_file"], {}, path.name))
        try:
            env.secrets = read_env_file(env.env_file)
        except ConfigError as exc:
            if name == "sandbox" and not env.env_file.exists():
                raise ConfigError(f"{exc} — is the sandbox up? (opsnb sandbox up)") from None
            raise
    env.defaults = _mapping(data.get("defaults"), f"{path.name}: defaults")
    runbooks = _mapping(data.get("runbooks"), f"{path.name}: runbooks")
    env.runbooks = {rb: _mapping(block, f"{path.name}: runbooks.{rb}") for rb, block in runbooks.items()}
    env.defaults = expand(env.defaults, env.secrets, path.name)
    env.runbooks = expand(env.runbooks, env.secrets, path.name)
    return env


def load_parameters_yaml(path: Path) -> dict[str, Any]:
    """The top-level mapping of a parameters file read with ``StrictLoader``; ConfigError naming the file."""
    text = read_utf8(path, path.name, MAX_PARAMETERS_FILE_BYTES)
    try:
        data = yaml.load(text, Loader=StrictLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path.name}{where}: broken YAML: {problem}") from None
    except RecursionError:
        raise ConfigError(f"{path.name}: broken YAML: nested too deeply") from None
    if data in (None, ""):
        return {}
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else "a single value"
        raise ConfigError(f"{path.name}: expected a mapping with env_file:/defaults:/runbooks:, got {kind}")
    return data


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value in (None, "", {}):
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a mapping")
    return dict(value)


def _resolve_path(text: str) -> Path:
    path = Path(text).expanduser()
    return path if path.is_absolute() else project_root() / path


def expand(value: Any, extra: Mapping[str, str], where: str) -> Any:
    """``value`` with ``${VAR}`` / ``${VAR:-fallback}`` replaced in every string."""
    if isinstance(value, dict):
        return {k: expand(v, extra, where) for k, v in value.items()}
    if isinstance(value, list):
        return [expand(v, extra, where) for v in value]
    if not isinstance(value, str):
        return value

    def sub(match: re.Match) -> str:
        var, fallback = match.group(1), match.group(2)
        found = os.environ.get(var) or extra.get(var)
        if found:
            return found
        if fallback is not None:
            return fallback
        raise ConfigError(f"{where}: ${{{var}}} is not set in the environment nor in the env file")

    return _VAR.sub(sub, value)
