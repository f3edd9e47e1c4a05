"""Errors the runner turns into one-line messages and exit codes."""

from __future__ import annotations


class OpsnbError(Exception):
    """Base of every error opsnb reports as a single line."""

    exit_code = 3


class UsageError(OpsnbError):
    """Bad input: unknown runbook, bad parameter, broken config. Nothing ran (exit 3)."""

    exit_code = 3


class ConfigError(UsageError):
    """A parameters file, env file or secret reference is wrong (exit 3)."""
