"""opsnb.checks.auth.database: the Prisma adapter tables on a real PostgreSQL (the pg_cluster fixture)."""

from __future__ import annotations

import pytest

from opsnb.checks import findings
from opsnb.checks.auth import database

DB_VAR = "OPSNB_TEST_AUTH_DB"
ADAPTER_DDL = """
CREATE TABLE "User" ("id" TEXT PRIMARY KEY, "email" TEXT, "createdAt" TIMESTAMP(3) NOT NULL DEFAULT now());
CREATE TABLE "Account" ("id" TEXT PRIMARY KEY, "userId" TEXT NOT NULL, "provider" TEXT NOT NULL);
CREATE TABLE "Session" ("id" TEXT PRIMARY KEY, "userId" TEXT NOT NULL, "expires" TIMESTAMP(3) NOT NULL);
INSERT INTO "User" VALUES ('u1', 'Ann.Lee@example.com'), ('u2', 'ann.lee@example.com'), ('u3', 'bo@example.com'),
                          ('u4', 'cy@example.com');
UPDATE "User" SET "createdAt" = now() - interval '3 days' WHERE "id" <> 'u4';
INSERT INTO "Account" VALUES ('a1', 'u1', 'google'), ('a2', 'u2', 'github'), ('a3', 'u3', 'google'),
                             ('a4', 'u4', 'google'), ('a5', 'u4', 'github');
INSERT INTO "Session" VALUES ('s1', 'u1', now() + interval '29 days'), ('s2', 'u3', now() - interval '1 day');
"""


def only() -> findings.Conclusion:
    [conclusion] = findings.all_conclusions()
    return conclusion


@pytest.fixture(scope="module")
def auth_db(pg_cluster):
    """(a database with the adapter tables, one without them)."""
    import psycopg

    with psycopg.connect(pg_cluster.dsn, autocommit=True) as conn:
        for name in ("opsnb_auth_unit", "opsnb_auth_empty"):
            conn.execute(f"DROP DATABASE IF EXISTS {name}")
            conn.execute(f"CREATE DATABASE {name}")
    with psycopg.connect(pg_cluster.dsn_for("opsnb_auth_unit"), autocommit=True) as conn:
        conn.execute(ADAPTER_DDL)
    return pg_cluster.dsn_for("opsnb_auth_unit"), pg_cluster.dsn_for("opsnb_auth_empty")


def test_database_sessions(auth_db, monkeypatch) -> None:
    monkeypatch.setenv(DB_VAR, auth_db[0])
    sessions = database.check_database_sessions(DB_VAR)
    found = only()
    assert (found.check, found.status, found.essential) == ("auth.database-sessions", "pass", False)
    assert found.title == "1 active and 1 expired database sessions"
    assert found.detail.startswith("1 users created in the last 24 h")
    assert list(sessions["user_id"]) == ["u1", "u3"] and list(sessions["active"]) == [True, False]
    assert list(sessions["email"]) == ["A***@example.com", "b***@example.com"]
    # last activity ≈ expires - 30 days: about a day ago for u1
    assert abs((sessions.loc[0, "expires"] - sessions.loc[0, "last_active_est"]).days - 30) <= 1


def test_emails_linked_to_several_providers(auth_db, monkeypatch) -> None:
    monkeypatch.setenv(DB_VAR, auth_db[0])
    linked = database.check_linked_providers(DB_VAR)
    assert (only().check, only().status) == ("auth.linked-providers", "pass")
    assert only().title == "2 email(s) are linked to several providers (OAuthAccountNotLinked candidates)"
    # two users share ann.lee's email (case differs) across google and github; cy linked both to one user
    rows = {r["email"]: (r["users"], r["providers"]) for r in linked.to_dict(orient="records")}
    assert rows == {"a***@example.com": (2, "github, google"), "c***@example.com": (1, "github, google")}


def test_without_adapter_tables_it_is_inconclusive(auth_db, monkeypatch) -> None:
    monkeypatch.setenv(DB_VAR, auth_db[1])
    database.check_database_sessions(DB_VAR)
    database.check_linked_providers(DB_VAR)
    assert [(c.status, c.essential) for c in findings.all_conclusions()] == [("inconclusive", False)] * 2
    assert "found none of the Prisma adapter tables" in findings.all_conclusions()[0].detail
    assert findings.verdict() == "PASS"


def test_unreachable_or_skipped_is_inconclusive(monkeypatch) -> None:
    monkeypatch.setenv(DB_VAR, "postgresql://nobody:pw@127.0.0.1:9/none?connect_timeout=2")
    database.check_database_sessions(DB_VAR)
    assert only().status == "inconclusive" and f"cannot connect to ${DB_VAR}" in only().detail
    assert "pw@" not in only().detail
    findings.clear()
    database.check_linked_providers("")
    assert only().status == "inconclusive" and "database_url_env is empty" in only().detail
