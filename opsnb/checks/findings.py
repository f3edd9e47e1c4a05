"""The check contract: what a check concludes, and the verdict that follows from all conclusions.

A *check* is a function decorated with :func:`check` that looks at one thing
and records exactly one :class:`Conclusion` through :func:`conclude`: an id
(``area.check``), a title that says what is true, a status
(``pass | warn | fail | inconclusive``), a severity (P0-P3 or info), a detail
and its evidence (a table or a plot), which it also returns for display.

A check that could not look (network, permission, timeout, missing extension,
a failed EXPLAIN) never passes and never crashes the run: the decorator turns
the failure into an ``inconclusive`` conclusion saying why and how to make it
checkable, and an inconclusive *essential* check makes the run at least WARN.
Only a bug in opsnb itself still ends the run as ERROR, with every conclusion
recorded so far kept in the evidence (each conclusion is published at once).
"""

from __future__ import annotations

import contextvars
import datetime as _dt
import functools
import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from opsnb.checks.severity import LEVELS, ORDER, highest

STATUSES = ("pass", "warn", "fail", "inconclusive")
CHECK_ID = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*\.[a-z0-9]+([-.][a-z0-9]+)*$")


@dataclass
class Conclusion:
    """What one check concluded."""

    check: str
    title: str
    status: str
    severity: str
    detail: str = ""
    evidence: Any = None
    essential: bool = True

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe form (numpy numbers, datetimes and frames become plain values)."""
        return jsonable(asdict(self))


class CouldNotLook(Exception):
    """Raised inside a check when it cannot see what it must judge; ``hint`` says how to make it checkable."""

    def __init__(self, why: str, hint: str = ""):
        super().__init__(why)
        self.why = why
        self.hint = hint


@dataclass
class _Run:
    conclusions: dict[str, Conclusion] = field(default_factory=dict)
    actions: list[dict[str, Any]] = field(default_factory=list)


_run = _Run()
_current: contextvars.ContextVar[_Current | None] = contextvars.ContextVar("opsnb_check", default=None)


@dataclass
class _Current:
    check: str
    essential: bool
    concluded: int = 0


F = TypeVar("F", bound=Callable[..., Any])

# Libraries whose exceptions mean the outside world did not answer (not a bug in opsnb).
_OUTSIDE = ("psycopg", "httpx", "httpcore", "stripe", "botocore", "boto3", "s3transfer", "joserfc", "urllib3")


def could_not_look(exc: BaseException) -> bool:
    """True for failures to reach or read what a check looks at; False for bugs in opsnb."""
    from opsnb.errors import OpsnbError

    if isinstance(exc, (CouldNotLook, OSError, TimeoutError, OpsnbError, json.JSONDecodeError)):
        return True
    import subprocess

    if isinstance(exc, subprocess.SubprocessError):
        return True
    return any(cls.__module__.split(".")[0] in _OUTSIDE for cls in type(exc).__mro__)


def check(check_id: str, *, essential: bool = True, hint: str = "") -> Callable[[F], F]:
    """Make a function a check: it must record exactly one conclusion with :func:`conclude`.

    ``essential``: an inconclusive result makes the run at least WARN (a blind spot).
    ``hint``: how to make the check checkable when it could not look (e.g. a privilege to grant).
    """
    if not CHECK_ID.match(check_id):
        raise ValueError(f"check ids look like 'area.check' (lowercase, dashes), got {check_id!r}")

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            state = _Current(check_id, essential)
            token = _current.set(state)
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:
                _inconclusive(check_id, essential, exc, hint)
                if could_not_look(exc):
                    return None
                raise  # a bug in opsnb: the run ends as ERROR, this conclusion kept
            finally:
                _current.reset(token)
            if not state.concluded:
                raise RuntimeError(f"check {check_id} returned without recording a conclusion")
            return result

        run.check_id = check_id  # type: ignore[attr-defined]
        run.essential = essential  # type: ignore[attr-defined]
        return run  # type: ignore[return-value]

    return decorate


def _inconclusive(check_id: str, essential: bool, exc: BaseException, hint: str) -> None:
    from opsnb.checks.secrets import scrub

    why = exc.why if isinstance(exc, CouldNotLook) else f"{type(exc).__name__}: {exc}"
    why = scrub(str(why).strip().splitlines()[0] if str(why).strip() else type(exc).__name__)
    how = exc.hint if isinstance(exc, CouldNotLook) and exc.hint else hint
    if not could_not_look(exc):
        how = "this is a bug in opsnb: please report it with this run's evidence"
    _store(
        Conclusion(
            check_id,
            f"Could not check {check_id}",
            "inconclusive",
            "info",
            why + (f" — {how}" if how else ""),
            essential=essential,
        )
    )


def conclude(
    status: str,
    title: str,
    *,
    severity: str | None = None,
    detail: str = "",
    evidence: Any = None,
    check_id: str | None = None,
    essential: bool | None = None,
) -> Any:
    """Record the conclusion of the running check and return ``evidence`` (for display).

    ``severity`` is required for warn/fail (P0-P3); a pass is 'info'. Outside a decorated check (a notebook
    cell), give ``check_id``. Recording again for the same check replaces its conclusion (a re-run cell).
    ``essential=False`` marks one inconclusive outcome as no blind spot (e.g. "sample too small" on a
    freshly loaded database), whatever the check's own flag.
    """
    state = _current.get()
    cid = check_id or (state.check if state else None)
    if not cid:
        raise ValueError("conclude() outside a @check needs check_id='area.check'")
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
    if status in ("warn", "fail") and severity not in ("P0", "P1", "P2", "P3"):
        raise ValueError(f"a {status} conclusion needs a severity P0-P3, got {severity!r}")
    sev = severity if status in ("warn", "fail") else (severity or "info")
    if sev not in LEVELS:
        raise ValueError(f"severity must be one of {', '.join(LEVELS)}, got {sev!r}")
    if essential is None:
        essential = state.essential if state and state.check == cid else True
    _store(Conclusion(cid, title, status, sev, detail, evidence, essential))
    if state and state.check == cid:
        state.concluded += 1
    return evidence


def _store(conclusion: Conclusion) -> None:
    """Keep one conclusion per check (first position kept: runbook order) and publish it at once,
    so that a run ending in ERROR still hands the runner every conclusion reached before."""
    from opsnb.checks import scraps

    key = conclusion.check
    _run.conclusions[key] = conclusion
    try:
        scraps.glue(scraps.CONCLUSION_PREFIX + key, conclusion.as_dict())
    except Exception:  # outside a kernel (unit tests, plain scripts) there is nowhere to publish
        pass


def _publish() -> None:
    """Glue the whole list of conclusions (the authoritative one, at the end of a run)."""
    from opsnb.checks import scraps

    scraps.glue("opsnb_findings", [c.as_dict() for c in _run.conclusions.values()])


def all_conclusions() -> list[Conclusion]:
    """Conclusions recorded so far, in the order the runbook reached them."""
    return list(_run.conclusions.values())


def clear() -> None:
    """Forget every conclusion and action (a fresh run in the same kernel)."""
    _run.conclusions.clear()
    _run.actions.clear()


def note_action(entry: dict[str, Any]) -> None:
    """Remember what a gated action planned or did (see opsnb.checks.actions)."""
    _run.actions[:] = [a for a in _run.actions if a.get("title") != entry.get("title")]
    _run.actions.append(jsonable(entry))


def verdict_of(conclusions: list[Conclusion] | list[dict[str, Any]]) -> str:
    """FAIL on a P0/P1 problem; WARN on a P2/P3 problem or an essential check that could not look; else PASS."""
    items = [c if isinstance(c, dict) else asdict(c) for c in conclusions]
    problems = [c["severity"] for c in items if c["status"] in ("warn", "fail")]
    if any(s in ("P0", "P1") for s in problems):
        return "FAIL"
    if problems or any(c["status"] == "inconclusive" and c.get("essential", True) for c in items):
        return "WARN"
    return "PASS"


def verdict() -> str:
    """The verdict of the conclusions recorded so far."""
    return verdict_of(all_conclusions())


def blind_spots() -> list[Conclusion]:
    """Essential checks that could not look."""
    return [c for c in all_conclusions() if c.status == "inconclusive" and c.essential]


def table():
    """The conclusions as a DataFrame (status, severity, check, title, detail), problems first."""
    import pandas as pd

    rank = {"fail": 0, "warn": 1, "inconclusive": 2, "pass": 3}
    rows = sorted(
        (
            {
                "status": c.status,
                "severity": c.severity,
                "check": c.check,
                "title": c.title,
                "detail": c.detail,
            }
            for c in all_conclusions()
        ),
        key=lambda r: (rank[r["status"]], ORDER.index(r["severity"])),
    )
    return pd.DataFrame(rows, columns=["status", "severity", "check", "title", "detail"])


def record():
    """Hand conclusions, actions and verdict to the runner; return the conclusions table for display."""
    from opsnb.checks import scraps
    from opsnb.checks.secrets import resolved_names

    severities = [c.severity for c in all_conclusions() if c.status in ("warn", "fail")]
    _publish()
    scraps.glue("opsnb_actions", list(_run.actions))
    scraps.glue("opsnb_secret_names", resolved_names())
    scraps.glue("opsnb_verdict", {"verdict": verdict(), "highest": highest(severities)})
    blind = blind_spots()
    print(
        f"Verdict: {verdict()}"
        + (f" (highest severity {highest(severities)})" if highest(severities) else "")
        + (f"; {len(blind)} essential check(s) could not look" if blind else "")
    )
    return table()


def jsonable(value: Any) -> Any:
    """``value`` turned into plain JSON types (str for anything unknown)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        return value if value == value else None  # NaN → null
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [jsonable(v) for v in value]
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    if hasattr(value, "to_dict") and hasattr(value, "columns"):  # a DataFrame
        return jsonable(value.to_dict(orient="records"))
    if hasattr(value, "savefig"):  # a matplotlib Figure: shown in the notebook, not stored twice
        return "[figure]"
    if hasattr(value, "item"):  # numpy scalar
        return jsonable(value.item())
    try:
        json.dumps(value)
        return value
    except TypeError:
        return str(value)
