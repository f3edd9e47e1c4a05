"""EXPLAIN of a statement as pg_stat_statements records it (constants normalized to $n): its generic plan.

Never ANALYZE: nothing is executed. Only single read statements are explained.
"""

from __future__ import annotations

import json
import re
from typing import Any

from psycopg import sql

from opsnb.checks.postgres.session import Database, DatabaseError

_PARAM = re.compile(r"\$(\d+)")
_READ_ONLY_START = re.compile(r"^\s*(select|with|values|table)\b", re.IGNORECASE)


def explain_statements(query: str, server_version_num: int) -> list[sql.Composable]:
    """The SQL that shows the generic plan of a pg_stat_statements text.

    PostgreSQL 16+: ``EXPLAIN (GENERIC_PLAN)`` plans with unknown parameters directly. Older servers:
    PREPARE the text (the parameter types are inferred from context), force the generic plan with
    ``plan_cache_mode = force_generic_plan`` (PG12+) and EXPLAIN EXECUTE it with NULLs. With a generic
    plan the planner never looks at the values, so NULL cannot turn the plan into "One-Time Filter:
    false" the way a literal NULL substitution would; and no representative value has to be guessed.

    The statement text is SQL already (pg_stat_statements' own record of what ran), so it is the one piece
    taken as sql.SQL as it stands, after the check that it is a single read statement; everything around
    it is fixed.
    """
    text = query.strip().rstrip(";").strip()
    if ";" in text or not _READ_ONLY_START.match(text):
        raise ValueError("only a single SELECT/WITH statement is explained")
    statement = sql.SQL(text)
    n_params = max((int(n) for n in _PARAM.findall(text)), default=0)
    if server_version_num >= 160000:
        return [sql.SQL("EXPLAIN (GENERIC_PLAN, FORMAT JSON) {}").format(statement)]
    if n_params == 0:
        return [sql.SQL("EXPLAIN (FORMAT JSON) {}").format(statement)]
    return [
        sql.SQL("SET plan_cache_mode = force_generic_plan"),
        sql.SQL("PREPARE opsnb_explain AS {}").format(statement),
        sql.SQL("EXPLAIN (FORMAT JSON) EXECUTE opsnb_explain({})").format(
            sql.SQL(", ").join([sql.NULL] * n_params)
        ),
    ]


def explain_generic(db: Database, query: str) -> dict[str, Any]:
    """The generic plan (EXPLAIN's JSON "Plan" node) of a normalized statement; nothing is executed.

    ValueError for anything but a single read statement; DatabaseError when the server cannot plan it
    (a table on another search path, no privilege on it).
    """
    steps = explain_statements(query, db.server_version)
    try:
        for step in steps[:-1]:
            db.execute(step)
        raw = db.scalar(steps[-1])
    finally:
        if len(steps) > 1:
            # the session stays usable for the next statement: nothing prepared left, the setting back
            for cleanup in ("DEALLOCATE ALL", "RESET plan_cache_mode"):
                try:
                    db.execute(cleanup)
                except DatabaseError:
                    pass
    plan = json.loads(raw) if isinstance(raw, str) else raw
    return plan[0]["Plan"]


def plan_nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """Every node of an EXPLAIN JSON plan, depth first."""
    out = [plan]
    for child in plan.get("Plans", []):
        out += plan_nodes(child)
    return out


def plan_text(plan: dict[str, Any], depth: int = 0) -> str:
    """A compact text rendering of an EXPLAIN JSON plan (node, relation/index, cost, rows, conditions)."""
    head = plan.get("Node Type", "?")
    if plan.get("Index Name"):
        head += f" using {plan['Index Name']}"
    if plan.get("Relation Name"):
        head += f" on {plan['Relation Name']}"
    head += f"  (cost={plan.get('Startup Cost', 0)}..{plan.get('Total Cost', 0)} rows={plan.get('Plan Rows', '?')})"
    lines = [("  " * depth) + ("-> " if depth else "") + head]
    for key in ("Index Cond", "Filter", "Join Filter", "Hash Cond", "Sort Key"):
        if plan.get(key):
            value = plan[key] if isinstance(plan[key], str) else ", ".join(plan[key])
            lines.append(("  " * depth) + f"     {key}: {value}")
    for child in plan.get("Plans", []):
        lines.append(plan_text(child, depth + 1))
    return "\n".join(lines)
