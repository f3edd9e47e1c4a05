"""Where things live: the project root and its well-known folders."""

from __future__ import annotations

import os
from pathlib import Path


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
