"""How a table reads in a notebook and in its HTML evidence: one formatter for every DataFrame shown.

pandas' own rendering shows a 0..n index column, ``NaN``/``None``/``NaT`` for missing values,
``Timestamp('…', tz='UTC')`` and Python dicts; a reader of the evidence weeks later needs none of that.
``install()`` (done when a notebook imports ``opsnb.checks``) registers :func:`frame_html` as the kernel's
HTML form of a DataFrame, lazily, so that importing opsnb does not import pandas.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

MAX_ROWS = 200  # more rows than a person reads during an incident; the rest is counted, not shown


def cell_text(value: Any) -> str:
    """One value as a reader wants it: blank when missing, UTC ISO times, nested values as short text."""
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    if type(value).__name__ in ("NaTType", "NAType"):
        return ""
    if isinstance(value, _dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(_dt.UTC).replace(tzinfo=None)
            return value.isoformat(sep=" ", timespec="seconds") + "Z"
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, _dt.timedelta):
        return _duration(value.total_seconds())
    if isinstance(value, (dict, list, tuple, set)):
        return _nested(value)
    if isinstance(value, float):
        return f"{value:.6g}" if abs(value) < 1e15 else f"{value:.3e}"
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalar
        return cell_text(value.item())
    return str(value)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _nested(value: Any) -> str:
    """A dict as 'key: value, …', a list as 'a, b, …' (JSON for anything deeper)."""
    if isinstance(value, dict):
        if all(not isinstance(v, (dict, list)) for v in value.values()):
            return ", ".join(f"{k}: {cell_text(v)}" for k, v in value.items())
        return json.dumps(value, default=str, ensure_ascii=False)
    items = list(value)
    if all(not isinstance(v, (dict, list)) for v in items):
        return ", ".join(cell_text(v) for v in items)
    return json.dumps(items, default=str, ensure_ascii=False)


def readable(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` with every value turned into the text a reader sees (see cell_text)."""
    shown = frame.head(MAX_ROWS)
    return shown.apply(lambda column: column.map(cell_text)) if len(shown.columns) else shown.copy()


def meaningful_index(frame: pd.DataFrame) -> bool:
    """True when the index says something (named, or not the default 0..n-1 positions)."""
    import pandas as pd

    index = frame.index
    if any(name is not None for name in index.names):
        return True
    return not (isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1)


def frame_html(frame: pd.DataFrame) -> str:
    """The HTML of a table in the notebook and the evidence: readable values, no positional index column,
    a note when rows were left out."""
    body = readable(frame).to_html(index=meaningful_index(frame), escape=True, border=0, classes="dataframe")
    if len(frame) > MAX_ROWS:
        body += f"<p>{MAX_ROWS} of {len(frame)} rows shown</p>"
    return body


_installed = False


def install() -> None:
    """Make frame_html the kernel's HTML form of every DataFrame (no-op outside IPython or when done)."""
    global _installed
    if _installed:
        return
    from opsnb.checks.context import ipython_shell

    shell = ipython_shell()
    if shell is None:
        return
    html = shell.display_formatter.formatters["text/html"]
    # pandas 3 names the class pandas.DataFrame, pandas 2 pandas.core.frame.DataFrame
    for module in ("pandas", "pandas.core.frame"):
        html.for_type_by_name(module, "DataFrame", frame_html)
    _installed = True
