"""idle-in-transaction fault: a "shop-worker" that opens a transaction, takes a row lock and goes idle.

Run as `python -m opsnb.sandbox.worker --state DIR`; exits (rolling back) on SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

import psycopg

from .seed import WORKER_APP_NAME
from .store import read_json


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="opsnb.sandbox.worker")
    parser.add_argument("--state", required=True, type=Path)
    args = parser.parse_args(argv)
    config = read_json(args.state / "app-config.json")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    conn = psycopg.connect(config["database_url"], application_name=WORKER_APP_NAME)
    # Touches only "Product" and "AuditLog", so the other faults' DDL on "Order" is not blocked by it.
    conn.execute('SELECT "id" FROM "AuditLog" ORDER BY "timestamp" DESC LIMIT 1').fetchone()
    conn.execute('UPDATE "Product" SET "updatedAt" = now() WHERE "id" = (SELECT max("id") FROM "Product")')
    print("shop-worker: transaction open, now idle", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        conn.close()


if __name__ == "__main__":
    sys.exit(main())
