"""S3 endpoint (moto's server) and the nightly-style backups it holds.

Objects: `nightly/shop-<stamp>.dump` (pg_dump -Fc), `nightly/shop-<stamp>.sql.gz` (plain SQL, gzip'd) and
`broken/shop-<stamp>.dump` (the custom dump truncated; its metadata sha256/size match the truncated bytes,
so only pg_restore notices). Every object carries `sha256` and `size` metadata.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

BUCKET = "opsnb-sandbox-backups"
REGION = "us-east-1"


def moto_command(python: str, port: int) -> list[str]:
    """Command line of moto's standalone server on 127.0.0.1:port."""
    return [python, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]


def make_dumps(bindir: Path, dsn: str, out_dir: Path, timeout: float = 600) -> dict[str, Path]:
    """pg_dump the database at dsn (custom format and gzip'd plain SQL) with the server's own tools."""
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = urlsplit(dsn)
    # the backup's COPY statements stay out of pg_stat_statements (superuser-only setting), so the
    # planted slow query remains the top statement
    env = dict(
        os.environ,
        PGPASSWORD=parts.password or "",
        PGCONNECT_TIMEOUT="10",
        PGOPTIONS="-c pg_stat_statements.track=none",
    )
    base = [
        "-h",
        parts.hostname or "127.0.0.1",
        "-p",
        str(parts.port or 5432),
        "-U",
        parts.username or "",
        "-d",
        parts.path.lstrip("/"),
    ]
    custom = out_dir / "shop.dump"
    plain = out_dir / "shop.sql.gz"
    procs = [
        subprocess.Popen(
            [str(bindir / "pg_dump"), "-Fc", "-f", str(custom), *base],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        ),
        subprocess.Popen(
            [str(bindir / "pg_dump"), "-Fp", "--no-owner", *base],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        ),
    ]
    with gzip.open(plain, "wb", compresslevel=3) as gz:
        for chunk in iter(lambda: procs[1].stdout.read(1 << 20), b""):
            gz.write(chunk)
    for proc in procs:
        _, err = proc.communicate(timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"pg_dump failed: {err.decode(errors='replace').strip().splitlines()[-1:]}")
    return {"custom": custom, "plain": plain}


def client(endpoint: str, access_key: str, secret_key: str):
    """A boto3 S3 client for the sandbox endpoint."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=REGION,
        config=Config(retries={"max_attempts": 2}, connect_timeout=3),
    )


def upload_backups(s3, dumps: dict[str, Path], bucket: str = BUCKET, when: float | None = None) -> list[str]:
    """Create the bucket (if needed) and upload the three backup objects; returns their keys."""
    stamp = datetime.fromtimestamp(when or time.time(), UTC).strftime("%Y%m%dT%H%M%SZ")
    try:
        s3.create_bucket(Bucket=bucket)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    custom = dumps["custom"].read_bytes()
    objects = {
        f"nightly/shop-{stamp}.dump": custom,
        f"nightly/shop-{stamp}.sql.gz": dumps["plain"].read_bytes(),
        f"broken/shop-{stamp}.dump": custom[: max(1, len(custom) * 3 // 5)],
    }
    for key, data in objects.items():
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=data,
            Metadata={"sha256": hashlib.sha256(data).hexdigest(), "size": str(len(data))},
        )
    return list(objects)


def clear_bucket(s3, bucket: str = BUCKET) -> None:
    """Delete every object in the bucket (if it exists)."""
    try:
        listing = s3.list_objects_v2(Bucket=bucket)
    except s3.exceptions.NoSuchBucket:
        return
    for obj in listing.get("Contents", []):
        s3.delete_object(Bucket=bucket, Key=obj["Key"])
