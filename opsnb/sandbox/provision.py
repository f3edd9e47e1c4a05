"""What a fresh (or reset) sandbox is filled with: roles and the shop's data, the Stripe and Vercel
stand-ins' state, the log drain's synthetic history, a signed-in session, the chosen faults, and the
nightly backups in S3 (dumped and uploaded in a thread while the rest of `up` goes on; the backup faults
that are on are laid over them once they are there).
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable
from pathlib import Path

from . import faults, s3, seed
from .postgres import port_open
from .processes import wait_for
from .state import (
    ADMIN_ROLE,
    VERCEL_PROJECT,
    Paths,
    SandboxError,
    dsn,
    has_stat_statements,
    internal_dsn,
    save,
    token,
    url,
)
from .store import write_json

Log = Callable[[str], None]


class BackupJob:
    """The backups being dumped and uploaded to S3 in a background thread."""

    def __init__(self, paths: Paths, st: dict):
        self.paths = paths
        self.keys: list[str] = []
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(st,), name="sandbox-backups", daemon=True)
        self._thread.start()

    def _run(self, st: dict) -> None:
        try:
            self.keys = upload_backups(self.paths, st)
        except Exception as exc:  # handed to whoever waits for the job
            self.error = exc

    def wait(self, timeout: float = 600) -> list[str]:
        """The uploaded object keys; SandboxError naming s3 when the job failed."""
        self._thread.join(timeout=timeout)
        if isinstance(self.error, SandboxError):
            raise self.error
        if self.error is not None:
            log = self.paths.logs / "s3.log"
            raise SandboxError(f"backups to s3 failed: {self.error}", "s3", log) from self.error
        return self.keys


def upload_backups(paths: Paths, st: dict) -> list[str]:
    """Dump the shop, replace the bucket's contents with the backups, plant the backup faults that are on;
    returns the uploaded keys."""
    dumps = s3.make_dumps(Path(st["pg"]["bindir"]), dsn(st, ADMIN_ROLE), paths.backups)
    if not wait_for(lambda: port_open(st["ports"]["s3"]), 30):
        raise SandboxError("s3 (moto) did not start listening", "s3", paths.logs / "s3.log")
    client = s3.client(
        url(st, "s3"), st["secrets"]["aws_access_key_id"], st["secrets"]["aws_secret_access_key"]
    )
    s3.clear_bucket(client)
    keys = s3.upload_backups(client, dumps)
    shutil.rmtree(paths.backups, ignore_errors=True)
    # fresh objects carry no fault: backup-truncated / backups-stopped are planted again from faults.json
    faults.replant_backups(paths, st)
    return keys


def seed_all(paths: Paths, st: dict, chosen: dict[str, bool], log: Log) -> BackupJob:
    """Database, stand-in state, log history and faults; returns the (running) backup job."""
    from . import stripe_api, vercel_api

    s = st["secrets"]
    pgss = has_stat_statements(st)
    seed.create_roles_and_db(
        internal_dsn(st, "postgres"), s["app_password"], s["maint_password"], stat_statements=pgss
    )
    # stuck-orders is part of the data itself: the orders are seeded pending and their events undelivered.
    facts = seed.seed_shop(
        internal_dsn(st), dsn(st, seed.APP_ROLE), st["scale"], chosen["stuck-orders"], stat_statements=pgss
    )
    seed.create_reader_role(internal_dsn(st), s.setdefault("reader_password", token()))
    stripe_state = stripe_api.build_state(
        facts,
        app_url=url(st),
        webhook_secret=s["webhook_secret"],
        old_secret=s["webhook_secret_old"],
        stuck_on=chosen["stuck-orders"],
    )
    failures = stripe_state.pop("_webhook_failures")
    write_json(paths.stripe, stripe_state)
    write_json(paths.vercel, vercel_api.build_state(facts["now"], VERCEL_PROJECT, url(st)))
    st["history"] = {"now": facts["now"], "webhook_failures": failures}
    faults.rewrite_history(paths, st, chosen)  # live lines of the app stay
    write_json(paths.faults, chosen)
    st["facts"] = {k: v for k, v in facts.items() if k != "recent"}
    st["session_token"] = _session_token(st)
    backups = BackupJob(paths, st)
    # Either way the index is set and the workload run, so pg_stat_statements shows the shop's traffic.
    faults.get("missing-index").apply(paths, st, chosen["missing-index"])
    # a state from before this fault existed has no switch for it: off
    faults.get("sequence-near-max").apply(paths, st, chosen.get("sequence-near-max", False))
    st["seeded"] = True
    save(paths, st)
    return backups


def _session_token(st: dict) -> str:
    """A NextAuth session cookie for the first user (what a signed-in browser would send)."""
    import psycopg

    from . import nextauth

    with psycopg.connect(internal_dsn(st)) as conn:
        row = conn.execute(
            'SELECT "id", "name", "email", "image" FROM "User" ORDER BY "id" LIMIT 1'
        ).fetchone()
    claims = {"name": row[1], "email": row[2], "picture": row[3], "sub": row[0]}
    return nextauth.encode_session(claims, st["secrets"]["nextauth_secret"])
