"""NextAuth's Prisma adapter tables ("User", "Account", "Session"), read through the reader role: who is
signed in, and which users a sign-in with another provider would trip (OAuthAccountNotLinked).

Checks ``auth.database-sessions`` and ``auth.linked-providers``: evidence, never faults, so neither is
essential. An app with JWT sessions only has no adapter tables: inconclusive, saying so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opsnb.checks.auth.facts import mask_email
from opsnb.checks.findings import CouldNotLook, check, conclude
from opsnb.checks.postgres import Database, connect

if TYPE_CHECKING:
    import pandas as pd

ADAPTER_TABLES = ("User", "Account", "Session")
DEFAULT_MAX_AGE_DAYS = 30.0  # NextAuth's session.maxAge default
DB_HINT = (
    "point database_url_env at the app's database (as the reader role; the adapter tables must be on its "
    "search_path); an app with JWT sessions only has no adapter tables"
)


def adapter_tables(db: Database) -> list[str]:
    """Which of the Prisma adapter tables ("User", "Account", "Session") exist on the search path."""
    rows = db.rows(
        "SELECT t FROM unnest(%s::text[]) t WHERE to_regclass(quote_ident(t)) IS NOT NULL",
        (list(ADAPTER_TABLES),),
    )
    return [r["t"] for r in rows]


def recent_sessions(
    db: Database, limit: int = 20, max_age_days: float = DEFAULT_MAX_AGE_DAYS
) -> pd.DataFrame:
    """The newest database sessions (by expiry), user masked. NextAuth pushes "expires" to now + maxAge
    (default 30 days) when a session is used (at most once per updateAge, default 24 h), so expires - maxAge
    estimates the user's last sign-in or activity."""
    frame = db.query(
        """
        SELECT s."userId" AS user_id, u."email" AS email, s."expires" AS expires,
               s."expires" - make_interval(secs => %s) AS last_active_est, s."expires" > now() AS active
        FROM "Session" s LEFT JOIN "User" u ON u."id" = s."userId"
        ORDER BY s."expires" DESC LIMIT %s
        """,
        (max_age_days * 86400, limit),
    )
    frame["email"] = frame["email"].map(mask_email)
    return frame


def session_counts(db: Database) -> dict[str, int]:
    """Active and expired database sessions, and users created in the last 24 h (recent sign-ups)."""
    row = db.rows(
        """
        SELECT (SELECT count(*) FROM "Session" WHERE "expires" > now()) AS active,
               (SELECT count(*) FROM "Session" WHERE "expires" <= now()) AS expired,
               (SELECT count(*) FROM "User" WHERE "createdAt" > now() - interval '24 hours') AS new_users_24h
        """
    )[0]
    return {k: int(v) for k, v in row.items()}


def same_email_providers(db: Database, limit: int = 50) -> pd.DataFrame:
    """Emails (case-insensitive) whose users are linked to more than one provider: OAuthAccountNotLinked candidates."""
    frame = db.query(
        """
        SELECT lower(u."email") AS email, count(DISTINCT u."id") AS users,
               string_agg(DISTINCT a."provider", ', ' ORDER BY a."provider") AS providers
        FROM "User" u JOIN "Account" a ON a."userId" = u."id"
        WHERE u."email" IS NOT NULL
        GROUP BY lower(u."email")
        HAVING count(DISTINCT a."provider") > 1
        ORDER BY users DESC, email
        LIMIT %s
        """,
        (limit,),
    )
    frame["email"] = frame["email"].map(mask_email)
    return frame


def _skipped(database_url_env: str) -> None:
    """CouldNotLook when the operator left database_url_env empty (the step is skipped)."""
    if not database_url_env:
        raise CouldNotLook("database_url_env is empty: the database step is skipped", DB_HINT)


def _require_adapter_tables(db: Database) -> None:
    """CouldNotLook unless all three adapter tables exist (JWT-only apps have none)."""
    tables = adapter_tables(db)
    if set(tables) != set(ADAPTER_TABLES):
        raise CouldNotLook(
            f"found {', '.join(tables) or 'none'} of the Prisma adapter tables User, Account, Session: "
            "sessions live only in JWT cookies, or the tables are elsewhere",
            DB_HINT,
        )


@check("auth.database-sessions", essential=False, hint=DB_HINT)
def check_database_sessions(database_url_env: str, limit: int = 20) -> pd.DataFrame:
    """Active and expired database sessions and recent sign-ups; the newest sessions as evidence."""
    _skipped(database_url_env)
    with connect(database_url_env) as db:
        _require_adapter_tables(db)
        counts = session_counts(db)
        sessions = recent_sessions(db, limit)
    return conclude(
        "pass",
        f"{counts['active']} active and {counts['expired']} expired database sessions",
        detail=f"{counts['new_users_24h']} users created in the last 24 h; the newest {len(sessions)} sessions "
        "below (last activity estimated as expires - 30 days)",
        evidence=sessions,
    )


@check("auth.linked-providers", essential=False, hint=DB_HINT)
def check_linked_providers(database_url_env: str, limit: int = 50) -> pd.DataFrame:
    """Emails whose users are linked to several providers: the users an OAuthAccountNotLinked can hit."""
    _skipped(database_url_env)
    with connect(database_url_env) as db:
        _require_adapter_tables(db)
        linked = same_email_providers(db, limit)
    if linked.empty:
        return conclude("pass", "No email is linked to more than one provider", evidence=linked)
    return conclude(
        "pass",
        f"{len(linked)} email(s) are linked to several providers (OAuthAccountNotLinked candidates)",
        detail="these users already own accounts with more than one provider; a sign-in with a provider not "
        "linked to the existing user raises OAuthAccountNotLinked. Candidates, not faults.",
        evidence=linked,
    )
