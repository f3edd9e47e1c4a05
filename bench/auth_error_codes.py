"""Benchmark: NextAuth error codes counted in a Vercel log drain, opsnb vs the runbook's grep.

    .venv/bin/python bench/auth_error_codes.py [--lines 1000000]

Uses bench/data/drain-<lines>.ndjson (made by bench/log_triage.py's deterministic generator when missing; it
holds ~1 % `[next-auth][error][JWT_SESSION_ERROR]` lines). On the same file, in the same run:

- anchor: the runbook's `vercel logs | grep NextAuth`, made to count codes (``-a``: without it grep stops at the
  first binary garbage line and reports "binary file matches", silently undercounting):
  ``grep -a -o '\\[next-auth\\]\\[error\\]\\[[A-Za-z_]*\\]' FILE | sort | uniq -c``;
- opsnb: ``opsnb.checks.logs.read_logs`` (shared with every log check of the notebook) + ``opsnb.checks.auth.error_events``
  + ``summarize_error_codes`` (timestamps per code, first/last, explanation and fix).

Prints each time, the counting step alone, the ratio opsnb/grep and whether the counts agree.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def drain(lines: int) -> Path:
    path = ROOT / "bench" / "data" / f"drain-{lines}.ndjson"
    if not path.exists():
        sys.path.insert(0, str(ROOT / "bench"))
        from log_triage import generate

        path.parent.mkdir(parents=True, exist_ok=True)
        generate(path, lines)
    return path


def grep_counts(path: Path) -> tuple[float, dict[str, int]]:
    start = time.perf_counter()
    out = subprocess.run(
        f"grep -a -o '\\[next-auth\\]\\[error\\]\\[[A-Za-z_]*\\]' {path} | sort | uniq -c",
        shell=True,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    elapsed = time.perf_counter() - start
    counts = {}
    for line in out.splitlines():
        count, tag = line.split()
        counts[tag.rsplit("[", 1)[1].rstrip("]")] = int(count)
    return elapsed, counts


def opsnb_counts(path: Path) -> tuple[float, float, dict[str, int]]:
    from opsnb.checks import auth
    from opsnb.checks.logs import read_logs

    start = time.perf_counter()
    logs = read_logs(path)
    read_done = time.perf_counter()
    summary = auth.summarize_error_codes(auth.error_events(logs.frame))
    end = time.perf_counter()
    return end - start, end - read_done, dict(zip(summary["code"], summary["count"], strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    args = parser.parse_args()
    path = drain(args.lines)
    import pandas  # noqa: F401  (import cost is not part of either measurement)
    import pyarrow  # noqa: F401

    grep_s, grep_found = grep_counts(path)
    total_s, count_s, found = opsnb_counts(path)
    print(f"file: {path.name} ({path.stat().st_size / 1e6:.0f} MB)")
    print(f"grep | sort | uniq -c (anchor): {grep_s:7.2f} s  {grep_found}")
    print(f"opsnb read_logs + error codes:  {total_s:7.2f} s  {found}")
    print(f"  of which counting codes:      {count_s:7.2f} s")
    print(f"ratio opsnb/grep: {total_s / grep_s:.2f}  (counting step alone: {count_s / grep_s:.2f})")
    print(f"counts agree: {found == grep_found}")


if __name__ == "__main__":
    main()
