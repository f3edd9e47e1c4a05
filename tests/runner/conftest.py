"""Fixtures of the runner tests."""

from runner.workspace import workspace  # noqa: F401
