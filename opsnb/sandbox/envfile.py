"""sandbox.env: the endpoints and secrets the runbooks (through parameters/sandbox.yaml) and tests read.

Written from the state after every change (mode 0600: it holds secrets); read back with the project's one
dotenv parser, `opsnb.envfile.read_env_file`.
"""

from __future__ import annotations

import os

from opsnb.envfile import read_env_file

from . import faults, s3, seed
from .state import ADMIN_ROLE, VERCEL_PROJECT, Paths, dsn, url

HEADER = "# written by `opsnb sandbox up`; secrets: keep this file private (0600)\n"


def env_values(paths: Paths, st: dict) -> dict[str, str]:
    """The KEY=VALUE pairs of sandbox.env."""
    s = st["secrets"]
    app_url = url(st)
    nextauth_url = faults.BAD_NEXTAUTH_URL if faults.states(paths)["nextauth-url"] else app_url
    return {
        # The runbooks read as the reader role; only --allow-writes runs receive the writer (the app's role).
        "SANDBOX_DATABASE_URL": dsn(st, seed.READER_ROLE),
        "SANDBOX_WRITER_DATABASE_URL": dsn(st, seed.APP_ROLE),
        "SANDBOX_APP_DATABASE_URL": dsn(st, seed.APP_ROLE),
        "SANDBOX_MAINT_DATABASE_URL": dsn(st, seed.MAINT_ROLE),
        "SANDBOX_ADMIN_DATABASE_URL": dsn(st, ADMIN_ROLE),
        "SANDBOX_PG_BINDIR": st["pg"]["bindir"],
        "SANDBOX_APP_URL": app_url,
        "SANDBOX_STRIPE_API_BASE": url(st, "stripe"),
        "STRIPE_SECRET_KEY": s["stripe_secret_key"],
        "STRIPE_WEBHOOK_SECRET": s["webhook_secret"],
        "SANDBOX_VERCEL_API_BASE": url(st, "vercel"),
        "VERCEL_TOKEN": s["vercel_token"],
        "SANDBOX_VERCEL_PROJECT": VERCEL_PROJECT,
        "SANDBOX_S3_ENDPOINT": url(st, "s3"),
        "SANDBOX_S3_BUCKET": s3.BUCKET,
        "AWS_ACCESS_KEY_ID": s["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": s["aws_secret_access_key"],
        "AWS_DEFAULT_REGION": s3.REGION,
        "NEXTAUTH_URL": nextauth_url,
        "NEXTAUTH_SECRET": s["nextauth_secret"],
        "SANDBOX_SESSION_TOKEN": st.get("session_token") or "",
        "SANDBOX_LOG_DIR": str(paths.drain),
        "SANDBOX_STATE_DIR": str(paths.root),
    }


def write_env(paths: Paths, st: dict) -> None:
    """Replace sandbox.env atomically; the file is 0600 from its first byte."""
    tmp = paths.env_file.with_name(".sandbox.env.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(HEADER)
        handle.writelines(f"{key}={value}\n" for key, value in env_values(paths, st).items())
    os.chmod(tmp, 0o600)  # O_CREAT's mode does not apply to a tmp file left over from a crash
    os.replace(tmp, paths.env_file)


def read_env(paths: Paths | None = None) -> dict[str, str]:
    """sandbox.env as a dict (empty when there is none); ConfigError when others may read it."""
    paths = paths or Paths()
    if not paths.env_file.exists():
        return {}
    return read_env_file(paths.env_file)
