"""Benchmark: 1 000 000 Vercel log-drain lines → the grouped 5xx summary, opsnb vs a jq pipeline.

    .venv/bin/python bench/log_triage.py [--lines 1000000] [--skip-jq]

Generates (once, deterministic, seed 42) bench/data/drain-<lines>.ndjson (git-ignored): ~10 % 5xx/crashed
lines over 24 h, 5 deployments, 12 routes, error messages with varying ids/uuids/hex/numbers, plus 100
garbage lines (truncated, binary, empty). Then, on the same file and in the same run:

- opsnb: ``opsnb.checks.logs.read_logs`` + ``opsnb.checks.triage.signatures.summarize_5xx`` (signature, path, status → count, first/last);
- jq (/usr/bin/jq): ``jq -R -n`` parsing every line (``fromjson?`` skips garbage), the same status filter, the same
  signature rules with ``gsub`` and the same grouping with ``reduce``.

Prints both times, the ratio jq/opsnb, group counts (must agree) and peak RSS of each.
Goal (issue 5): faster than jq, ≤ 10 s on 2 cores, < 2 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data"
SEED = 42
GARBAGE_LINES = 100
ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"

ROUTES = [
    ("GET", "/api/products"),
    ("GET", "/api/auth/session"),
    ("GET", "/"),
    ("GET", "/products/prod_0042"),
    ("POST", "/api/checkout"),
    ("GET", "/api/orders"),
    ("GET", "/api/auth/providers"),
    ("POST", "/api/webhooks/stripe"),
    ("GET", "/api/health"),
    ("GET", "/cart"),
    ("GET", "/api/search"),
    ("POST", "/api/auth/callback/google"),
]
ERRORS = [
    (
        500,
        "Checkout failed for cart_{id}: TypeError: Cannot read properties of undefined (reading 'price')\n"
        "    at computeTotal (/var/task/.next/server/app/api/checkout/route.js:1:{n})",
    ),
    (
        500,
        "Error listing products for tenant_{small} (req {hex}): TypeError: Cannot read properties of undefined",
    ),
    (
        500,
        "PrismaClientKnownRequestError: Timed out fetching a new connection from the connection pool (P2024) "
        "connection limit {small}, timeout {n}",
    ),
    (500, "Error: Order {uuid} not found for user usr_{num6}"),
    (503, "Health check failed: database unreachable (OperationalError) after {n} ms"),
    (504, "Task timed out after {small}.00 seconds"),
    (502, "Upstream error from stripe for pi_{id}: status {n}"),
    (-1, "Error: Runtime exited with error: exit status {small}\nRuntime.ExitError"),
    (500, "Unhandled Rejection: Error: connect ECONNREFUSED 10.0.{small}.{small}:5432"),
    (500, "[next-auth][error][JWT_SESSION_ERROR] decryption operation failed for session {hex}"),
]


def generate(path: Path, lines: int) -> None:
    """Write ``lines`` deterministic log-drain lines (+ GARBAGE_LINES garbage) to ``path``."""
    rng = random.Random(SEED)
    deployments = [f"dpl_{''.join(rng.choices(ALNUM, k=28))}" for _ in range(5)]
    t0 = 1_735_689_600_000  # 2025-01-01T00:00Z
    step = 86_400_000 // lines
    garbage_at = set(rng.sample(range(lines), GARBAGE_LINES))
    garbage = [
        b'{"id": "cut", "timestamp": 17356',
        b"\xff\xfe\x00\x01binary\x02",
        b"",
        b"   ",
        b'{"message": "x"',
    ]
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as out:
        buf: list[str] = []
        for k in range(lines):
            if k in garbage_at:
                out.write("".join(buf).encode())
                buf.clear()
                out.write(garbage[k % len(garbage)] + b"\n")
            ts = t0 + k * step + rng.randrange(step)
            dep = deployments[min(4, k * 5 // lines)]
            method, route = ROUTES[rng.randrange(len(ROUTES))]
            roll = rng.random()
            if roll < 0.10:
                status, template = ERRORS[rng.randrange(len(ERRORS))]
                message = template.format(
                    id="".join(rng.choices(ALNUM, k=10)),
                    n=rng.randrange(100_000),
                    small=rng.randrange(1, 9),
                    hex=f"{rng.randrange(16**8):08x}",
                    num6=f"{rng.randrange(10**6):06d}",
                    uuid=f"{rng.getrandbits(32):08x}-4e8f-9a7b-1c2d-{rng.getrandbits(48):012x}",
                )
                level, proxy_status = "error", (502 if status == -1 else status)
            else:
                status = 200 if roll < 0.93 else (304 if roll < 0.96 else 404)
                message, level, proxy_status = "", "info" if status < 400 else "warning", status
            buf.append(
                f'{{"id":"{ts}{k:08d}","message":{json.dumps(message)},"timestamp":{ts},"type":"stdout",'
                f'"source":"lambda","projectId":"prj_bench","deploymentId":"{dep}","host":"shop-{dep[4:13]}.vercel.app",'
                f'"path":"{route}","statusCode":{status},"requestId":"iad1::{k:x}-{ts}","level":"{level}",'
                f'"proxy":{{"timestamp":{ts},"method":"{method}","scheme":"https","host":"shop.example.com",'
                f'"path":"{route}","userAgent":["Mozilla/5.0 (bench)"],"statusCode":{proxy_status},'
                f'"clientIp":"198.51.100.{k % 250 + 2}","region":"iad1","vercelCache":"MISS"}}}}\n'
            )
            if len(buf) >= 20_000:
                out.write("".join(buf).encode())
                buf.clear()
        out.write("".join(buf).encode())
    tmp.replace(path)


def jq_program() -> str:
    """The same filter, signature rules and grouping as opsnb.checks.triage.signatures.summarize_5xx, in jq."""
    from opsnb.checks.triage.signatures import SIGNATURE_CHARS, SIGNATURE_RULES

    subs = []
    for pattern, repl in SIGNATURE_RULES:
        if r"\1" in repl:  # jq: named capture instead of a backreference
            pattern = pattern.replace("([A-Za-z]{1,12}_)", "(?<p>[A-Za-z]{1,12}_)", 1)
            repl = repl.replace(r"\1", r"\(.p)")
        subs.append(f'gsub({json.dumps(pattern)}; "{repl}")')
    sig = " | ".join(['split("\\n")[0]', 'ltrimstr(" ")', *subs, f".[0:{SIGNATURE_CHARS}]"])
    return (
        "reduce (inputs | fromjson? | objects"
        " | (.statusCode // .proxy.statusCode) as $s | select($s != null and ($s >= 500 or $s == -1))"
        f' | [((.message // "") | {sig} | if . == "" then "(no message)" else . end),'
        " (.path // .proxy.path), $s, .timestamp]) as $e"
        " ({}; ($e[0:3] | tojson) as $k"
        " | .[$k] |= {count: ((.count // 0) + 1), first: ([(.first // $e[3]), $e[3]] | min),"
        " last: ([(.last // $e[3]), $e[3]] | max)})"
        " | to_entries | map(.value + {key: (.key | fromjson)}) | sort_by(-.count) | .[]"
    )


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def run_opsnb(path: Path) -> tuple[float, float, int, int, int]:
    """(seconds, cpu seconds, groups, 5xx rows, garbage) for read_logs + summarize_5xx, in this process
    (imports included: they are part of what a cold run pays)."""
    start, cpu = time.perf_counter(), _cpu(resource.RUSAGE_SELF)
    from opsnb.checks.logs import read_logs
    from opsnb.checks.triage.signatures import summarize_5xx

    read = read_logs(path)
    summary = summarize_5xx(read.frame)
    seconds = time.perf_counter() - start
    return seconds, _cpu(resource.RUSAGE_SELF) - cpu, len(summary), int(summary["count"].sum()), read.garbage


def run_jq(path: Path) -> tuple[float, float, int, int]:
    """(seconds, cpu seconds, groups, 5xx rows) for the jq pipeline."""
    start, cpu = time.perf_counter(), _cpu(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(
        ["/usr/bin/jq", "-R", "-n", "-c", jq_program(), str(path)], capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"jq failed: {proc.stderr[:500]}")
    groups = [json.loads(line) for line in proc.stdout.splitlines() if line]
    return seconds, _cpu(resource.RUSAGE_CHILDREN) - cpu, len(groups), sum(g["count"] for g in groups)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--skip-jq", action="store_true")
    args = parser.parse_args()
    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"drain-{args.lines}.ndjson"
    if not path.exists():
        t = time.perf_counter()
        # a child process, so the generator's memory does not count in this process's peak RSS
        subprocess.run(
            [
                sys.executable,
                "-c",
                f"import sys; sys.path.insert(0, {str(ROOT)!r}); "
                f"from bench.log_triage import generate; from pathlib import Path; "
                f"generate(Path({str(path)!r}), {args.lines})",
            ],
            check=True,
            cwd=ROOT,
        )
        print(f"generated {path} in {time.perf_counter() - t:.1f} s")
    size_mb = path.stat().st_size / 2**20
    print(f"input: {path} ({args.lines:,} lines + {GARBAGE_LINES} garbage, {size_mb:.0f} MiB)")

    load = os.getloadavg()[0]
    print(
        f"load average before: {load:.1f} on {os.cpu_count()} cores (wall times suffer above the core count)"
    )
    jq = None
    if args.skip_jq or not shutil.which("/usr/bin/jq"):
        print("jq: skipped")
    else:  # first, while this process is small: a forked child inherits the parent's RSS high-water mark
        jq = run_jq(path)
        jq_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(
            f"jq     same filter + grouping:     {jq[0]:6.2f} s wall  {jq[1]:6.2f} s cpu  groups {jq[2]:,}  "
            f"5xx rows {jq[3]:,}  peak RSS {jq_rss:,.0f} MiB"
        )
    seconds, cpu, groups, errors, garbage = run_opsnb(path)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"opsnb  read_logs + summarize_5xx: {seconds:6.2f} s wall  {cpu:6.2f} s cpu  groups {groups:,}  "
        f"5xx rows {errors:,}  garbage {garbage}  peak RSS {rss:,.0f} MiB"
    )
    if jq is None:
        return 0
    print(
        f"ratio jq/opsnb: {jq[0] / seconds:.1f}x wall, {jq[1] / cpu:.1f}x cpu  (goal: > 1, opsnb <= 10 s, < 2048 MiB)"
    )
    if (groups, errors) != (jq[2], jq[3]):
        print("WARNING: opsnb and jq disagree on the summary")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
