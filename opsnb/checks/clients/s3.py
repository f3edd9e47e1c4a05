"""S3 for runbooks: where objects live (:class:`Location`), listing, HEAD, multipart upload, download.

Credentials are named, never given: a :class:`Location` holds the names of the environment variables that hold
the access key pair, and ``client()`` resolves them through ``opsnb.checks.secrets`` (so they are scrubbed from
every artifact) only when a check opens it. Every failed call raises :class:`S3Error`, an ``OSError``: inside a
check it becomes an inconclusive conclusion ("could not look"), never a crash. Progress is printed as plain
lines (no widgets: they are invisible in the evidence, see FIELD-NOTES).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opsnb.checks.secrets import secret

MB = 1024 * 1024


class S3Error(OSError):
    """An S3 call failed (network, permission, missing object); one line naming the operation, bucket and key."""


def normalize_prefix(prefix: str) -> str:
    """'' or 'folder/' (a trailing slash added, a leading one removed)."""
    prefix = prefix.strip().lstrip("/")
    return prefix if not prefix or prefix.endswith("/") else prefix + "/"


@dataclass(frozen=True)
class Location:
    """A bucket and key prefix, the endpoint, and the NAMES of the variables holding the access key pair."""

    bucket: str
    prefix: str = ""
    endpoint_url: str = ""  # "" = AWS
    access_key_id_env: str = "AWS_ACCESS_KEY_ID"
    secret_access_key_env: str = "AWS_SECRET_ACCESS_KEY"
    region: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "prefix", normalize_prefix(self.prefix))

    def url(self, key: str = "") -> str:
        """``s3://bucket/key`` (``s3://bucket/prefix`` without a key)."""
        return f"s3://{self.bucket}/{key or self.prefix}"

    def key(self, name: str) -> str:
        """The key of file ``name`` under the prefix."""
        return self.prefix + name

    def client(self):
        """A boto3 client for this location; S3Error when no bucket is given (nothing to look at)."""
        if not self.bucket:
            raise S3Error("no bucket given: set the s3_bucket parameter")
        return client(self.endpoint_url, self.access_key_id_env, self.secret_access_key_env, self.region)


def client(
    endpoint_url: str = "",
    access_key_id_env: str = "AWS_ACCESS_KEY_ID",
    secret_access_key_env: str = "AWS_SECRET_ACCESS_KEY",
    region: str = "",
    connect_timeout_s: float = 5,
    read_timeout_s: float = 60,
):
    """A boto3 S3 client for ``endpoint_url`` ("" = AWS) with keys from the named environment variables."""
    import os

    import boto3
    from botocore.config import Config

    key_id = secret(access_key_id_env)
    key = secret(secret_access_key_env)
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url or None,
        aws_access_key_id=key_id.reveal(),
        aws_secret_access_key=key.reveal(),
        region_name=region or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        config=Config(
            connect_timeout=connect_timeout_s,
            read_timeout=read_timeout_s,
            retries={"max_attempts": 3, "mode": "standard"},
            signature_version="s3v4",
        ),
    )


def _fail(op: str, bucket: str, key: str, exc: Exception) -> S3Error:
    detail = str(exc).strip().splitlines()
    where = f"s3://{bucket}/{key}" if key else f"s3://{bucket}"
    return S3Error(f"{op} {where} failed: {type(exc).__name__}: {detail[0] if detail else ''}")


def list_objects(s3, bucket: str, prefix: str = "") -> list[dict[str, Any]]:
    """Every object under ``prefix``: key, size (bytes), last_modified (aware UTC datetime)."""
    out: list[dict[str, Any]] = []
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                out.append(
                    {"key": obj["Key"], "size": int(obj["Size"]), "last_modified": obj["LastModified"]}
                )
    except Exception as exc:  # botocore raises many unrelated types
        raise _fail("list", bucket, prefix, exc) from None
    return out


def head(s3, bucket: str, key: str) -> dict[str, Any]:
    """Size, last_modified and user metadata (lower-case keys) of one object."""
    try:
        resp = s3.head_object(Bucket=bucket, Key=key)
    except Exception as exc:
        raise _fail("head", bucket, key, exc) from None
    return {
        "key": key,
        "size": int(resp["ContentLength"]),
        "last_modified": resp["LastModified"],
        "metadata": {k.lower(): v for k, v in (resp.get("Metadata") or {}).items()},
    }


def get_text(s3, bucket: str, key: str) -> str | None:
    """The body of a small object as text, None when it does not exist."""
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
    except Exception as exc:
        if "NoSuchKey" in type(exc).__name__ or "NoSuchKey" in str(exc) or "404" in str(exc):
            return None
        raise _fail("get", bucket, key, exc) from None


def put_text(s3, bucket: str, key: str, text: str, content_type: str = "application/json") -> None:
    """Write a small text object."""
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=text.encode("utf-8"), ContentType=content_type)
    except Exception as exc:
        raise _fail("put", bucket, key, exc) from None


class _Progress:
    """boto3 transfer callback printing one plain line per ``every_pct`` percent (thread-safe enough: a lock)."""

    def __init__(self, label: str, total: int, every_pct: int = 10, log: Callable[[str], None] = print):
        import threading

        self.label, self.total, self.every, self.log = label, max(total, 1), every_pct, log
        self.done = 0
        self.next_pct = every_pct
        self.t0 = time.monotonic()
        self.lock = threading.Lock()

    def __call__(self, amount: int) -> None:
        with self.lock:
            self.done += amount
            pct = 100 * self.done / self.total
            while pct >= self.next_pct and self.next_pct <= 100:
                elapsed = max(time.monotonic() - self.t0, 1e-6)
                self.log(
                    f"{self.label}: {self.next_pct:3d}%  {self.done / MB:8.1f} / {self.total / MB:.1f} MB"
                    f"  {self.done / MB / elapsed:6.1f} MB/s"
                )
                self.next_pct += self.every


@dataclass
class Transfer:
    """What an upload or download moved and how fast."""

    bucket: str
    key: str
    path: str
    bytes: int
    seconds: float

    @property
    def mb_per_s(self) -> float:
        """Throughput in MiB per second."""
        return self.bytes / MB / self.seconds if self.seconds > 0 else float("inf")


def transfer_config(multipart_threshold_mb: int = 64, chunk_mb: int = 16, concurrency: int = 4):
    """boto3 TransferConfig: multipart above ``multipart_threshold_mb``, parts of ``chunk_mb``."""
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(
        multipart_threshold=multipart_threshold_mb * MB,
        multipart_chunksize=chunk_mb * MB,
        max_concurrency=concurrency,
        use_threads=concurrency > 1,
    )


def upload(
    s3,
    path: str | Path,
    bucket: str,
    key: str,
    metadata: dict[str, str] | None = None,
    *,
    multipart_threshold_mb: int = 64,  # AWS CLI uses 8 MB; fewer parts for nightly dumps
    chunk_mb: int = 16,
    log: Callable[[str], None] = print,
) -> Transfer:
    """Upload ``path`` to s3://bucket/key with user ``metadata`` (multipart when large); plain progress lines."""
    path = Path(path)
    size = path.stat().st_size
    t0 = time.monotonic()
    try:
        s3.upload_file(
            str(path),
            bucket,
            key,
            ExtraArgs={"Metadata": dict(metadata or {})},
            Config=transfer_config(multipart_threshold_mb, chunk_mb),
            Callback=_Progress(f"upload {key}", size, log=log),
        )
    except Exception as exc:
        raise _fail("upload", bucket, key, exc) from None
    return Transfer(bucket, key, str(path), size, time.monotonic() - t0)


def download(
    s3,
    bucket: str,
    key: str,
    dest: str | Path,
    *,
    size: int | None = None,
    chunk_mb: int = 16,
    every_pct: int = 10,
    log: Callable[[str], None] = print,
) -> Transfer:
    """Download s3://bucket/key to ``dest`` (ranged parts in parallel when large), printing progress lines."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if size is None:
        size = head(s3, bucket, key)["size"]
    t0 = time.monotonic()
    try:
        s3.download_file(
            bucket,
            key,
            str(dest),
            Config=transfer_config(chunk_mb, chunk_mb),
            Callback=_Progress(f"download {key}", size, every_pct, log=log),
        )
    except Exception as exc:
        raise _fail("download", bucket, key, exc) from None
    got = dest.stat().st_size
    return Transfer(bucket, key, str(dest), got, time.monotonic() - t0)
