"""auth-debug end to end on the sandbox.

- nextauth-url fault on: FAIL naming the NEXTAUTH_URL mismatch, the providers' wrong callbackUrl and the
  OAUTH_CALLBACK_ERROR lines in the logs, while the shop's real v4 session token decodes with the right secret.
- fault off, secret named by `nextauth_secret_env` holding a wrong value: FAIL with the "secret changed" finding only.
- fault off (the drain's history follows the fault), right secret, the default log window: PASS.
- bad parameters are refused before anything runs; the notebook passes nbval (test_nbval.py); secrets and
  the token's email never reach the outputs or the terminal.
"""

from __future__ import annotations

import os
import secrets
import subprocess

from runbooks.runbook_run import OPSNB, found, run_runbook

RUNBOOK = "auth-debug"
WRONG_VAR = "OPSNB_TEST_WRONG_NEXTAUTH_SECRET"


def failures(manifest: dict) -> dict[str, dict]:
    """Findings above info, by title."""
    return {f["title"]: f for f in manifest["findings"] if f["severity"] != "info"}


def token_email(sandbox) -> str:
    """The email inside the sandbox's session token, read with the sandbox's own decoder."""
    from opsnb.sandbox import nextauth

    return nextauth.decode_session(sandbox["SANDBOX_SESSION_TOKEN"], sandbox["NEXTAUTH_SECRET"])["email"]


def test_finds_the_url_fault_and_a_changed_secret_and_passes_when_fixed(sandbox, tmp_path):
    wrong = secrets.token_urlsafe(32)
    out, terminal = tmp_path / "out", []

    def runs(*params: str) -> tuple[int, dict]:
        return run_runbook(RUNBOOK, out, *params, env={WRONG_VAR: wrong}, terminal=terminal)

    with sandbox.faults(nextauth_url=True):
        assert sandbox["NEXTAUTH_URL"] != sandbox.app_url  # the planted trouble
        code, manifest = runs("log_window_minutes=1440")
        assert code == 2 and manifest["outcome"] == "FAIL"
        failed = failures(manifest)
        mismatch = failed["NEXTAUTH_URL: equals the public URL"]
        assert mismatch["severity"] == "P1"
        assert sandbox.app_url in mismatch["detail"] and "host differs" in mismatch["detail"]
        assert failed["provider google: callbackUrl is an expected redirect URI"]["severity"] == "P1"
        assert (
            "redirect_uri_mismatch"
            in failed["provider google: callbackUrl is an expected redirect URI"]["detail"]
        )
        assert failed["NextAuth error OAUTH_CALLBACK_ERROR in the logs"]["severity"] == "P1"
        # the shop's real v4 token decodes with the right secret and the app accepts it
        assert "session token decrypts and the app accepts it" in {
            f["title"] for f in found(manifest, "token")
        }
        assert {f["check"] for f in failed.values()} == {"config", "providers", "logs"}

    # fault off: the drain's history no longer holds the callback errors, so the default window is clean
    with sandbox.faults(nextauth_url=False):
        assert sandbox["NEXTAUTH_URL"] == sandbox.app_url
        code, manifest = runs(f"nextauth_secret_env={WRONG_VAR}")
        assert code == 2 and manifest["outcome"] == "FAIL"
        failed = failures(manifest)
        assert list(failed) == [f"session token does not decrypt with ${WRONG_VAR}: the secret changed"]
        assert failed[next(iter(failed))]["severity"] == "P1"

        code, manifest = runs()
        assert (code, manifest["outcome"]) == (0, "PASS"), failures(manifest)
        assert "no NextAuth error codes in the logs" in {f["title"] for f in found(manifest, "logs")}
        assert "NEXTAUTH_URL: equals the public URL" not in failures(manifest)
        assert "session token decrypts and the app accepts it" in {
            f["title"] for f in found(manifest, "token")
        }
        assert "database sessions" in {f["title"] for f in found(manifest, "database")}

    # nothing secret (nor the token's email in clear) in any artifact or on the terminal
    leaks = [sandbox["NEXTAUTH_SECRET"], sandbox["SANDBOX_SESSION_TOKEN"], wrong, token_email(sandbox)]
    texts = [p.read_text(errors="replace") for p in (tmp_path / "out").rglob("*") if p.is_file()] + terminal
    assert len(texts) >= 9
    for value in leaks:
        assert not any(value in text for text in texts)


def test_bad_parameters_are_refused(sandbox, tmp_path):
    runs_env = {**os.environ, "OPSNB_OUTPUTS": str(tmp_path / "out")}
    for args in (
        ["-p", "production=maybe"],
        ["-p", "no_such_parameter=1"],
        ["-p", "session_token_env=OPSNB_UNSET_VAR"],
    ):
        proc = subprocess.run(
            [OPSNB, "run", RUNBOOK, "--env", "sandbox", *args],
            env=runs_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 3, (args, proc.stdout, proc.stderr)
    assert not (tmp_path / "out" / RUNBOOK).exists()
