"""Benchmark: slow-queries' analysis with 5 000 distinct statements in pg_stat_statements.

    .venv/bin/python bench/slow_queries_scale.py [--statements 5000] [--repeat 3]

Starts its own throwaway PostgreSQL (opsnb.sandbox.postgres.LocalPostgres, pg_stat_statements.max = 10 000),
creates a 20 000-row table with 100 integer columns and runs ``--statements`` structurally distinct SELECTs
on it (``SELECT cI, cJ FROM wide WHERE …``: pg_stat_statements normalizes constants, so distinct statements
need distinct column choices); 300 of them filter on an unindexed column, so the table also looks like it
misses an index. Then, in the same run:

- opsnb: what the notebook's analysis cells call — the pg_stat_statements probe and check, top by mean
  and by total, slow statements, the missing-index check (sequential-scan counters + generic-plan EXPLAIN
  of the costliest statements on the table) and the bar chart;
- anchor: exactly the SQL those calls sent (recorded), replayed bare through one psycopg connection.

Prints the best of ``--repeat`` times, the ratio opsnb/bare and the issue's target (analysis ≤ 2 s).
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

COLUMNS = 100
ROWS = 20_000
SEQ_SCANS = 300


def start_cluster(folder: Path):
    from opsnb.sandbox.postgres import LocalPostgres, cluster_parent

    where, _ = cluster_parent(folder / "pg")  # a folder the server user can reach (as root: owned by it)
    pg = LocalPostgres(where)
    password = secrets.token_urlsafe(12)
    pg.init(password)
    with open(pg.datadir / "postgresql.conf", "a") as conf:
        conf.write("pg_stat_statements.max = 10000\n")
    pg.start()
    return pg, pg.dsn("opsnb_admin", password, "postgres")


def load(dsn: str, statements: int) -> float:
    import psycopg
    from psycopg import sql

    cols = sql.SQL(", ").join(sql.SQL("{} int").format(sql.Identifier(f"c{i}")) for i in range(COLUMNS))
    values = sql.SQL(", ").join(sql.SQL("(g * {}) % 1000").format(sql.Literal(i + 7)) for i in range(COLUMNS))
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.execute(sql.SQL("CREATE TABLE wide (id int PRIMARY KEY, {})").format(cols))
        conn.execute(
            sql.SQL("INSERT INTO wide SELECT g, {} FROM generate_series(1, {}) g").format(
                values, sql.Literal(ROWS)
            )
        )
        conn.execute("VACUUM ANALYZE wide")
        conn.execute("SELECT pg_stat_statements_reset()")
        t0 = time.perf_counter()
        # SEQ_SCANS statements filter on an unindexed column (sequential scans), the rest look rows up by key
        pairs = [(i, j) for j in range(COLUMNS) for i in range(COLUMNS)][:statements]
        for n, (i, j) in enumerate(pairs):
            ci, cj = sql.Identifier(f"c{i}"), sql.Identifier(f"c{j}")
            if n < SEQ_SCANS:
                query = sql.SQL("SELECT {}, {} FROM wide WHERE {} = %s LIMIT 1").format(ci, cj, cj)
                conn.execute(query, (n % 1000,)).fetchall()
            else:
                conn.execute(
                    sql.SQL("SELECT {}, {} FROM wide WHERE id = %s").format(ci, cj), (n % ROWS,)
                ).fetchall()
        return time.perf_counter() - t0


class Recorder:
    """Wraps an opsnb Database: records every statement sent (for the bare replay)."""

    def __init__(self, db):
        self.db = db
        self.server_version = db.server_version  # read from the connection: no statement sent
        self.sent: list[tuple[str, object]] = []
        for name in ("query", "rows", "scalar", "execute"):
            setattr(self, name, self._wrap(getattr(db, name)))

    def _wrap(self, fn):
        def call(sql, params=None):
            self.sent.append((sql, params))
            return fn(sql, params)

        return call


def analysis(db) -> None:
    """The notebook's analysis cells for statements and indexes (same functions, same order)."""
    from opsnb.checks.postgres import indexes, statements

    seen = statements.statement_stats(db)
    statements.check_statement_stats(seen)
    top_mean = statements.top_statements(db, seen, by="mean", limit=10)
    statements.check_slow_statements(db, seen)
    top_total = statements.top_statements(db, seen, by="total", limit=10)
    statements.plot_top_statements(top_total, value="total_ms", limit=10)
    missing = indexes.check_missing_indexes(db, seen)
    indexes.show_plan(missing)
    assert len(top_mean) == 10


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--statements", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import contextlib
    import io

    import psycopg

    from opsnb.checks import findings
    from opsnb.checks.postgres import connect

    with tempfile.TemporaryDirectory(prefix="opsnb-bench-") as tmp:
        pg, dsn = start_cluster(Path(tmp))
        try:
            seconds = load(dsn, args.statements)
            os.environ["OPSNB_BENCH_DATABASE_URL"] = dsn
            with psycopg.connect(dsn) as conn:
                distinct = conn.execute(
                    """SELECT count(*) FROM pg_stat_statements WHERE query LIKE 'SELECT "c%", "c%" FROM wide%'"""
                ).fetchone()[0]
            print(f"{distinct} distinct statements in pg_stat_statements (generated in {seconds:.1f} s)")

            db = connect("OPSNB_BENCH_DATABASE_URL")
            with contextlib.redirect_stdout(io.StringIO()):
                analysis(Recorder(db))  # warm-up: imports (pandas, matplotlib), first plans
            ours, sent = [], []
            for _ in range(args.repeat):
                findings.clear()
                rec = Recorder(db)
                t0 = time.perf_counter()
                with contextlib.redirect_stdout(io.StringIO()):
                    analysis(rec)
                ours.append(time.perf_counter() - t0)
                sent = rec.sent
            missing = [c.title for c in findings.all_conclusions() if c.check == "postgres.missing-indexes"]
            db.close()

            bare = []
            with psycopg.connect(dsn, autocommit=True) as conn:
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    for sql, params in sent:
                        cur = conn.execute(sql, params)
                        if cur.description:
                            cur.fetchall()
                    bare.append(time.perf_counter() - t0)
        finally:
            pg.remove()

    best, anchor = min(ours), min(bare)
    print(f"statements sent by the analysis: {len(sent)}; missing indexes: {missing}")
    print(f"opsnb analysis cells : {best * 1000:8.1f} ms  (best of {args.repeat})")
    print(f"same SQL, bare psycopg: {anchor * 1000:8.1f} ms  (best of {args.repeat})")
    print(f"ratio opsnb/bare      : {best / anchor:8.2f}x")
    print(f"target (issue #4)     : analysis <= 2 s -> {'met' if best <= 2 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
