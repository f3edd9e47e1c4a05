"""Bad input: one line on stderr, exit 3, no traceback, nothing written."""

from __future__ import annotations

import pytest
from runner.workspace import Workspace


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
