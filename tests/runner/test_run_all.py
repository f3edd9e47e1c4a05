"""`opsnb run --all`: runs what the environment configures, names the rest, and selects groups by tag."""

from __future__ import annotations

import nbformat
from runner.workspace import NOTEBOOKS, Workspace, make_notebook


def _only(workspace: Workspace, keep: dict[str, tuple[list[str], str, list[str]]]) -> None:
    """Replace the fixture notebooks by ``keep``: name → (cells, extra parameters, tags)."""
    folder = workspace.root / "notebooks"
    for path in folder.glob("*.ipynb"):
        path.unlink()
    for name, (cells, extra, tags) in keep.items():
        nb = make_notebook(f"Fixture '{name}'.", cells, extra)
        if tags:
            nb.metadata["opsnb"] = {"tags": tags}
        nbformat.write(nb, folder / f"{name}.ipynb")


def test_run_all_runs_what_is_configured_and_names_the_rest(workspace: Workspace) -> None:
    _only(
        workspace,
        {
            "verdict": (NOTEBOOKS["verdict"], "", ["database"]),
            "needs-url": (NOTEBOOKS["verdict"], "app_url: str  # required, not in test.yaml\n", ["web"]),
        },
    )
    result = workspace.run("run", "--all", "--env", "test")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASS" in result.stdout and "verdict [test]" in result.stdout
    assert "not configured for test: needs-url" in result.stderr and "app_url" in result.stderr
    assert len(workspace.bundles("verdict")) == 1 and not (workspace.outputs / "needs-url").exists()


def test_run_all_by_tag(workspace: Workspace) -> None:
    _only(
        workspace,
        {
            "verdict": (NOTEBOOKS["verdict"], "", ["database"]),
            "other": (NOTEBOOKS["verdict"], "", ["web"]),
        },
    )
    result = workspace.run("run", "--all", "--tag", "web", "--env", "test")
    assert result.returncode == 0, result.stderr
    assert [line.split()[1] for line in result.stdout.splitlines() if line.startswith("PASS")] == ["other"]
    listed = workspace.run("list").stdout
    assert "[database]" in listed and "[web]" in listed
    unknown = workspace.run("run", "--all", "--tag", "nope", "--env", "test")
    assert unknown.returncode == 3 and "tags: database, web" in unknown.stderr


def test_run_all_with_nothing_configured_is_a_usage_error(workspace: Workspace) -> None:
    _only(workspace, {"needs-url": (NOTEBOOKS["verdict"], "app_url: str  # required\n", [])})
    result = workspace.run("run", "--all", "--env", "test")
    assert result.returncode == 3 and "no runbook is configured" in result.stderr
    assert not workspace.outputs.exists() or not list(workspace.outputs.rglob("*.json"))


def test_run_all_with_an_unknown_environment_stops(workspace: Workspace) -> None:
    result = workspace.run("run", "--all", "--env", "nowhere")
    assert result.returncode == 3 and "nowhere" in result.stderr
