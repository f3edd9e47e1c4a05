"""Values glued in the kernel are read back from the notebook file by the runner."""

from __future__ import annotations

import nbformat

from opsnb.checks import scraps


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


def test_glue_output_is_readable_by_scrapbook(tmp_path) -> None:
    """Our glue writes scrapbook's own format: scrapbook.read_notebook finds the value."""
    from unittest import mock

    import scrapbook

    published = []
    with mock.patch(
        "IPython.display.publish_display_data", lambda data, metadata: published.append((data, metadata))
    ):
        scraps.glue("opsnb_verdict", {"verdict": "FAIL", "highest": "P1"})
    data, metadata = published[0]
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell(
            "x", outputs=[nbformat.v4.new_output("display_data", data=data, metadata=metadata)]
        )
    ]
    nbformat.write(nb, tmp_path / "n.ipynb")
    raw = scrapbook.read_notebook(str(tmp_path / "n.ipynb")).scraps["opsnb_verdict"].data
    assert raw == '{"verdict": "FAIL", "highest": "P1"}'
    assert scraps.read(nb)["opsnb_verdict"] == {"verdict": "FAIL", "highest": "P1"}
