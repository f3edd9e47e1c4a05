"""PostgreSQL checks by concern (PgHero-style): one module per concern, one query per function."""

from opsnb.checks.postgres.session import Database, DatabaseError, connect

__all__ = ["Database", "DatabaseError", "connect"]
