"""Benchmark: restore-test's restore vs raw `pg_restore -j2` vs the runbook's `gunzip | psql`, same dump, same run.

Starts a private PostgreSQL, seeds the sandbox shop at a large scale (plain SQL ≥ 200 MB), dumps it once as
custom format and once as gzip'd plain SQL, then times, each into a fresh database:
  A. restore-test: opsnb.checks.backups.restore.restore_and_verify() as the CREATEDB role (create + pg_restore -j2; its
     verification and drop are printed apart),
  B. raw: createdb + `pg_restore -j2` as the superuser,
  C. the runbook's path: createdb + `gunzip -c | psql`.
Prints the median of the per-round ratios A/B (goal ≤ 1.10) and A/C (goal < 1). Usage: .venv/bin/python bench/restore.py [--scale N] [--rounds R]
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from opsnb.checks.backups import dumps, restore, tools  # noqa: E402
from opsnb.sandbox import seed  # noqa: E402
from opsnb.sandbox.postgres import LocalPostgres, cluster_parent  # noqa: E402

MB = 1024 * 1024


def sh(cmd: list[str] | str, env: dict[str, str], timeout: float = 900) -> None:
    subprocess.run(
        cmd,
        env=env,
        check=True,
        timeout=timeout,
        shell=isinstance(cmd, str),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=int, default=900_000, help="orders (900 000 ≈ 210 MB of plain SQL)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()

    folder, _ = cluster_parent(Path(tempfile.mkdtemp(prefix="opsnb-bench-")) / "pg")
    pg = LocalPostgres(folder)
    pw = {k: secrets.token_urlsafe(12) for k in ("admin", "app", "maint")}
    work = Path(tempfile.mkdtemp(prefix="opsnb-bench-files-"))
    try:
        pg.init(pw["admin"])
        pg.start()
        admin = pg.dsn("opsnb_admin", pw["admin"])
        seed.create_roles_and_db(admin, pw["app"], pw["maint"])
        t = time.monotonic()
        seed.seed_shop(
            pg.dsn("opsnb_admin", pw["admin"], "shop"),
            pg.dsn("shop_app", pw["app"], "shop"),
            args.scale,
            True,
        )
        print(f"seeded {args.scale} orders in {time.monotonic() - t:.1f} s")
        os.environ.update(
            {
                "OPSNB_BENCH_SRC": pg.dsn("shop_app", pw["app"], "shop"),
                "OPSNB_BENCH_MAINT": pg.dsn("opsnb_maint", pw["maint"]),
                "OPSNB_RUN_ID": "bench",
            }
        )
        bindir = str(pg.bindir)
        custom = dumps.dump_database("OPSNB_BENCH_SRC", work, fmt="custom", pg_bindir=bindir, log=print)
        time.sleep(1)  # distinct file name
        plain = dumps.dump_database("OPSNB_BENCH_SRC", work, fmt="plain-gzip", pg_bindir=bindir, log=print)
        plain_bytes = 0
        import gzip

        with gzip.open(plain.path, "rb") as gz:
            while block := gz.read(8 * MB):
                plain_bytes += len(block)
        print(
            f"dump: custom {custom.size / MB:.1f} MB, plain SQL {plain_bytes / MB:.1f} MB (gzip {plain.size / MB:.1f} MB)"
        )

        admin_env = tools.libpq_env(admin, dbname="postgres")

        def fresh(name: str) -> dict[str, str]:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return {**admin_env, "PGDATABASE": name}

        def raw_pg_restore() -> float:
            env = fresh("bench_raw")
            t0 = time.monotonic()
            sh([f"{bindir}/createdb", "bench_raw"], env)
            sh([f"{bindir}/pg_restore", f"-j{args.jobs}", "-d", "bench_raw", custom.path], env)
            took = time.monotonic() - t0
            fresh("bench_raw")
            return took

        def gunzip_psql() -> float:
            env = fresh("bench_psql")
            t0 = time.monotonic()
            sh([f"{bindir}/createdb", "bench_psql"], env)
            sh(f"gunzip -c '{plain.path}' | '{bindir}/psql' -q -X -d bench_psql", env)
            took = time.monotonic() - t0
            fresh("bench_psql")
            return took

        extra: list[float] = []

        def restore_test() -> float:
            result = restore.restore_and_verify(
                custom.path,
                maint_database_url_env="OPSNB_BENCH_MAINT",
                pg_bindir=bindir,
                jobs=args.jobs,
                timeout_s=900,
            )
            if not result.restored or not result.dropped:
                raise SystemExit(
                    f"restore-test restore failed: {result.error or result.leftover_error} phases={result.phases}"
                )
            extra.append(result.phases["verify"] + result.phases["drop"])
            print(
                f"  restore-test phases: create {result.phases['create']:.2f} s, restore {result.phases['restore']:.2f} s"
            )
            return result.phases["create"] + result.phases["restore"]

        times: dict[str, list[float]] = {"restore-test": [], "pg_restore -j2": [], "gunzip | psql": []}
        runs = [
            ("pg_restore -j2", raw_pg_restore),
            ("restore-test", restore_test),
            ("gunzip | psql", gunzip_psql),
        ]
        for r in range(args.rounds):
            for name, fn in runs if r % 2 == 0 else runs[::-1]:  # alternate the order: no position advantage
                took = fn()
                times[name].append(took)
                print(
                    f"round {r + 1}: {name:<15} {took:7.2f} s  ({custom.size / MB / took if 'psql' not in name else plain.size / MB / took:.1f} MB/s of its file)"
                )
        rt, raw, psql = times["restore-test"], times["pg_restore -j2"], times["gunzip | psql"]
        vs_raw = statistics.median(a / b for a, b in zip(rt, raw, strict=True))
        vs_psql = statistics.median(a / b for a, b in zip(rt, psql, strict=True))
        print(f"restore-test verification + drop (not in the ratio): {statistics.median(extra):.2f} s")
        print(
            f"median seconds: restore-test {statistics.median(rt):.2f}, raw {statistics.median(raw):.2f}, psql {statistics.median(psql):.2f}"
        )
        print(
            f"ratio restore-test / raw pg_restore -j{args.jobs} (median of per-round ratios): {vs_raw:.3f}  (goal <= 1.10)"
        )
        print(
            f"ratio restore-test / gunzip | psql (median of per-round ratios):        {vs_psql:.3f}  (goal < 1)"
        )
        return 0
    finally:
        pg.remove()
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
