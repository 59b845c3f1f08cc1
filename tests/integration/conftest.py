"""S3 on a moto server over HTTP, shared by the integration tests that need real S3 calls."""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import boto3
import pytest
import redis
from moto.server import ThreadedMotoServer

from tests.conftest import REGION
from tests.integration.live import publishing_to, require_service

REDIS_URL = "redis://127.0.0.1:6379/15"


@dataclass(frozen=True)
class ServerBucket:
    name: str
    endpoint: str
    client: Any  # boto3's S3 client, talking HTTP to the moto server

    def object_bytes(self, key: str) -> bytes:
        body: bytes = self.client.get_object(Bucket=self.name, Key=key)["Body"].read()
        return body

    def has_object(self, key: str) -> bool:
        return any(o["Key"] == key for o in self.client.list_objects_v2(Bucket=self.name).get("Contents", []))

    def multipart_uploads_of(self, key: str) -> list[dict[str, Any]]:
        uploads: list[dict[str, Any]] = self.client.list_multipart_uploads(Bucket=self.name, Prefix=key).get(
            "Uploads", []
        )
        return [u for u in uploads if u["Key"] == key]


@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def bucket(moto_server: str, aws_credentials: None, settings: Any, monkeypatch: pytest.MonkeyPatch) -> ServerBucket:
    """A fresh bucket per test on the shared server, and the portal configured to use it."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_server)
    name = f"raw-media-{uuid4().hex[:12]}"
    client = boto3.client("s3", region_name=REGION)
    client.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    settings.S3_RAW_MEDIA_BUCKET = name
    return ServerBucket(name=name, endpoint=moto_server, client=client)


@pytest.fixture
def broker() -> Iterator[tuple[str, str]]:
    """Redis for a real worker and for this process's publishing (tests elsewhere run tasks
    eagerly), on a queue of this test's own, so suites running side by side on one Redis never meet."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.ConnectionError:
        require_service(False, "Redis is not running on 127.0.0.1:6379")
    queue = f"portal-test-{uuid4().hex[:12]}"
    with publishing_to(REDIS_URL, queue):
        yield REDIS_URL, queue
    client.delete(queue)
