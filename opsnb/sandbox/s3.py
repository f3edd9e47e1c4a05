"""S3 endpoint (moto's server) and the nightly-style backups it holds.

Objects: `nightly/shop-<stamp>.dump` (pg_dump -Fc), `nightly/shop-<stamp>.sql.gz` (plain SQL, gzip'd) and
`broken/shop-<stamp>.dump` (the custom dump truncated; its metadata sha256/size match the truncated bytes,
so only pg_restore notices). Every object carries `sha256` and `size` metadata. The nightly pair is also
stored for the `HISTORY_NIGHTS` nights before (copies of the same bytes, stamped a day apart), so the bucket
looks like a week of nightly backups and hiding the recent ones leaves an old one as the latest.

`arrange_backups` lays the planted backup faults over that: the recent nightly objects moved under
`stopped/` (backups-stopped) and a copy of the truncated dump as the newest nightly object (backup-truncated).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

BUCKET = "opsnb-sandbox-backups"
REGION = "us-east-1"
NIGHTLY = "nightly/"
BROKEN = "broken/"
STOPPED = "stopped/"  # where backups-stopped hides the nightly objects it takes away
HISTORY_NIGHTS = 4  # earlier nights stored beside the fresh backup
DAY = 86_400.0
STOPPED_FOR_H = 60.0  # backups-stopped hides what is younger: the latest left is the one from 3 nights ago
_STAMP = re.compile(r"shop-(\d{8}T\d{6}Z)\.")
_STAMP_FORMAT = "%Y%m%dT%H%M%SZ"


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


def _stamp(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime(_STAMP_FORMAT)


def taken_at(key: str) -> float | None:
    """When the sandbox's backup object `key` was taken (epoch seconds, from its stamp); None for other keys."""
    m = _STAMP.search(key)
    return datetime.strptime(m.group(1), _STAMP_FORMAT).replace(tzinfo=UTC).timestamp() if m else None


def upload_backups(s3, dumps: dict[str, Path], bucket: str = BUCKET, when: float | None = None) -> list[str]:
    """Create the bucket (if needed), upload the three backup objects and the earlier nights' nightly pairs;
    returns their keys."""
    when = when or time.time()
    stamp = _stamp(when)
    try:
        s3.create_bucket(Bucket=bucket)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    custom = dumps["custom"].read_bytes()
    objects = {
        f"{NIGHTLY}shop-{stamp}.dump": custom,
        f"{NIGHTLY}shop-{stamp}.sql.gz": dumps["plain"].read_bytes(),
        f"{BROKEN}shop-{stamp}.dump": custom[: max(1, len(custom) * 3 // 5)],
    }
    for key, data in objects.items():
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=data,
            Metadata={"sha256": hashlib.sha256(data).hexdigest(), "size": str(len(data))},
        )
    keys = list(objects)
    # server-side copies: the earlier nights cost no second dump nor upload; metadata travels with them
    for night in range(1, HISTORY_NIGHTS + 1):
        earlier = _stamp(when - night * DAY)
        for suffix in (".dump", ".sql.gz"):
            key = f"{NIGHTLY}shop-{earlier}{suffix}"
            s3.copy_object(
                Bucket=bucket, Key=key, CopySource={"Bucket": bucket, "Key": f"{NIGHTLY}shop-{stamp}{suffix}"}
            )
            keys.append(key)
    return keys


def _listing(s3, bucket: str, prefix: str) -> list[dict]:
    """Every object under prefix (all pages)."""
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [obj for page in pages for obj in page.get("Contents", [])]


def _move(s3, bucket: str, key: str, to: str) -> None:
    s3.copy_object(Bucket=bucket, Key=to, CopySource={"Bucket": bucket, "Key": key})
    s3.delete_object(Bucket=bucket, Key=key)


def _truncated(s3, bucket: str) -> tuple[str, str, int] | None:
    """(key, sha256, size) of the newest truncated dump under broken/, None when there is none."""
    broken = sorted((o["Key"], o["Size"]) for o in _listing(s3, bucket, BROKEN) if o["Key"].endswith(".dump"))
    if not broken:
        return None
    key, size = broken[-1]
    return key, s3.head_object(Bucket=bucket, Key=key)["Metadata"].get("sha256", ""), size


def arrange_backups(
    s3, *, truncated: bool, stopped: bool, bucket: str = BUCKET, now: float | None = None
) -> None:
    """Lay the backup faults over the uploaded backups, whatever was planted before.

    First everything planted is undone (hidden objects back under nightly/, planted truncated copies
    deleted); then, when `stopped`, every nightly object taken less than STOPPED_FOR_H ago moves under
    stopped/; then, when `truncated`, the truncated dump is copied as the newest nightly object. Both on:
    the last backup before they stopped is the truncated one. Nothing happens while the bucket is missing
    (the backup upload calls this again once it is there).
    """
    from botocore.exceptions import ClientError

    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError:
        return
    now = now or time.time()
    broken = _truncated(s3, bucket)
    for obj in _listing(s3, bucket, STOPPED):
        _move(s3, bucket, obj["Key"], NIGHTLY + obj["Key"][len(STOPPED) :])
    nightly = _listing(s3, bucket, NIGHTLY)
    if broken is not None:
        # a planted copy is recognised by its bytes' checksum; its size narrows down which objects to ask
        for obj in [o for o in nightly if o["Size"] == broken[2]]:
            if s3.head_object(Bucket=bucket, Key=obj["Key"])["Metadata"].get("sha256") == broken[1]:
                s3.delete_object(Bucket=bucket, Key=obj["Key"])
                nightly.remove(obj)
    if stopped:
        for obj in list(nightly):
            when = taken_at(obj["Key"])
            if when is not None and now - when < STOPPED_FOR_H * 3600:
                _move(s3, bucket, obj["Key"], STOPPED + obj["Key"][len(NIGHTLY) :])
                nightly.remove(obj)
    if truncated and broken is not None:
        times = [t for t in (taken_at(o["Key"]) for o in nightly) if t is not None]
        # one second after the newest visible backup: newest of all, yet as old as the backups are
        key = f"{NIGHTLY}shop-{_stamp(max(times) + 1 if times else now)}.dump"
        s3.copy_object(Bucket=bucket, Key=key, CopySource={"Bucket": bucket, "Key": broken[0]})


def clear_bucket(s3, bucket: str = BUCKET) -> None:
    """Delete every object in the bucket (if it exists)."""
    try:
        listing = s3.list_objects_v2(Bucket=bucket)
    except s3.exceptions.NoSuchBucket:
        return
    for obj in listing.get("Contents", []):
        s3.delete_object(Bucket=bucket, Key=obj["Key"])
