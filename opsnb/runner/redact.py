"""Scrub secrets from everything the runner writes or prints."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from opsnb.checks.secrets import MIN_SECRET_LENGTH, scrub

# Env-file variables whose names say they hold a secret are hidden even when no parameter names them.
_SECRET_NAME = re.compile(r"KEY|SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|PRIVATE|DSN|DATABASE_URL|_AUTH", re.I)


def secret_values(env_values: Mapping[str, str], names: Iterable[str]) -> set[str]:
    """Values to hide: those of the named variables (parameters ending in _env, secrets the kernel
    resolved) and of env-file variables whose name marks a secret, unless they are bare URLs.

    Configuration in the env file (a project name, a bucket, a port) stays readable in the evidence.
    """
    values = {env_values.get(n, "") for n in names}
    values |= {v for k, v in env_values.items() if _SECRET_NAME.search(k) and not _is_plain_url(v)}
    return {v for v in values if v and len(v) >= MIN_SECRET_LENGTH}


def _is_plain_url(value: str) -> bool:
    """An http(s) URL without credentials is configuration, not a secret."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and not parts.password and not parts.query


def scrub_tree(node: Any, values: set[str]) -> Any:
    """A copy of a JSON-like tree (notebook, manifest) with every string scrubbed, dict keys included.

    Consecutive stream outputs of a cell are joined first: a secret printed in two writes lands in two
    outputs, and neither half alone would match.
    """
    if isinstance(node, str):
        return scrub(node, values)
    if isinstance(node, list):
        return [scrub_tree(v, values) for v in _joined_streams(node)]
    if isinstance(node, dict):
        return type(node)((scrub(str(k), values), scrub_tree(v, values)) for k, v in node.items())
    return node


def _joined_streams(items: list) -> list:
    """``items`` with runs of stream outputs to the same stream merged into one output."""
    if not any(isinstance(i, dict) and i.get("output_type") == "stream" for i in items):
        return items
    joined: list = []
    for item in items:
        last = joined[-1] if joined else None
        if (
            isinstance(item, dict)
            and item.get("output_type") == "stream"
            and isinstance(last, dict)
            and last.get("output_type") == "stream"
            and last.get("name") == item.get("name")
        ):
            merged = type(last)(last)
            merged["text"] = _text(last.get("text")) + _text(item.get("text"))
            joined[-1] = merged
        else:
            joined.append(item)
    return joined


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value or "")
