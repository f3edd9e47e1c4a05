"""Secrets never show themselves and are scrubbed from text."""

from __future__ import annotations

import pytest

from opsnb.checks import secrets
from opsnb.checks.secrets import MissingSecret, Secret, scrub, secret


def test_secret_prints_masked(monkeypatch) -> None:
    monkeypatch.setenv("OPSNB_T_SECRET", "s3cr3t-value-xyz")
    s = secret("OPSNB_T_SECRET")
    assert str(s) == "***" and f"{s}" == "***" and f"{s:>10}" == "***"
    assert "s3cr3t" not in repr(s) and repr(s) == "Secret(OPSNB_T_SECRET=***)"
    assert s.reveal() == "s3cr3t-value-xyz"
    assert scrub("token=s3cr3t-value-xyz!") == "token=***!"


def test_missing_secret_names_variable(monkeypatch) -> None:
    monkeypatch.delenv("OPSNB_T_MISSING", raising=False)
    monkeypatch.delenv("OPSNB_ENV_FILE", raising=False)
    with pytest.raises(MissingSecret, match=r"\$OPSNB_T_MISSING is not set"):
        secret("OPSNB_T_MISSING")


def test_secret_from_env_file(tmp_path, monkeypatch) -> None:
    path = tmp_path / "k.env"
    path.write_text("OPSNB_T_FILE=from-file-123\n")
    path.chmod(0o600)
    monkeypatch.delenv("OPSNB_T_FILE", raising=False)
    monkeypatch.setenv("OPSNB_ENV_FILE", str(path))
    assert secret("OPSNB_T_FILE").reveal() == "from-file-123"


@pytest.mark.parametrize(
    "text,expected",
    [
        ("postgresql://app:hunter2x@db:5432/shop", "postgresql://app:***@db:5432/shop"),
        ("redis://:pw1234@cache:6379", "redis://:***@cache:6379"),
        ("see https://example.com/path?q=1", "see https://example.com/path?q=1"),
        ("s3://bucket/key", "s3://bucket/key"),
    ],
)
def test_dsn_passwords_scrubbed(text: str, expected: str) -> None:
    assert scrub(text) == expected


def test_short_values_not_registered() -> None:
    before = dict(secrets._resolved)
    secrets.register("ab", "SHORT")
    assert secrets._resolved == before
    assert isinstance(Secret("X", "v"), Secret)


def test_kernel_tracebacks_are_scrubbed(monkeypatch, capsys) -> None:
    """In an IPython shell, an exception carrying a resolved secret shows *** in its traceback and message."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    monkeypatch.setattr(secrets, "_installed", False)
    monkeypatch.setenv("OPSNB_T_KERNEL", "kernel-canary-77ab")
    monkeypatch.setattr("IPython.get_ipython", lambda: shell)
    try:
        secret("OPSNB_T_KERNEL")
        shell.run_cell(
            "from opsnb.checks.secrets import secret\nraise ValueError('bad ' + secret('OPSNB_T_KERNEL').reveal())"
        )
        shell.run_cell("raise RuntimeError('postgresql://app:pw-in-dsn-123@db/shop')")
    finally:
        shell.set_custom_exc((), None)
        InteractiveShell.clear_instance()
    out = capsys.readouterr()
    text = out.out + out.err
    assert "ValueError" in text and "RuntimeError" in text
    assert "kernel-canary-77ab" not in text and "pw-in-dsn-123" not in text
    assert "bad ***" in text and "postgresql://app:***@db/shop" in text
