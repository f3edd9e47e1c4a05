"""The one dotenv parser: ``KEY=VALUE`` files that hold secrets (the runner's env_file, the sandbox's
sandbox.env, the kernel's $OPSNB_ENV_FILE in JupyterLab). Shared by the runner and the checks."""

from __future__ import annotations

import stat
from pathlib import Path

from opsnb.errors import ConfigError


def read_utf8(path: Path, label: str, max_bytes: int | None = None) -> str:
    """The text of ``path``; ConfigError naming ``label`` when unreadable, too large or not UTF-8."""
    try:
        if max_bytes is not None and path.stat().st_size > max_bytes:
            raise ConfigError(f"{label}: larger than {max_bytes} bytes, refusing to read it")
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {label}: {exc.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{label} line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x})") from None


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE pairs of a dotenv file; refused when missing or readable by others."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ConfigError(f"env file {path} does not exist") from None
    if stat.S_IMODE(st.st_mode) & 0o077:
        mode = oct(stat.S_IMODE(st.st_mode))[2:]
        raise ConfigError(f"env file {path} has mode {mode}, refusing: it holds secrets (chmod 600 {path})")
    out: dict[str, str] = {}
    for number, line in enumerate(read_utf8(path, f"env file {path}").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        if not sep or not key.strip().isidentifier():
            raise ConfigError(f"env file {path} line {number}: expected KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        out[key.strip()] = value
    return out
