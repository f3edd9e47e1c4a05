"""The HTML evidence loads nothing from the network."""

from __future__ import annotations

import re

import nbformat

from opsnb.runner.report import render, sanitize_html

EXTERNAL = re.compile(r"<(script|link|img|iframe)\b[^>]*(src|href)\s*=\s*[\"']?(https?:)?//", re.I)
CSS_URL = re.compile(r"url\s*\(", re.I)


def manifest(**extra) -> dict:
    base = {
        "run_id": "r1",
        "runbook": "rb",
        "env": "test",
        "incident": None,
        "parameters": {"a": 1},
        "user": "u",
        "host": "h",
        "started_at": "2026-01-01T00:00:00+00:00",
        "ended_at": "2026-01-01T00:00:05+00:00",
        "duration_s": 5.0,
        "outcome": "FAIL",
        "highest_severity": "P1",
        "opsnb_version": "0",
        "findings": [{"severity": "P1", "title": "t<b>", "detail": "d"}],
        "actions": [],
        "error": "",
        "failed_cell": None,
    }
    return {**base, **extra}


def hostile_notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    out = nbformat.v4.new_output(
        "display_data",
        data={
            "text/html": '<script src="https://cdn.example/x.js"></script><link rel="stylesheet" href="https://cdn.example/a.css">'
            '<img src="https://tracker.example/p.png" onerror="alert(1)"><div style="background:url(https://x.example/i.png)">t</div>'
            "<style>@import url('https://fonts.example/f.css');</style>"
        },
    )
    nb.cells = [
        nbformat.v4.new_markdown_cell(
            "# Title\n![img](https://example.com/a.png) and <script>alert(1)</script>"
        ),
        nbformat.v4.new_code_cell("print(1)", outputs=[out]),
        nbformat.v4.new_code_cell(
            "x", outputs=[nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo="})]
        ),
    ]
    return nb


def test_report_has_no_external_url() -> None:
    page = render(manifest(), hostile_notebook())
    assert not EXTERNAL.search(page)
    assert not CSS_URL.search(page)
    assert "<script" not in page.lower()
    assert "onerror" not in page
    assert 'src="data:image/png;base64,iVBORw0KGgo="' in page  # inline figures stay
    assert "t&lt;b&gt;" in page  # findings are escaped
    assert "P1 High (major impact): respond < 15 minutes, resolve < 4 hours".replace("<", "&lt;") in page


def test_failed_cell_link() -> None:
    page = render(manifest(outcome="ERROR", failed_cell=1, error="ValueError: x"), hostile_notebook())
    assert 'href="#cell-1"' in page and 'id="cell-1"' in page


def test_sanitize_keeps_tables() -> None:
    # The sanitizer parses HTML as a browser does, so it writes the <tbody> a
    # browser would have implied; a table that has it passes unchanged.
    assert (
        sanitize_html("<table><tr><td>1</td></tr></table>")
        == "<table><tbody><tr><td>1</td></tr></tbody></table>"
    )
    html = "<table><thead><tr><th>a</th></tr></thead><tbody><tr><td>1</td></tr></tbody></table>"
    assert sanitize_html(html) == html
