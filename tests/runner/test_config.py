"""Environments: YAML read as strings (strictly), ${VAR} expansion, env files refused when loose or not UTF-8."""

from __future__ import annotations

import re
import time

import pytest

from opsnb.errors import ConfigError, UsageError
from opsnb.runner.config import (
    MAX_PARAMETERS_FILE_BYTES,
    environment_names,
    expand,
    load_environment,
    read_env_file,
)


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


BILLION_LAUGHS = """\
defaults:
  a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
  b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
  c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
  d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
  e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
  f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
  g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
  h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
  i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


@pytest.fixture
def params_dir(tmp_path, monkeypatch):
    """An empty parameters folder that load_environment reads."""
    monkeypatch.setenv("OPSNB_PARAMETERS", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize(
    "name", ["../x", "../../etc/passwd", "/abs", "a/b", "Prod", "-x", "a.b", "", "a" * 65]
)
def test_environment_name_must_be_a_slug(params_dir, name) -> None:
    (params_dir / "good.yaml").write_text("defaults: {}\n")
    with pytest.raises(UsageError, match=r"invalid environment name .*; environments: good$"):
        load_environment(name)


def test_environment_names_skip_non_names(params_dir) -> None:
    for stem in ("sandbox", "production.example", "Bad Name"):
        (params_dir / f"{stem}.yaml").write_text("defaults: {}\n")
    assert environment_names() == ["sandbox"]


def test_parameters_file_not_utf8(params_dir) -> None:
    (params_dir / "latin.yaml").write_bytes("defaults:\n  ticket: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"^latin\.yaml line 2: not UTF-8 text"):
        load_environment("latin")


def test_env_file_not_utf8(tmp_path) -> None:
    path = tmp_path / "e.env"
    path.write_bytes(b"A=1\nB=\xff\xfe\n")
    path.chmod(0o600)
    with pytest.raises(ConfigError, match=rf"env file {path} line 2: not UTF-8 text"):
        read_env_file(path)


def test_env_file_that_is_a_folder(tmp_path) -> None:
    folder = tmp_path / "d.env"
    folder.mkdir(mode=0o700)
    with pytest.raises(ConfigError, match="cannot read env file"):
        read_env_file(folder)


def test_duplicate_key_named_with_its_line(params_dir) -> None:
    (params_dir / "dup.yaml").write_text("defaults:\n  ticket: a\n  count: 1\n  ticket: b\n")
    with pytest.raises(ConfigError, match=r"dup\.yaml line 4: .*duplicate key 'ticket' \(first on line 2\)"):
        load_environment("dup")


def test_duplicate_top_level_block(params_dir) -> None:
    (params_dir / "dup.yaml").write_text("runbooks: {}\ndefaults: {}\nruntbooks: {}\nruntbooks: {}\n")
    with pytest.raises(ConfigError, match="duplicate key 'runtbooks'"):
        load_environment("dup")


@pytest.mark.parametrize(
    "text",
    ["defaults:\n  a: &x 1\n  b: 2\n", "defaults: &d {a: 1}\nrunbooks: {rb: *d}\n", "defaults: {<<: *m}\n"],
)
def test_anchors_and_aliases_refused(params_dir, text) -> None:
    (params_dir / "alias.yaml").write_text(text)
    with pytest.raises(ConfigError, match="anchors and aliases"):
        load_environment("alias")


def test_alias_bomb_fails_fast(params_dir) -> None:
    (params_dir / "bomb.yaml").write_text(BILLION_LAUGHS)
    started = time.monotonic()
    with pytest.raises(ConfigError, match="line 2: broken YAML: anchors and aliases"):
        load_environment("bomb")
    assert time.monotonic() - started < 1


def test_explicit_tags_refused(params_dir) -> None:
    (params_dir / "tag.yaml").write_text("defaults:\n  count: !!int 5\n")
    with pytest.raises(ConfigError, match="explicit tags"):
        load_environment("tag")
    (params_dir / "tag.yaml").write_text("defaults:\n  x: !!python/object/apply:os.system [id]\n")
    with pytest.raises(ConfigError, match="explicit tags"):
        load_environment("tag")


def test_scalars_stay_strings(params_dir) -> None:
    (params_dir / "s.yaml").write_text("defaults:\n  a: 00123\n  b: no\n  c: 1.10\n  d: [1, on]\n  e: ~\n")
    assert load_environment("s").defaults == {
        "a": "00123",
        "b": "no",
        "c": "1.10",
        "d": ["1", "on"],
        "e": "~",
    }


@pytest.mark.parametrize(
    "text,says",
    [
        ("- defaults\n- runbooks\n", "expected a mapping with env_file:/defaults:/runbooks:, got a list"),
        ("just text\n", "got a single value"),
        ("defaults: [a, b]\n", "defaults must be a mapping"),
        ("runbooks: {rb: [1]}\n", "runbooks.rb must be a mapping"),
        ("env_file: [a, b]\n", "env_file must be a path"),
        ("defaults: " + "[" * 5000 + "]" * 5000 + "\n", "broken YAML"),
    ],
)
def test_wrong_shapes(params_dir, text, says) -> None:
    (params_dir / "shape.yaml").write_text(text)
    with pytest.raises(ConfigError, match=re.escape(says)):
        load_environment("shape")


def test_empty_parameters_file_is_an_empty_environment(params_dir) -> None:
    (params_dir / "empty.yaml").write_text("# nothing yet\n")
    env = load_environment("empty")
    assert (env.defaults, env.runbooks, env.env_file) == ({}, {}, None)


def test_oversized_parameters_file(params_dir) -> None:
    (params_dir / "big.yaml").write_text("# " + "x" * (MAX_PARAMETERS_FILE_BYTES + 1) + "\n")
    with pytest.raises(ConfigError, match="big.yaml: larger than"):
        load_environment("big")
