"""The fault registry: every fault says what it plants and which runbook finds it; unknown names are refused
with the list of registered ones (no sandbox needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsnb.sandbox import cli, faults, manager

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


@pytest.fixture(autouse=True)
def empty_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSNB_SANDBOX_DIR", str(tmp_path / "nothing-here"))


@pytest.mark.parametrize("fault", faults.REGISTRY.values(), ids=lambda f: f.name)
def test_fault_is_described_and_demonstrated(fault: faults.Fault) -> None:
    assert faults.REGISTRY[fault.name] is fault
    assert fault.plants.strip() and "\n" not in fault.plants
    assert (NOTEBOOKS / f"{fault.runbook}.ipynb").is_file(), f"{fault.name}: no notebook {fault.runbook}"
    assert callable(fault.set_on) and callable(fault.set_off)
    assert fault in faults.for_runbook(fault.runbook)


def test_names_follow_the_registry() -> None:
    assert manager.FAULTS == tuple(faults.REGISTRY)
    assert manager.parse_faults("all") == dict.fromkeys(faults.REGISTRY, True)


def _lists_every_fault(text: str) -> bool:
    return all(name in text for name in faults.REGISTRY)


def test_unknown_name_is_refused_with_the_list() -> None:
    with pytest.raises(manager.UsageError) as exc:
        faults.get("leaked-keys")
    assert "unknown fault 'leaked-keys'" in str(exc.value) and _lists_every_fault(str(exc.value))
    with pytest.raises(manager.UsageError) as exc:  # refused before looking for a sandbox
        manager.set_fault("leaked-keys", True)
    assert _lists_every_fault(str(exc.value)) and "not up" not in str(exc.value)
    with pytest.raises(manager.UsageError) as exc:
        manager.parse_faults("500-burst,leaked-keys")
    assert "unknown fault leaked-keys" in str(exc.value) and _lists_every_fault(str(exc.value))


def test_cli_refuses_unknown_name_with_the_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["fault", "leaked-keys", "on"]) == 3
    err = capsys.readouterr().err
    assert "leaked-keys" in err and _lists_every_fault(err)
    assert cli.main(["fault", "--help"]) == 0
    out = capsys.readouterr().out
    assert all(f.plants in out and f.runbook in out for f in faults.REGISTRY.values())


def test_planted_note_names_each_fault_of_a_runbook() -> None:
    for runbook in faults.demonstrating_runbooks():
        note = faults.planted_note(runbook)
        assert note.startswith("← planted: ")
        assert all(f"{f.name} ({f.plants})" in note for f in faults.for_runbook(runbook))
    assert faults.planted_note("no-such-runbook") == ""


def test_backup_and_maintenance_faults_are_registered() -> None:
    """The faults planted for restore-test and db-maintenance: off with `none`, on with `all` (the demo)."""
    assert {name: faults.get(name).runbook for name in ("backup-truncated", "backups-stopped")} == {
        "backup-truncated": "restore-test",
        "backups-stopped": "restore-test",
    }
    assert faults.get("sequence-near-max").runbook == "db-maintenance"
    new = ("backup-truncated", "backups-stopped", "sequence-near-max")
    assert all(manager.parse_faults("all")[n] for n in new)
    assert not any(manager.parse_faults("none")[n] for n in new)
    assert {"restore-test", "db-maintenance"} <= set(faults.demonstrating_runbooks())
