"""Scrub secrets from everything the runner writes or prints."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from opsnb.secrets import MIN_SECRET_LENGTH, scrub


def secret_values(env_values: Mapping[str, str], names: Iterable[str]) -> set[str]:
    """Values to hide: those of the named variables, plus every env-file value that is not a bare URL."""
    values = {env_values.get(n, "") for n in names}
    values |= {v for v in env_values.values() if not _is_plain_url(v)}
    return {v for v in values if v and len(v) >= MIN_SECRET_LENGTH}


def _is_plain_url(value: str) -> bool:
    """An http(s) URL without credentials is configuration, not a secret."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and not parts.password and not parts.query


def scrub_tree(node: Any, values: set[str]) -> Any:
    """A copy of a JSON-like tree (notebook, manifest) with every string scrubbed."""
    if isinstance(node, str):
        return scrub(node, values)
    if isinstance(node, list):
        return [scrub_tree(v, values) for v in node]
    if isinstance(node, dict):
        return type(node)((k, scrub_tree(v, values)) for k, v in node.items())
    return node
