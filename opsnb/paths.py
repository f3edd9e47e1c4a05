"""Where things live: the project root and its well-known folders, and which names may point into them."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path

from opsnb.errors import UsageError

# Runbook and environment names become file names (notebooks/<name>.ipynb, parameters/<name>.yaml):
# this one rule keeps them from ever reaching outside those folders ("../x", "/etc/y", "a/b").
_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")
NAME_MAX_LENGTH = 64


def project_root() -> Path:
    """The project folder: $OPSNB_HOME if set, else the folder that holds this package."""
    home = os.environ.get("OPSNB_HOME")
    if home:
        return Path(home).resolve()
    return Path(__file__).resolve().parent.parent


def notebooks_dir() -> Path:
    """Folder of the runbook notebooks ($OPSNB_NOTEBOOKS overrides, for tests)."""
    override = os.environ.get("OPSNB_NOTEBOOKS")
    return Path(override).resolve() if override else project_root() / "notebooks"


def parameters_dir() -> Path:
    """Folder of the per-environment parameter files ($OPSNB_PARAMETERS overrides)."""
    override = os.environ.get("OPSNB_PARAMETERS")
    return Path(override).resolve() if override else project_root() / "parameters"


def outputs_dir() -> Path:
    """Folder of the evidence bundles ($OPSNB_OUTPUTS overrides)."""
    override = os.environ.get("OPSNB_OUTPUTS")
    return Path(override).resolve() if override else project_root() / "outputs"


def is_valid_name(name: str) -> bool:
    """True when ``name`` may name a runbook or an environment: ``^[a-z0-9][a-z0-9-]*$``, at most 64 characters."""
    return isinstance(name, str) and len(name) <= NAME_MAX_LENGTH and _NAME.fullmatch(name) is not None


def check_name(name: str, kind: str, valid_names: Callable[[], Iterable[str]]) -> str:
    """``name`` itself when valid; else a UsageError that lists the valid names of that ``kind``.

    Called before any path is built from ``name``; ``valid_names`` is only called on failure.
    """
    if is_valid_name(name):
        return name
    names = ", ".join(valid_names()) or "none"
    raise UsageError(
        f"invalid {kind} name '{printable(name)}': use lowercase letters, digits and '-'"
        f" (at most {NAME_MAX_LENGTH}); {kind}s: {names}"
    )


def printable(text: str, limit: int = 80) -> str:
    """``text`` made safe for a one-line message: control characters escaped, cut after ``limit`` characters."""
    text = str(text)
    cut = len(text) > limit
    # Escaping keeps a newline or an ANSI escape from a user's value out of the one-line error.
    safe = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text[:limit])
    return safe + ("…" if cut else "")
