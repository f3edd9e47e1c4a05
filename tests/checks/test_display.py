"""One formatter for every table: what a reader of the evidence sees instead of pandas' internals."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from opsnb.checks.display import MAX_ROWS, cell_text, frame_html, meaningful_index, readable


def test_missing_values_are_blank_and_times_are_utc_iso() -> None:
    assert [cell_text(v) for v in (None, float("nan"), pd.NaT, pd.NA)] == ["", "", "", ""]
    when = pd.Timestamp("2026-12-01 07:16:18.123", tz="Europe/Berlin")
    assert cell_text(when) == "2026-12-01 06:16:18Z"
    assert cell_text(dt.datetime(2026, 12, 1, 6, 0)) == "2026-12-01 06:00:00"
    assert cell_text(dt.timedelta(seconds=95)) == "95.0 s"


def test_nested_values_read_as_text_not_python() -> None:
    assert cell_text({"queryid": -8689, "calls": 3}) == "queryid: -8689, calls: 3"
    assert cell_text(["a", "b"]) == "a, b"
    assert cell_text({"a": {"b": 1}}) == '{"a": {"b": 1}}'
    assert cell_text(np.int64(7)) == "7" and cell_text(0.1 + 0.2) == "0.3"


def test_no_positional_index_column_but_a_named_one_stays() -> None:
    plain = pd.DataFrame({"pid": [1, 2], "state": ["idle", None]})
    html = frame_html(plain)
    assert "<th></th>" not in html and "None" not in html and ">idle<" in html
    assert not meaningful_index(plain)
    named = plain.set_index("pid")
    assert meaningful_index(named) and ">pid<" in frame_html(named)


def test_long_tables_are_cut_with_a_note() -> None:
    frame = pd.DataFrame({"n": range(MAX_ROWS + 5)})
    assert len(readable(frame)) == MAX_ROWS
    assert f"{MAX_ROWS} of {MAX_ROWS + 5} rows shown" in frame_html(frame)


def test_values_are_escaped() -> None:
    assert "&lt;script&gt;" in frame_html(pd.DataFrame({"x": ["<script>alert(1)</script>"]}))


def test_installed_in_an_ipython_shell() -> None:
    from IPython.core.interactiveshell import InteractiveShell

    from opsnb.checks import display

    shell = InteractiveShell.instance()
    display._installed = False
    display.install()
    data, _ = shell.display_formatter.format(pd.DataFrame({"a": [None]}))
    assert "None" not in data["text/html"] and "<th></th>" not in data["text/html"]
