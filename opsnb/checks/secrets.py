"""Secrets by reference: parameters name an environment variable, never a value.

A resolved :class:`Secret` prints as ``***`` and every value resolved in this
process is scrubbed from tracebacks shown by the kernel. The runner scrubs each
artifact again before writing it (see ``opsnb.runner.redact``).
"""

from __future__ import annotations

import base64
import functools
import html
import json
import os
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus, unquote

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

    from opsnb.envfile import read_env_file

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
    """``text`` with every known secret, each of its derived forms and any DSN password replaced by ``***``.

    Colored tracebacks split a literal with ANSI codes (``post\x1b[39mgresql://…``); when hiding a secret
    needs the plain text, the line comes back plain.
    """
    if not text:
        return text
    scrubbed = _scrub_plain(text, values)
    if "\x1b[" in scrubbed:
        plain = _ANSI.sub("", scrubbed)
        hidden = _scrub_plain(plain, values)
        if hidden != plain:
            return hidden
    return scrubbed


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# A display that shortens a value ends it with an ellipsis (pandas: "...", others: "…").
_ELLIPSIS = re.compile(r"…|\.\.\.")
MIN_SHOWN_PREFIX = 6  # this many leading characters of a secret before an ellipsis count as a leak
MIN_BASE64_CORE = 8  # shorter base64 fragments would mask ordinary text


def derived_forms(value: str) -> set[str]:
    """The ways ``value`` can appear in output: itself, a DSN's password alone, URL-encoded, base64 in
    each of the three byte alignments (standard and URL-safe), and HTML-, JSON- and repr-escaped."""
    if not value or len(value) < MIN_SECRET_LENGTH:
        return set()
    forms = {value}
    password = _dsn_password(value)
    if password:
        forms |= {password, unquote(password)}
    for text in list(forms):
        forms |= {quote(text, safe=""), quote(text), quote_plus(text)}
        forms |= {html.escape(text), html.escape(text, quote=False)}
        forms |= {json.dumps(text)[1:-1], json.dumps(text, ensure_ascii=False)[1:-1], repr(text)[1:-1]}
        forms |= _base64_cores(text)
    return {f for f in forms if len(f) >= MIN_SECRET_LENGTH}


def _dsn_password(value: str) -> str:
    """The password of a ``scheme://user:password@host`` URL, '' when there is none."""
    match = DSN_PASSWORD.search(value)
    return match.group("password") if match else ""


def _base64_cores(text: str) -> set[str]:
    """Base64 text that encodes ``text`` wherever it sits in a longer byte string.

    The 4-character groups that also carry neighbouring bytes differ with the alignment, so each form keeps
    only the groups made of the secret's own bytes.
    """
    data = text.encode("utf-8")
    cores = set()
    for offset in range(3):
        padded = b"\0" * offset + data
        full_groups = len(padded) // 3
        encoded = base64.b64encode(padded[: full_groups * 3]).decode("ascii")
        core = encoded[4 if offset else 0 :]
        if len(core) >= MIN_BASE64_CORE:
            cores |= {core, core.replace("+", "-").replace("/", "_")}
    return cores


@functools.lru_cache(maxsize=64)
def _pattern(values: frozenset[str]) -> re.Pattern[str] | None:
    """One regex matching every derived form of ``values``, longest first."""
    forms = set()
    for value in values:
        forms |= derived_forms(value)
    if not forms:
        return None
    return re.compile("|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True)))


@functools.lru_cache(maxsize=64)
def _prefixes(values: frozenset[str]) -> tuple[str, ...]:
    """Forms long enough that a shortened display of them still shows too much."""
    forms = set()
    for value in values:
        forms |= {f for f in derived_forms(value) if len(f) > MIN_SHOWN_PREFIX}
    return tuple(forms)


def _scrub_plain(text: str, values: Iterable[str]) -> str:
    known = frozenset(v for v in {*_resolved.values(), *values} if v and len(v) >= MIN_SECRET_LENGTH)
    pattern = _pattern(known) if known else None
    if pattern is not None:
        text = pattern.sub(MASK, text)
        text = _scrub_shortened(text, _prefixes(known))
    return DSN_PASSWORD.sub(lambda m: m.group("head") + MASK + m.group("tail"), text)


def _scrub_shortened(text: str, forms: tuple[str, ...]) -> str:
    """Mask the leading part of a secret that a display cut short and ended with an ellipsis."""
    if not forms or ("…" not in text and "..." not in text):
        return text
    cuts = []
    for match in _ELLIPSIS.finditer(text):
        end = match.start()
        longest = 0
        for form in forms:
            for n in range(min(len(form) - 1, end), MIN_SHOWN_PREFIX - 1, -1):
                if n <= longest:
                    break
                if text.endswith(form[:n], 0, end):
                    longest = n
                    break
        if longest:
            cuts.append((end - longest, end))
    for start, end in reversed(cuts):
        text = text[:start] + MASK + text[end:]
    return text


_installed = False


def _install_kernel_scrubber() -> None:
    """In an IPython kernel, route every traceback through scrub() before it is shown or saved."""
    global _installed
    if _installed:
        return
    from opsnb.checks.context import ipython_shell

    shell = ipython_shell()
    if shell is None:
        return

    def show_scrubbed(shell, etype, value, tb, tb_offset=None):
        stb = shell.InteractiveTB.structured_traceback(etype, value, tb, tb_offset=tb_offset)
        stb = [scrub(line) for line in stb]
        shell._showtraceback(etype, scrub(str(value)), stb)
        return stb

    shell.set_custom_exc((Exception,), show_scrubbed)
    _installed = True
