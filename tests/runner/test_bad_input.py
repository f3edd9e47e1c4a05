"""Bad input: one line on stderr, exit 3, no traceback, nothing written."""

from __future__ import annotations

import time

import nbformat
import pytest
from runner.workspace import NOTEBOOKS, Workspace


def expect_usage_error(ws: Workspace, *args: str, says: str) -> None:
    result = ws.run(*args)
    assert result.returncode == 3, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("opsnb: error: ")
    assert says in lines[0], lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert ws.all_files() == [], "a rejected run must write nothing"


def test_unknown_runbook(workspace: Workspace) -> None:
    expect_usage_error(
        workspace,
        "run",
        "verdikt",
        "--env",
        "test",
        says="unknown runbook 'verdikt' (did you mean 'verdict'?)",
    )


def test_unknown_parameter_lists_valid_names(workspace: Workspace) -> None:
    expect_usage_error(
        workspace, "run", "verdict", "--env", "test", "-p", "sevrity=P1", says="did you mean 'severity'?"
    )
    expect_usage_error(
        workspace, "run", "verdict", "--env", "test", "-p", "nope=1", says="valid: severity, ticket, count"
    )


@pytest.mark.parametrize(
    "pair,says",
    [
        ("count=many", "'count' expects int, got 'many'"),
        ("ratio=x", "expects float"),
        ("verbose=maybe", "expects bool"),
    ],
)
def test_wrong_type(workspace: Workspace, pair: str, says: str) -> None:
    expect_usage_error(workspace, "run", "verdict", "--env", "test", "-p", pair, says=says)


def test_malformed_assignment(workspace: Workspace) -> None:
    expect_usage_error(
        workspace, "run", "verdict", "--env", "test", "-p", "count", says="-p expects name=value"
    )


def test_unknown_env(workspace: Workspace) -> None:
    expect_usage_error(workspace, "run", "verdict", "--env", "prod", says="unknown environment 'prod'")


def test_broken_yaml(workspace: Workspace) -> None:
    (workspace.root / "parameters" / "broken.yaml").write_text("defaults:\n  a: [1, 2\n  b: 3\n")
    expect_usage_error(workspace, "run", "verdict", "--env", "broken", says="broken YAML")


def test_unknown_parameter_in_runbook_block(workspace: Workspace) -> None:
    (workspace.root / "parameters" / "typo.yaml").write_text("runbooks:\n  verdict:\n    cuont: 3\n")
    expect_usage_error(workspace, "run", "verdict", "--env", "typo", says="unknown parameter 'cuont'")


def test_missing_env_file(workspace: Workspace) -> None:
    (workspace.root / "parameters" / "nofile.yaml").write_text("env_file: /nonexistent/x.env\n")
    expect_usage_error(
        workspace, "run", "verdict", "--env", "nofile", says="env file /nonexistent/x.env does not exist"
    )


def test_env_file_with_loose_permissions(workspace: Workspace) -> None:
    loose = workspace.root / "loose.env"
    loose.write_text("CANARY_TOKEN=x12345\n")
    loose.chmod(0o644)
    (workspace.root / "parameters" / "loose.yaml").write_text(f"env_file: {loose}\n")
    expect_usage_error(workspace, "run", "verdict", "--env", "loose", says="has mode 644")


def test_missing_secret_variable(workspace: Workspace) -> None:
    expect_usage_error(
        workspace,
        "run",
        "verdict",
        "--env",
        "test",
        "-p",
        "token_env=NOT_SET_ANYWHERE",
        says="$NOT_SET_ANYWHERE, which is not set",
    )


def test_unset_variable_in_yaml(workspace: Workspace) -> None:
    (workspace.root / "parameters" / "unset.yaml").write_text(
        "defaults:\n  ticket: ${OPSNB_TEST_UNSET_VAR}\n"
    )
    expect_usage_error(
        workspace, "run", "verdict", "--env", "unset", says="${OPSNB_TEST_UNSET_VAR} is not set"
    )


def test_bad_timeout_and_missing_runbook(workspace: Workspace) -> None:
    expect_usage_error(
        workspace, "run", "verdict", "--env", "test", "--timeout", "0", says="--timeout must be a positive"
    )
    expect_usage_error(workspace, "run", "--env", "test", says="give one RUNBOOK or --all")
    expect_usage_error(workspace, "run", "verdict", "--bogus", says="unrecognized arguments")


def test_list_and_show(workspace: Workspace) -> None:
    listed = workspace.run("list")
    assert listed.returncode == 0
    assert "verdict" in listed.stdout and "Fixture runbook 'verdict'." in listed.stdout
    shown = workspace.run("show", "verdict")
    assert shown.returncode == 0
    assert "count" in shown.stdout and "int" in shown.stdout and "how many times" in shown.stdout
    for args in (["--help"], ["run", "--help"], ["show", "--help"], ["list", "--help"]):
        assert workspace.run(*args).returncode == 0


def test_reader_leaving_early_is_not_a_traceback(workspace: Workspace) -> None:
    """`opsnb show … | head -c1`: the pipe closes under us; no traceback, no 'Exception ignored'."""
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "opsnb.cli", "show", "verdict"],
        env=workspace.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # the reader is gone before opsnb writes
    err = proc.stderr.read().decode()
    proc.wait(timeout=30)
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert proc.returncode == 141


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
runbooks:
  verdict:
    ticket: *i
"""

STRICT_PARAMS = """app_url: str  # required: no default
top_n: int = 10  # rows [1..1000]
urls: list[str] = []  # more URLs
"""

# Notebooks that are not runbooks, and the reason each one is refused for.
INVALID_NOTEBOOKS = {
    "empty-array": ("[]", "the notebook is an array, expected an object"),
    "cells-string": (
        '{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": "print(1)"}',
        "'cells' is a string, expected an array",
    ),
    "not-json": ("this is not { json", "not-json.ipynb is not JSON"),
    "no-parameters": (None, "no code cell is tagged 'parameters'"),
}


def add_notebook(ws: Workspace, name: str, params: str | None, tagged: bool = True) -> None:
    """A notebook ``name`` in the workspace with ``params`` as its (tagged or untagged) first code cell."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_markdown_cell(f"# {name}\nFixture runbook '{name}'."),
        nbformat.v4.new_code_cell(params, metadata={"tags": ["parameters"]} if tagged else {}),
        nbformat.v4.new_code_cell(
            "from opsnb.checks import findings\nfindings.conclude('pass', 'fine', check_id='fixture.fine')\nfindings.record()"
        ),
    ]
    nbformat.write(nb, ws.root / "notebooks" / f"{name}.ipynb")


def add_invalid_notebooks(ws: Workspace) -> None:
    for name, (content, _) in INVALID_NOTEBOOKS.items():
        if content is None:
            add_notebook(ws, name, "x = 1", tagged=False)
        else:
            (ws.root / "notebooks" / f"{name}.ipynb").write_text(content)


# --- names ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["../x/evil", "../../x/evil", "/tmp/evil", "x/../verdict", "Verdict", "verdict\n"]
)
def test_runbook_name_outside_the_notebooks_folder(workspace: Workspace, name: str) -> None:
    # A valid runbook sits at notebooks/../x/evil.ipynb: without the name check it would run.
    (workspace.root / "x").mkdir()
    add_notebook(workspace, "evil", STRICT_PARAMS)
    (workspace.root / "notebooks" / "evil.ipynb").rename(workspace.root / "x" / "evil.ipynb")
    expect_usage_error(
        workspace,
        "run",
        name,
        "--env",
        "test",
        says="runbooks: canary, error, interrupt, kernel-died, no-verdict, timeout, verdict",
    )
    expect_usage_error(workspace, "show", name, says="invalid runbook name")


@pytest.mark.parametrize("env", ["../x/y", "../../x/y", "/etc/passwd", "Test", "test.example", "te st"])
def test_env_name_outside_the_parameters_folder(workspace: Workspace, env: str) -> None:
    (workspace.root / "x").mkdir()
    (workspace.root / "x" / "y.yaml").write_text("defaults: {}\n")
    # A valid parameters file sits at parameters/../x/y.yaml: without the name check it would be read.
    expect_usage_error(workspace, "run", "verdict", "--env", env, says=f"invalid environment name '{env}'")
    expect_usage_error(workspace, "run", "verdict", "--env", env, says="; environments: test")


# --- parameters files and env files -----------------------------------------------------------------------


def test_parameters_file_not_utf8(workspace: Workspace) -> None:
    (workspace.root / "parameters" / "latin.yaml").write_bytes(b"defaults:\n  ticket: caf\xe9\n")
    expect_usage_error(
        workspace, "run", "verdict", "--env", "latin", says="latin.yaml line 2: not UTF-8 text"
    )


def test_env_file_not_utf8(workspace: Workspace) -> None:
    env_file = workspace.root / "latin.env"
    env_file.write_bytes(b"CANARY_TOKEN=caf\xe9\n")
    env_file.chmod(0o600)
    (workspace.root / "parameters" / "latin.yaml").write_text(f"env_file: {env_file}\n")
    expect_usage_error(
        workspace, "run", "verdict", "--env", "latin", says=f"env file {env_file} line 1: not UTF-8 text"
    )


def test_duplicate_key_in_parameters_file(workspace: Workspace) -> None:
    (workspace.root / "parameters" / "dup.yaml").write_text(
        "runbooks:\n  verdict:\n    count: 2\n    ticket: T-9\n    count: 3\n"
    )
    expect_usage_error(
        workspace,
        "run",
        "verdict",
        "--env",
        "dup",
        says="dup.yaml line 5: broken YAML: duplicate key 'count' (first on line 3)",
    )


def test_alias_bomb_fails_fast(workspace: Workspace) -> None:
    (workspace.root / "parameters" / "bomb.yaml").write_text(BILLION_LAUGHS)
    started = time.monotonic()
    expect_usage_error(workspace, "run", "verdict", "--env", "bomb", says="anchors and aliases")
    assert time.monotonic() - started < 3, "an alias bomb must be refused, not expanded"


@pytest.mark.parametrize(
    "text,says",
    [
        ("- verdict\n- count\n", "expected a mapping with env_file:/defaults:/runbooks:, got a list"),
        ("verdict\n", "got a single value"),
        ("defaults: &d {ticket: x}\nruntbooks: *d\n", "anchors and aliases"),
        ("defaults:\n  count: !!int 3\n", "explicit tags"),
    ],
)
def test_parameters_file_shape(workspace: Workspace, text: str, says: str) -> None:
    (workspace.root / "parameters" / "shape.yaml").write_text(text)
    expect_usage_error(workspace, "run", "verdict", "--env", "shape", says=says)


# --- notebooks that are not runbooks ------------------------------------------------------------------------


@pytest.mark.parametrize("name", INVALID_NOTEBOOKS)
def test_invalid_notebook_is_refused(workspace: Workspace, name: str) -> None:
    add_invalid_notebooks(workspace)
    reason = INVALID_NOTEBOOKS[name][1]
    expect_usage_error(
        workspace, "run", name, "--env", "test", says=f"runbook '{name}' is not a valid runbook: {reason}"
    )
    expect_usage_error(workspace, "show", name, says=reason)


def test_list_shows_invalid_notebooks_with_their_reason(workspace: Workspace) -> None:
    add_invalid_notebooks(workspace)
    listed = workspace.run("list")
    assert listed.returncode == 0, listed.stderr
    assert "Traceback" not in listed.stderr + listed.stdout
    lines = {line.split()[0]: line for line in listed.stdout.splitlines()}
    assert "Fixture runbook 'verdict'." in lines["verdict"]
    for name, (_, reason) in INVALID_NOTEBOOKS.items():
        assert f"(invalid: {reason}" in lines[name], lines[name]
    assert len(lines) == len(NOTEBOOKS) + len(INVALID_NOTEBOOKS)


def test_run_all_skips_invalid_notebooks_and_runs_the_rest(workspace: Workspace) -> None:
    for path in (workspace.root / "notebooks").glob("*.ipynb"):
        if path.stem != "verdict":  # keep the run short: one runbook that passes
            path.unlink()
    add_invalid_notebooks(workspace)
    result = workspace.run("run", "--all", "--env", "test", timeout=240)
    assert result.returncode == 0, (result.stdout, result.stderr)
    notes = [line for line in result.stderr.splitlines() if line.startswith("opsnb: skipping")]
    assert len(notes) == len(INVALID_NOTEBOOKS), result.stderr
    for name, (_, reason) in INVALID_NOTEBOOKS.items():
        assert any(n.startswith(f"opsnb: skipping '{name}': not a valid runbook: {reason}") for n in notes)
    assert "Traceback" not in result.stderr + result.stdout
    assert len(workspace.bundles("verdict")) == 1
    assert not any((workspace.outputs / name).exists() for name in INVALID_NOTEBOOKS)


def test_run_all_with_no_valid_runbook(workspace: Workspace) -> None:
    for path in (workspace.root / "notebooks").glob("*.ipynb"):
        path.unlink()
    (workspace.root / "notebooks" / "empty-array.ipynb").write_text("[]")
    result = workspace.run("run", "--all", "--env", "test")
    assert result.returncode == 3
    assert result.stderr.splitlines()[-1].startswith("opsnb: error: run --all: no valid runbook in ")
    assert workspace.all_files() == []


# --- parameter values --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pair,says",
    [
        ("ratio=nan", "parameter 'ratio' must be a finite number, got 'nan'"),
        ("ratio=inf", "must be a finite number"),
        ("ratio=1e999", "must be a finite number"),
        ("ratio=-0.5", "parameter 'ratio' must be within 0..1e+12, got -0.5"),
        ("count=١٠", "parameter 'count' expects int, got '١٠'"),
        ("count=10**30", "expects int, got '10**30'"),
        ("count=1_000", "expects int, got '1_000'"),
        ("count=-5", "parameter 'count' must be within 0..1000000000, got -5"),
        ("count=1000000001", "must be within 0..1000000000"),
        ("verbose=2", "expects bool (true/false, yes/no, on/off, 1/0), got '2'"),
        ("verbose=", "expects bool"),
        ("ticket=" + "x" * 4097, "parameter 'ticket' is too long: 4097 characters, at most 4096"),
        ("ticket=T-1\nrm -rf /", "parameter 'ticket' contains a control character (U+000A)"),
        ("ticket=T\x1b[31m1", "contains a control character (U+001B)"),
        ("ticket=T\x7f", "(U+007F)"),
        ("token_env=postgres://u:pw@db/shop", "parameter 'token_env' must name an environment variable"),
        ("seve\nrity=P1", "unknown parameter 'seve\\nrity'"),
    ],
)
def test_bad_values(workspace: Workspace, pair: str, says: str) -> None:
    expect_usage_error(workspace, "run", "verdict", "--env", "test", "-p", pair, says=says)


def test_declared_range_and_required_values(workspace: Workspace) -> None:
    add_notebook(workspace, "strict", STRICT_PARAMS)
    run = ("run", "strict", "--env", "test")
    expect_usage_error(
        workspace, *run, "-p", "app_url=http://x", "-p", "top_n=-5", says="must be within 1..1000, got -5"
    )
    expect_usage_error(
        workspace, *run, "-p", "app_url=http://x", "-p", "top_n=0", says="must be within 1..1000, got 0"
    )
    expect_usage_error(workspace, *run, "-p", "app_url=", says="needs a non-empty value for: app_url")
    expect_usage_error(workspace, *run, "-p", "app_url=  ", says="needs a non-empty value for: app_url")
    expect_usage_error(workspace, *run, says="needs a value for: app_url")
    expect_usage_error(
        workspace,
        *run,
        "-p",
        "app_url=http://x",
        "-p",
        "urls=" + ",".join(["u"] * 65),
        says="has 65 items, at most 64",
    )
    expect_usage_error(workspace, *run, "-p", "top_n=5", "-p", "top_n=6", says="-p top_n is given twice")


@pytest.mark.parametrize(
    "block,says",
    [
        ("urls: http://a, http://b", "parameter 'urls' expects list[str]: write a YAML list ([a, b])"),
        ("urls: {a: b}", "parameter 'urls' expects list[str], got a mapping"),
        ("urls: [a, [b, c]]", "item 2 is a list or mapping"),
        ("urls: [a, {b: c}]", "item 2 is a list or mapping"),
        ("top_n: -5", "parameter 'top_n' must be within 1..1000, got -5"),
        ("top_n: [5]", "parameter 'top_n' expects int, got"),
        ("app_url: ''", "needs a non-empty value for: app_url"),
        ('app_url: "http://x\\u0000y"', "contains a control character (U+0000)"),
    ],
)
def test_bad_values_in_parameters_file(workspace: Workspace, block: str, says: str) -> None:
    add_notebook(workspace, "strict", STRICT_PARAMS)
    (workspace.root / "parameters" / "vals.yaml").write_text(
        f"defaults:\n  app_url: http://x\nrunbooks:\n  strict:\n    {block}\n"
    )
    expect_usage_error(workspace, "run", "strict", "--env", "vals", says=says)
