"""A local S3 server for tests: moto's server mode on a free port, in a thread of the test
process, reached over HTTP like any S3-compatible store (MinIO) by this process and by the
worker processes a test starts (they inherit the ``AWS_*`` variables)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import boto3
import pytest
from moto.server import ThreadedMotoServer

from tests.live_server import free_port


@dataclass(frozen=True)
class Bucket:
    name: str
    endpoint: str

    @property
    def url(self) -> str:
        return f"s3://{self.name}"

    def keys(self) -> list[str]:
        client = boto3.client("s3", endpoint_url=self.endpoint)
        listing = client.list_objects_v2(Bucket=self.name)
        return sorted(obj["Key"] for obj in listing.get("Contents", []))

    def get(self, key: str) -> bytes:
        client = boto3.client("s3", endpoint_url=self.endpoint)
        body: bytes = client.get_object(Bucket=self.name, Key=key)["Body"].read()
        return body


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Bucket:
    """A fresh bucket; this process (and the processes it starts) pointed at the server by the
    variables a deployment sets (``AWS_ENDPOINT_URL`` and a key)."""
    for name, value in {
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "tuneboard-test",
        "AWS_SECRET_ACCESS_KEY": "tuneboard-test-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    bucket = Bucket(name=f"tb-{uuid.uuid4().hex[:12]}", endpoint=s3_endpoint)
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=bucket.name)
    return bucket
