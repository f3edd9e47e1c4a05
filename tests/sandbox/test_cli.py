"""Command line: help, usage errors (exit 3, one line, no traceback)."""

from __future__ import annotations

import pytest

from opsnb.sandbox import cli, manager


@pytest.fixture(autouse=True)
def empty_state(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSNB_SANDBOX_DIR", str(tmp_path / "nothing-here"))


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["up", "--help"],
        ["down", "--help"],
        ["status", "--help"],
        ["reset", "--help"],
        ["fault", "--help"],
    ],
)
def test_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(argv) == 0
    assert "usage:" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["up", "--faults", "missing-index,nope"], "unknown fault nope"),
        (["up", "--scale", "ten"], "not a whole number"),
        (["up", "--scale", "5"], "at least 100"),
        (["fault", "nope", "on"], "invalid choice"),
        (["fault", "500-burst", "maybe"], "invalid choice"),
        (["fault", "500-burst", "on"], "not up"),
        (["reset"], "not up"),
        (["frobnicate"], "invalid choice"),
        ([], None),
    ],
)
def test_usage_errors(argv: list[str], expected: str | None, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(argv) == 3
    err = capsys.readouterr().err
    if expected:
        assert expected in err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_status_and_down_when_nothing_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["status"]) == 1
    assert "not up" in capsys.readouterr().out
    assert cli.main(["down"]) == 0
    assert "nothing" in capsys.readouterr().out


def test_parse_faults() -> None:
    assert manager.parse_faults("all") == dict.fromkeys(manager.FAULTS, True)
    assert manager.parse_faults("none") == dict.fromkeys(manager.FAULTS, False)
    picked = manager.parse_faults("500-burst, nextauth-url")
    assert [f for f, on in picked.items() if on] == ["500-burst", "nextauth-url"]
    assert manager.parse_faults(None) is None
