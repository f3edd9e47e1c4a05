"""Fixtures of the runbook tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def s3(sandbox):
    """A boto3 S3 client on the sandbox's S3 endpoint (moto over HTTP)."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=sandbox["SANDBOX_S3_ENDPOINT"],
        aws_access_key_id=sandbox["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=sandbox["AWS_SECRET_ACCESS_KEY"],
        region_name=sandbox.env.get("AWS_DEFAULT_REGION", "us-east-1"),
    )
