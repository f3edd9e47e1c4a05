"""The index lists every run newest first and survives unreadable manifests."""

from __future__ import annotations

import json

from opsnb.index import load_manifests, update_index


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
