"""Environments: YAML read as strings, ${VAR} expansion, env files refused when loose."""

from __future__ import annotations

import pytest

from opsnb.config import expand, load_environment, read_env_file
from opsnb.errors import ConfigError


def test_environment_loaded_and_expanded(tmp_path, monkeypatch) -> None:
    env_file = tmp_path / "s.env"
    env_file.write_text("# comment\nexport APP=http://127.0.0.1:8000\nTOKEN='abc def'\n")
    env_file.chmod(0o600)
    (tmp_path / "x.yaml").write_text(
        f"env_file: {env_file}\ndefaults:\n  app_url: ${{APP}}/shop\n  n: 007\n  fallback: ${{NOPE_NOT_SET:-dflt}}\n"
        "runbooks:\n  rb:\n    n: 1\n"
    )
    monkeypatch.setenv("OPSNB_PARAMETERS", str(tmp_path))
    env = load_environment("x")
    assert env.secrets == {"APP": "http://127.0.0.1:8000", "TOKEN": "abc def"}
    assert env.defaults == {"app_url": "http://127.0.0.1:8000/shop", "n": "007", "fallback": "dflt"}
    assert env.runbook_block("rb") == {"n": "1"}
    assert env.runbook_block("other") == {}


def test_env_file_mode_and_syntax(tmp_path) -> None:
    path = tmp_path / "e.env"
    path.write_text("A=1\n")
    path.chmod(0o640)
    with pytest.raises(ConfigError, match="mode 640"):
        read_env_file(path)
    path.chmod(0o600)
    path.write_text("not a pair\n")
    with pytest.raises(ConfigError, match="line 1: expected KEY=VALUE"):
        read_env_file(path)


def test_unknown_top_level_key(tmp_path, monkeypatch) -> None:
    (tmp_path / "y.yaml").write_text("defualts: {}\n")
    monkeypatch.setenv("OPSNB_PARAMETERS", str(tmp_path))
    with pytest.raises(ConfigError, match="did you mean 'defaults'"):
        load_environment("y")


def test_expand_nested() -> None:
    assert expand({"a": ["${X}", 1]}, {"X": "v"}, "f") == {"a": ["v", 1]}
    with pytest.raises(ConfigError):
        expand("${SURELY_NOT_SET_42}", {}, "f")
