"""Secrets by reference: parameters name an environment variable, never a value.

A resolved :class:`Secret` prints as ``***`` and every value resolved in this
process is scrubbed from tracebacks shown by the kernel. The runner scrubs each
artifact again before writing it (see ``opsnb.redact``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

from opsnb.errors import ConfigError

MASK = "***"
# scheme://user:password@ — the password part is what we hide.
DSN_PASSWORD = re.compile(
    r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s'\"]*:)(?P<password>[^@\s'\"/]+)(?P<tail>@)"
)
MIN_SECRET_LENGTH = 4  # shorter values would mask ordinary words

_resolved: dict[str, str] = {}


class MissingSecret(ConfigError):
    """The environment variable a parameter names is not set."""


class Secret:
    """A secret value that never shows itself: str/repr/format give ``***``."""

    __slots__ = ("name", "_value")

    def __init__(self, name: str, value: str) -> None:
        self.name = name
        self._value = value

    def reveal(self) -> str:
        """The clear value, for handing to a client library; never print it."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self.name}={MASK})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __bool__(self) -> bool:
        return bool(self._value)

    def __len__(self) -> int:
        return len(self._value)


def secret(env_name: str) -> Secret:
    """The secret held by environment variable ``env_name``; MissingSecret naming it when unset."""
    value = os.environ.get(env_name)
    if value is None:
        value = _from_env_file(env_name)
    if not value:
        raise MissingSecret(f"secret variable ${env_name} is not set")
    register(value, env_name)
    return Secret(env_name, value)


def _from_env_file(env_name: str) -> str | None:
    """Look the name up in $OPSNB_ENV_FILE (how JupyterLab sessions get the sandbox secrets)."""
    path = os.environ.get("OPSNB_ENV_FILE")
    if not path:
        return None
    from pathlib import Path

    from opsnb.config import read_env_file

    try:
        return read_env_file(Path(path)).get(env_name)
    except ConfigError:
        return None


def register(value: str, name: str = "") -> None:
    """Remember ``value`` so that scrub() hides it from now on."""
    if value and len(value) >= MIN_SECRET_LENGTH:
        _resolved[name or f"value{len(_resolved)}"] = value
        _install_kernel_scrubber()


def resolved_names() -> list[str]:
    """Names of the secrets resolved in this process (never their values)."""
    return sorted(_resolved)


def scrub(text: str, values: Iterable[str] = ()) -> str:
    """``text`` with every known secret value and any DSN password replaced by ``***``.

    Colored tracebacks split a literal with ANSI codes (``post\x1b[39mgresql://…``); when hiding a secret
    needs the plain text, the line comes back plain.
    """
    if not text:
        return text
    values = tuple(values)
    scrubbed = _scrub_plain(text, values)
    if "\x1b[" in scrubbed:
        plain = _ANSI.sub("", scrubbed)
        hidden = _scrub_plain(plain, values)
        if hidden != plain:
            return hidden
    return scrubbed


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _scrub_plain(text: str, values: Iterable[str]) -> str:
    for value in sorted({*_resolved.values(), *values}, key=len, reverse=True):
        if value and len(value) >= MIN_SECRET_LENGTH and value in text:
            text = text.replace(value, MASK)
    return DSN_PASSWORD.sub(lambda m: m.group("head") + MASK + m.group("tail"), text)


_installed = False


def _install_kernel_scrubber() -> None:
    """In an IPython kernel, route every traceback through scrub() before it is shown or saved."""
    global _installed
    if _installed:
        return
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return

    def show_scrubbed(shell, etype, value, tb, tb_offset=None):
        stb = shell.InteractiveTB.structured_traceback(etype, value, tb, tb_offset=tb_offset)
        stb = [scrub(line) for line in stb]
        shell._showtraceback(etype, scrub(str(value)), stb)
        return stb

    shell.set_custom_exc((Exception,), show_scrubbed)
    _installed = True
