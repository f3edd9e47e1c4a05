"""Unit tests of opsnb.checks.postgres.explain: the generic plan of a normalized statement, never executed."""

from __future__ import annotations

import pytest

from opsnb.checks.postgres import DatabaseError, connect, explain


def _texts(statements):
    return [s.as_string(None) for s in statements]


def test_explain_statements_by_server_version():
    q = 'SELECT * FROM "Order" WHERE "userId" = $1 AND "status" = $2'
    assert _texts(explain.explain_statements(q, 160000)) == [f"EXPLAIN (GENERIC_PLAN, FORMAT JSON) {q}"]
    old = _texts(explain.explain_statements(q + ";", 150004))
    assert old[0] == "SET plan_cache_mode = force_generic_plan"
    assert old[1] == f"PREPARE opsnb_explain AS {q}"
    assert old[2] == "EXPLAIN (FORMAT JSON) EXECUTE opsnb_explain(NULL, NULL)"
    assert _texts(explain.explain_statements("SELECT 1", 150000)) == ["EXPLAIN (FORMAT JSON) SELECT 1"]
    for bad in ('DELETE FROM "Order" WHERE "id" = $1', "SELECT 1; DROP TABLE x", "VACUUM"):
        with pytest.raises(ValueError):
            explain.explain_statements(bad, 150000)


def test_generic_plan_shows_the_seq_scan_of_a_normalized_statement(shop):
    with connect(shop.env) as db:
        plan = explain.explain_generic(db, 'SELECT "id" FROM "Order" WHERE "userId" = $1 LIMIT $2')
        # the session is usable afterwards: nothing prepared is left behind, the setting is back
        assert db.scalar("SELECT count(*) FROM pg_prepared_statements") == 0
        assert db.scalar("SHOW plan_cache_mode") == "auto"
    scans = [n for n in explain.plan_nodes(plan) if n["Node Type"] == "Seq Scan"]
    assert scans and scans[0]["Relation Name"] == "Order" and '"userId"' in scans[0]["Filter"]
    text = explain.plan_text(plan)
    assert "Seq Scan on Order" in text and 'Filter: ("userId" = $1)' in text


def test_a_statement_that_cannot_be_planned_raises_and_leaves_the_session_clean(shop):
    with connect(shop.env) as db:
        with pytest.raises(DatabaseError, match='relation "Nowhere" does not exist'):
            explain.explain_generic(db, 'SELECT "id" FROM "Nowhere" WHERE "userId" = $1')
        assert db.scalar("SELECT count(*) FROM pg_prepared_statements") == 0
        assert db.scalar("SHOW plan_cache_mode") == "auto"
