"""opsnb.checks.triage.env_vars (runbook Cause 3): required names against the local environment and against
the Vercel stand-in's project over real HTTP; values are never read."""

from __future__ import annotations

import os

from opsnb.checks import findings
from opsnb.checks.triage import env_vars


def test_local_names_only(monkeypatch):
    monkeypatch.setenv("OPSNB_TEST_PRESENT", "super-secret-value")
    monkeypatch.delenv("OPSNB_TEST_MISSING", raising=False)
    table = env_vars.check_env_vars(["OPSNB_TEST_PRESENT", "OPSNB_TEST_MISSING"])
    assert table["present"].tolist() == [True, False] and set(table["where"]) == {"local environment"}
    [c] = findings.all_conclusions()
    assert (c.check, c.status, c.severity) == ("triage.env-vars", "fail", "P1")
    assert c.title == "Missing environment variables: OPSNB_TEST_MISSING"
    assert "super-secret-value" not in repr(table) + repr(findings.all_conclusions())
    assert os.environ["OPSNB_TEST_PRESENT"]


def test_vercel_project_production_names(burst, token_env):
    table = env_vars.check_env_vars(
        ["DATABASE_URL", "NEXTAUTH_URL", "OPSNB_NOT_IN_VERCEL"], burst.base, token_env, "shop"
    )
    [c] = findings.all_conclusions()
    assert c.severity == "P1" and c.title == "Missing environment variables: OPSNB_NOT_IN_VERCEL"
    assert "Vercel project shop (production)" in c.detail and table["present"].tolist() == [True, True, False]
    findings.clear()
    env_vars.check_env_vars(["DATABASE_URL", "STRIPE_WEBHOOK_SECRET"], burst.base, token_env, "shop")
    assert [(c.status, c.title) for c in findings.all_conclusions()] == [
        ("pass", "Every required environment variable is set")
    ]


def test_unreadable_vercel_or_nothing_to_check_is_inconclusive(burst, monkeypatch, token_env):
    monkeypatch.setenv(token_env, "wrong-token")
    assert env_vars.check_env_vars(["DATABASE_URL"], burst.base, token_env, "shop") is None
    [c] = findings.all_conclusions()
    assert c.status == "inconclusive" and c.essential and "HTTP 401" in c.detail
    findings.clear()
    env_vars.check_env_vars([])
    [c] = findings.all_conclusions()
    assert c.status == "inconclusive" and "required_env_vars is empty" in c.detail
