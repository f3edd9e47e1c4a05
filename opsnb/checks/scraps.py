"""The small wrapper around scrapbook: values the runner reads back from the executed notebook.

Values are glued in scrapbook's own output format (so ``scrapbook.read_notebook``
reads them), as JSON text because scrapbook chokes on numpy numbers, None and
datetimes. We publish that output ourselves: importing scrapbook in the kernel
costs seconds (it pulls papermill, jsonschema and a grammar build), and the
runner reads the notebook file directly, so neither side imports scrapbook.
"""

from __future__ import annotations

import json
from typing import Any

SCRAP_PREFIX = "application/scrapbook.scrap."  # .text+json for strings, .json+json for others
CONCLUSION_PREFIX = "opsnb_conclusion:"  # one scrap per check, published as soon as it concludes
TARGET_PREFIX = "opsnb_target:"  # one scrap per server a run looked at (see context.note_target)


def glue(name: str, value: Any) -> None:
    """Record ``value`` (anything JSON-able) in the current cell's outputs under ``name``."""
    from IPython.display import publish_display_data

    from opsnb.checks.findings import jsonable

    payload = {"name": name, "data": json.dumps(jsonable(value)), "encoder": "text", "version": 1}
    publish_display_data(
        {f"{SCRAP_PREFIX}text+json": payload},
        metadata={"scrapbook": {"name": name, "data": True, "display": False}},
    )


def read(nb: dict) -> dict[str, Any]:
    """Every value glued in a notebook (dict or NotebookNode), last one wins per name."""
    found: dict[str, Any] = {}
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []) or []:
            payload = next(
                (v for k, v in (output.get("data") or {}).items() if k.startswith(SCRAP_PREFIX)), None
            )
            if not isinstance(payload, dict) or "name" not in payload:
                continue
            data = payload.get("data")
            try:
                found[payload["name"]] = json.loads(data) if isinstance(data, str) else data
            except ValueError:
                found[payload["name"]] = data
    return found


def conclusions(found: dict[str, Any]) -> list[dict[str, Any]]:
    """The run's conclusions: the final list when the notebook reached ``findings.record()``, else every
    conclusion published before the run stopped, in the order they were first reached."""
    final = found.get("opsnb_findings")
    if isinstance(final, list):
        return final
    return [v for k, v in found.items() if k.startswith(CONCLUSION_PREFIX) and isinstance(v, dict)]


def targets(found: dict[str, Any]) -> list[dict[str, Any]]:
    """What the run looked at (servers with their identity), in the order it first connected."""
    return [v for k, v in found.items() if k.startswith(TARGET_PREFIX) and isinstance(v, dict)]


def strip(nb: dict) -> None:
    """Remove scrap outputs in place (nbconvert warns on them and readers need not see them)."""
    for cell in nb.get("cells", []):
        if cell.get("outputs"):
            cell["outputs"] = [
                o for o in cell["outputs"] if not any(k.startswith(SCRAP_PREFIX) for k in o.get("data") or {})
            ]
