"""The evidence says which server a run looked at (never its password)."""

from __future__ import annotations

import json

import nbformat
from runner.workspace import Workspace, make_notebook


def test_manifest_and_report_name_the_target(workspace: Workspace) -> None:
    cells = [
        "from opsnb.checks import context, findings\n"
        "context.note_target('postgres', host='db.example', port=5432, database='shop', role='opsnb_reader',"
        " server_version='15.18')\n"
        "findings.conclude('pass', 'looked', check_id='fixture.looked')",
        "findings.record()",
    ]
    nbformat.write(make_notebook("Looks at a server.", cells), workspace.root / "notebooks" / "target.ipynb")
    result = workspace.run("run", "target", "--env", "test")
    assert result.returncode == 0, result.stdout + result.stderr
    [manifest_path] = sorted((workspace.outputs / "target").glob("*.json"))
    manifest = json.loads(manifest_path.read_text())
    assert manifest["targets"] == [
        {
            "kind": "postgres",
            "host": "db.example",
            "port": 5432,
            "database": "shop",
            "role": "opsnb_reader",
            "server_version": "15.18",
        }
    ]
    html = manifest_path.with_suffix(".html").read_text()
    assert "db.example:5432/shop as opsnb_reader (15.18)" in html.split('id="cell-')[0]
