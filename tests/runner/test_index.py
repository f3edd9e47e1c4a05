"""The index lists every run newest first, survives unreadable manifests and never follows a symlink."""

from __future__ import annotations

import json

import pytest

from opsnb.runner.evidence import RefusedPath
from opsnb.runner.index import load_manifests, update_index


def test_index_newest_first(tmp_path) -> None:
    for i, (rb, outcome) in enumerate([("a", "PASS"), ("b", "FAIL"), ("a", "ERROR")]):
        d = tmp_path / rb
        d.mkdir(exist_ok=True)
        (d / f"2026010{i}_r{i}.json").write_text(
            json.dumps(
                {
                    "run_id": f"r{i}",
                    "runbook": rb,
                    "env": "e",
                    "outcome": outcome,
                    "started_at": f"2026-01-0{i + 1}T00:00:00",
                    "duration_s": 1,
                }
            )
        )
    (tmp_path / "a" / "broken.json").write_text("{not json")
    runs = load_manifests(tmp_path)
    assert [r["run_id"] for r in runs] == ["r2", "r1", "r0"]
    page = update_index(tmp_path).read_text()
    assert page.index("r2.html") < page.index("r1.html") < page.index("r0.html")
    assert 'class="badge FAIL"' in page and 'class="badge ERROR"' in page
    assert not list(tmp_path.glob(".index.html.tmp*"))


def manifest(run_id: str, runbook: str = "a") -> str:
    """A minimal manifest as the runner writes it."""
    return json.dumps(
        {
            "run_id": run_id,
            "runbook": runbook,
            "env": "e",
            "outcome": "PASS",
            "started_at": "2026-01-01T00:00:00",
        }
    )


def test_index_lists_only_real_files_below_outputs(tmp_path) -> None:
    outputs, outside = tmp_path / "outputs", tmp_path / "outside"
    (outputs / "a").mkdir(parents=True)
    outside.mkdir()
    (outputs / "a" / "20260101_real.json").write_text(manifest("real"))
    (outside / "20260101_foreign.json").write_text(manifest("foreign"))
    (outputs / "a" / "20260101_linked.json").symlink_to(outside / "20260101_foreign.json")  # a file elsewhere
    (outputs / "b").symlink_to(outside, target_is_directory=True)  # a folder elsewhere
    (outputs / "c").symlink_to(tmp_path / "missing", target_is_directory=True)  # dangling
    (outputs / ".work").mkdir()
    (outputs / ".work" / "20260101_hidden.json").write_text(manifest("hidden"))  # a run's private folder
    (outputs / "a" / ".20260101_tmp.json").write_text(manifest("tmp"))
    assert [r["run_id"] for r in load_manifests(outputs)] == ["real"]
    page = update_index(outputs).read_text()
    assert "real.html" in page and "foreign" not in page and ".work" not in page and "hidden" not in page


def test_symlinked_lock_is_refused_and_its_target_untouched(tmp_path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    (outputs / ".index.lock").symlink_to(victim)
    with pytest.raises(RefusedPath, match="is a symbolic link"):
        update_index(outputs)
    assert victim.read_text() == "precious"
    assert not (outputs / "index.html").exists()


def test_symlinked_index_is_replaced_not_followed(tmp_path) -> None:
    target = tmp_path / "elsewhere.html"
    target.write_text("precious")
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    (outputs / "index.html").symlink_to(target)
    path = update_index(outputs)
    assert not path.is_symlink() and "opsnb runs" in path.read_text()
    assert target.read_text() == "precious"


def _run(runbook: str, env: str, started: str, outcome: str, incident: str | None = None, **extra) -> dict:
    return {
        "run_id": f"{runbook}-{started}",
        "runbook": runbook,
        "env": env,
        "started_at": started,
        "outcome": outcome,
        "incident": incident,
        "duration_s": 1.0,
        "findings": extra.get("findings", []),
        "actions": extra.get("actions", []),
        "_html": f"{runbook}/{started}.html",
    }


def test_index_board_groups_and_markers() -> None:
    import datetime as dt

    from opsnb.runner.index import render_index

    fail = [{"status": "fail", "severity": "P1", "title": "Error rate 41 % since dpl_9"}]
    runs = [  # newest first, as load_manifests returns them
        _run(
            "500-triage",
            "sandbox",
            "2026-12-01T07:00:00+00:00",
            "PASS",
            "INC-42",
            actions=[{"title": "Roll back", "status": "applied"}],
        ),
        _run("500-triage", "sandbox", "2026-12-01T06:50:00+00:00", "FAIL", "INC-42", findings=fail),
        _run("backup", "production", "2026-11-30T02:00:00+00:00", "PASS"),
    ]
    now = dt.datetime(2026, 12, 1, 7, 10, tzinfo=dt.UTC).timestamp()
    page = render_index(runs, now=now)
    board, rest = page.split("<h2>Latest per runbook and environment</h2>")[1].split(
        "<h2>Incident INC-42</h2>"
    )
    # the board holds the latest run per runbook × env, with its age
    assert board.count('class="row-') == 2 and "10 min ago" in board and "29.2 h ago" in board
    assert "row-FAIL" not in board
    # runs grouped by incident, the no-incident group last; top conclusion and the actions marker shown
    incident, loose = rest.split("<h2>Runs without an incident</h2>")
    assert incident.count("<tr class=") == 2 and "Error rate 41 % since dpl_9" in incident
    assert "1 action(s) applied" in incident and "backup" in loose
    for ext in ("html", "json", "ipynb"):
        assert f'href="500-triage/2026-12-01T07:00:00+00:00.{ext}"' in page
    assert "<script" not in page
