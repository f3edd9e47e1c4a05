"""Gated mitigations: an action has a plan (always shown and recorded) and an apply step.

Headless (cron, ``opsnb run``): apply runs only when the run has ``--allow-writes``.
In JupyterLab: a button naming the target environment applies it; nothing waits on it.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from typing import Any

from opsnb.checks import context
from opsnb.checks.findings import note_action


class ActionRecord(dict):
    """What an action planned or did (title, plan, environment, status, result): a dict for the code and
    the manifest; shown in a notebook as one line, because the plan was already printed above it."""

    def __repr__(self) -> str:
        result = f" — {self['result']}" if self.get("result") not in (None, "") else ""
        return f"[{self.get('status')}] {self.get('title')}{result}"

    def _repr_pretty_(self, printer, cycle) -> None:  # IPython's text display uses this, not __repr__
        printer.text(repr(self))


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def action(title: str, plan: str | list[str], apply: Callable[[], Any]) -> ActionRecord:
    """Show and record ``plan``; run ``apply`` when the run allows writes (or on a confirmed click).

    Returns the recorded entry: title, plan, environment, status
    ('planned' | 'applied' | 'failed' | 'awaiting confirmation') and result.
    """
    steps = [plan] if isinstance(plan, str) else list(plan)
    entry = ActionRecord(
        title=title, plan=steps, environment=context.environment(), status="planned", result=None
    )
    print(f"Action: {title}  [target environment: {context.environment()}]")
    for step in steps:
        print(f"  plan: {step}")
    if context.headless():
        if context.allow_writes():
            _apply(entry, apply)
        else:
            entry["result"] = "not applied: run with --allow-writes to apply"
            print("  " + entry["result"])
        note_action(entry)
        return entry
    entry["status"] = "awaiting confirmation"
    note_action(entry)
    _confirm_button(entry, apply)
    return entry


def _apply(entry: dict[str, Any], apply: Callable[[], Any]) -> None:
    entry["applied_at"] = _now()
    try:
        result = apply()
    except Exception as exc:
        entry["status"] = "failed"
        entry["result"] = f"{type(exc).__name__}: {exc}"
        note_action(entry)
        print(f"  FAILED: {entry['result']}")
        raise
    entry["status"] = "applied"
    entry["result"] = result if result is not None else "done"
    print(f"  applied: {entry['result']}")
    note_action(entry)


def _confirm_button(entry: dict[str, Any], apply: Callable[[], Any]) -> None:
    """A button that applies the action after an explicit click naming the environment."""
    import ipywidgets as widgets
    from IPython.display import display

    button = widgets.Button(
        description=f"Apply to {context.environment()}",
        button_style="danger",
        tooltip=entry["title"],
        layout=widgets.Layout(width="auto"),
    )
    out = widgets.Output()

    def on_click(_):
        button.disabled = True
        with out:
            _apply(entry, apply)

    button.on_click(on_click)
    print("  not applied yet: click the button below to apply it")
    display(widgets.VBox([button, out]))
