"""The committed parameter files (sandbox and the production/staging examples) fit the runbooks' declarations."""

from __future__ import annotations

import pytest
import yaml

from opsnb.paths import parameters_dir
from opsnb.runner.inspection import load_runbook, runbook_names

FILES = sorted(parameters_dir().glob("*.yaml"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_parameter_file_matches_notebooks(path) -> None:
    data = yaml.load(path.read_text(), Loader=yaml.BaseLoader)
    runbooks = {name: load_runbook(name) for name in runbook_names()}
    assert set(data["runbooks"]) == set(runbooks), "one block per runbook"
    for name, block in data["runbooks"].items():
        unknown = set(block or {}) - set(runbooks[name].parameters)
        assert not unknown, f"{path.name}: runbooks.{name} sets undeclared {sorted(unknown)}"
    declared = set().union(*(rb.parameters for rb in runbooks.values()))
    assert not set(data["defaults"]) - declared, "defaults no runbook declares"
    for key, value in data["defaults"].items():
        if key.endswith("_env"):
            assert value == "" or value.isidentifier(), (
                f"{key} must name an environment variable, not hold a value"
            )
