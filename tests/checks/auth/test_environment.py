"""opsnb.checks.auth.environment: plain variables from the kernel or the run's env file, and the NextAuth version."""

from __future__ import annotations

import os

from opsnb.checks.auth.environment import detect_version, env_names, env_value


def test_detect_version() -> None:
    assert detect_version(["NEXTAUTH_URL", "NEXTAUTH_SECRET"])[0] == "v4"
    assert detect_version(["AUTH_SECRET", "AUTH_TRUST_HOST"])[0] == "v5"
    assert detect_version(["PATH"])[0] == "unknown"
    version, why = detect_version(["NEXTAUTH_SECRET", "AUTH_SECRET"])
    assert version == "v4" and "v5 ones too (AUTH_SECRET)" in why
    # cookies the app really sets win over variables
    assert detect_version(["NEXTAUTH_SECRET"], ["__Host-authjs.csrf-token"])[0] == "v5"
    assert detect_version(["AUTH_SECRET"], ["next-auth.csrf-token"])[0] == "v4"


def test_env_value_falls_back_to_the_env_file(monkeypatch, tmp_path) -> None:
    env_file = tmp_path / "sandbox.env"
    env_file.write_text("OPSNB_TEST_ONLY_IN_FILE=https://from.file\nOPSNB_TEST_EMPTY_IN_FILE=\n")
    os.chmod(env_file, 0o600)
    monkeypatch.setenv("OPSNB_ENV_FILE", str(env_file))
    monkeypatch.delenv("OPSNB_TEST_ONLY_IN_FILE", raising=False)
    assert env_value("OPSNB_TEST_ONLY_IN_FILE") == "https://from.file"
    assert "OPSNB_TEST_ONLY_IN_FILE" in env_names() and "OPSNB_TEST_EMPTY_IN_FILE" not in env_names()
    monkeypatch.setenv("OPSNB_TEST_ONLY_IN_FILE", "https://from.kernel")
    assert env_value("OPSNB_TEST_ONLY_IN_FILE") == "https://from.kernel"  # the kernel's environment wins
    assert env_value("") is None


def test_a_refused_env_file_counts_as_empty(monkeypatch, tmp_path) -> None:
    env_file = tmp_path / "loose.env"
    env_file.write_text("OPSNB_TEST_LOOSE=1\n")
    os.chmod(env_file, 0o644)  # readable by others: the env file reader refuses it
    monkeypatch.setenv("OPSNB_ENV_FILE", str(env_file))
    assert env_value("OPSNB_TEST_LOOSE") is None
