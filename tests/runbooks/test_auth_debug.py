"""auth-debug end to end on the sandbox.

- nextauth-url fault on: FAIL naming the NEXTAUTH_URL mismatch, the providers' wrong callbackUrl and the
  OAUTH_CALLBACK_ERROR lines in the logs, while the shop's real v4 session token decodes with the right secret.
- fault off, secret named by `nextauth_secret_env` holding a wrong value: FAIL with the "secret changed"
  conclusion only.
- fault off (the drain's history follows the fault), right secret, the default log window: PASS, every check
  concluded, none blind.
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
# every check of the notebook, in runbook order (the order its cells call them)
CHECKS = [
    "auth.error-codes",
    "auth.nextauth-url",
    "auth.nextauth-secret",
    "auth.providers",
    "auth.redirect-uris",
    "auth.endpoints",
    "auth.signed-out-session",
    "auth.csrf-token",
    "auth.session-token",
    "auth.cookies",
    "auth.session-cookie",
    "auth.database-sessions",
    "auth.linked-providers",
]


def problems(manifest: dict) -> dict[str, dict]:
    """Warn and fail conclusions, by check id."""
    return {f["check"]: f for f in manifest["findings"] if f["status"] in ("warn", "fail")}


def conclusion(manifest: dict, check: str) -> dict:
    """The one conclusion of ``check``."""
    [only] = found(manifest, check)
    return only


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
        assert [f["check"] for f in manifest["findings"]] == CHECKS
        failed = problems(manifest)
        assert set(failed) == {"auth.nextauth-url", "auth.redirect-uris", "auth.error-codes"}
        mismatch = failed["auth.nextauth-url"]
        assert (mismatch["status"], mismatch["severity"]) == ("fail", "P1")
        assert mismatch["title"] == "NEXTAUTH_URL differs from the public URL"
        assert sandbox.app_url in mismatch["detail"] and "host differs" in mismatch["detail"]
        assert "localhost:3000" not in mismatch["detail"]  # the value itself is never shown
        redirect = failed["auth.redirect-uris"]
        assert (redirect["status"], redirect["severity"]) == ("fail", "P1")
        assert redirect["title"] == "github and google call back outside this site's redirect URIs"
        assert "redirect_uri_mismatch" in redirect["detail"]
        logged = failed["auth.error-codes"]
        assert (logged["status"], logged["severity"]) == ("fail", "P1")
        assert "OAUTH_CALLBACK_ERROR ×" in logged["title"]
        # the shop's real v4 token decodes with the right secret and the app accepts it
        assert conclusion(manifest, "auth.session-token")["title"] == (
            "The session token decrypts with $NEXTAUTH_SECRET and the app accepts it"
        )

    # fault off: the drain's history no longer holds the callback errors, so the default window is clean
    with sandbox.faults(nextauth_url=False):
        assert sandbox["NEXTAUTH_URL"] == sandbox.app_url
        code, manifest = runs(f"nextauth_secret_env={WRONG_VAR}")
        assert code == 2 and manifest["outcome"] == "FAIL"
        failed = problems(manifest)
        assert list(failed) == ["auth.session-token"]
        changed = failed["auth.session-token"]
        assert (changed["status"], changed["severity"]) == ("fail", "P1")
        assert changed["title"] == f"The session token does not decrypt with ${WRONG_VAR}: the secret changed"
        assert "secret-mismatch" not in changed["title"] and "the app accepts it" in changed["detail"]

        code, manifest = runs()
        assert (code, manifest["outcome"]) == (0, "PASS"), problems(manifest)
        assert [f["check"] for f in manifest["findings"]] == CHECKS
        assert {f["status"] for f in manifest["findings"]} == {"pass"}, [
            (f["check"], f["detail"]) for f in manifest["findings"] if f["status"] != "pass"
        ]
        titles = {f["check"]: f["title"] for f in manifest["findings"]}
        assert titles["auth.error-codes"] == "No NextAuth error code in the logs in the last 60 min"
        assert titles["auth.nextauth-url"] == "NEXTAUTH_URL equals the public URL"
        assert titles["auth.redirect-uris"] == "Every provider calls back to this site's redirect URIs"
        assert (
            titles["auth.session-token"]
            == "The session token decrypts with $NEXTAUTH_SECRET and the app accepts it"
        )
        assert (
            titles["auth.session-cookie"]
            == "The session cookie next-auth.session-token follows the runbook's cookie config"
        )
        assert titles["auth.database-sessions"].endswith("database sessions")

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
