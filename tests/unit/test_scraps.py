"""Values glued in the kernel are read back from the notebook file by the runner."""

from __future__ import annotations

import nbformat

from opsnb import scraps


def output(mime: str, name: str, data) -> dict:
    return nbformat.v4.new_output(
        "display_data", data={mime: {"name": name, "data": data, "encoder": "text", "version": 1}}
    )


def test_read_last_value_wins_and_strip() -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "a", outputs=[output("application/scrapbook.scrap.text+json", "v", '{"verdict": "WARN"}')]
        ),
        nbformat.v4.new_code_cell(
            "b",
            outputs=[
                output("application/scrapbook.scrap.text+json", "v", '{"verdict": "PASS"}'),
                output("application/scrapbook.scrap.json+json", "n", 3),
                nbformat.v4.new_output("stream", name="stdout", text="kept\n"),
            ],
        ),
    ]
    assert scraps.read(nb) == {"v": {"verdict": "PASS"}, "n": 3}
    scraps.strip(nb)
    assert [o["output_type"] for c in nb.cells for o in c.outputs] == ["stream"]
