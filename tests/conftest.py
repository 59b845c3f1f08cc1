"""Shared fixtures. Every test that touches tenant data has a second tenant beside the first."""

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

# moto enforces S3's 5 MiB minimum part size; tests use the same rules with small parts.
os.environ.setdefault("S3_UPLOAD_PART_MIN_SIZE", str(64 * 1024))

import boto3
import pytest
from boto3.dynamodb.types import TypeSerializer
from django.core.cache import cache
from django.test import Client
from hypothesis import settings as hypothesis_settings
from moto import mock_aws
from rest_framework.test import APIClient

from tenants.models import ApiKey, Tenant
from tenants.services import api_key_create, tenant_create
from uploads.dynamodb import Tables, create_tables, get_item, mirror_tables, query_partition
from uploads.dynamodb import client as dynamodb_client

# Property tests judge behaviour, not speed: no per-example deadline on a shared 2-core machine.
# CI replays a fixed sequence of examples so a landing never hinges on the draw; local runs
# keep exploring new ones.
hypothesis_settings.register_profile("dev", deadline=None)
hypothesis_settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
hypothesis_settings.load_profile("ci" if os.environ.get("CI") else "dev")

BUCKET = "raw-media-test"
REGION: Final = "ap-south-1"


@pytest.fixture(autouse=True)
def isolated_storage(settings: Any, tmp_path: Path) -> Path:
    """Each test gets its own object store and local queue."""
    settings.UPLOADS_LOCAL_ROOT = tmp_path / "objects"
    settings.UPLOADS_LOCAL_QUEUE_DIR = tmp_path / "queue"
    return tmp_path


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    """The admin dashboard is cached: one test's figures must not be another's."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials so nothing can ever reach a real AWS account."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)


@pytest.fixture
def tenant(db: None) -> Tenant:
    return tenant_create(tenant_id="tenant_a", name="Tenant A")


@pytest.fixture
def other_tenant(db: None) -> Tenant:
    return tenant_create(tenant_id="tenant_b", name="Tenant B")


def client_for(tenant: Tenant, role: str = ApiKey.Role.CLIENT) -> APIClient:
    _, raw = api_key_create(tenant=tenant, role=role)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.fixture
def api(tenant: Tenant) -> APIClient:
    return client_for(tenant)


@pytest.fixture
def other_api(other_tenant: Tenant) -> APIClient:
    return client_for(other_tenant)


@pytest.fixture
def pipeline(tenant: Tenant) -> APIClient:
    """The processing pipeline's client: a pipeline-role key of the first tenant."""
    return client_for(tenant, role=ApiKey.Role.PIPELINE)


@pytest.fixture
def s3(settings: Any) -> Iterator[Any]:
    """S3 storage through moto's in-process mock: the real boto3 client, no network."""
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        settings.S3_RAW_MEDIA_BUCKET = BUCKET
        yield client


class Mirror:
    """The DynamoDB mirror's tables as another service reads them, and a count of the portal's
    UpdateItem calls (its writes)."""

    def __init__(self, tables: Tables) -> None:
        self.tables = tables
        self.writes: list[dict[str, Any]] = []
        self.client = boto3.client("dynamodb", region_name=REGION)

    def catalog(self, tracking_id: str) -> dict[str, Any] | None:
        return get_item(table=self.tables.catalog, key={"trackingId": tracking_id})

    def upload_state(self, tracking_id: str) -> dict[str, dict[str, Any]]:
        """The submission's upload-state items by mediaId."""
        items = query_partition(table=self.tables.upload_state, tracking_id=tracking_id)
        return {item["mediaId"]: item for item in items}

    def pipeline_writes(self, tracking_id: str, **attributes: Any) -> None:
        """What the pipeline does instead of calling the events endpoint: SET its own attributes."""
        names = {f"#n{i}": name for i, name in enumerate(attributes)}
        values = {f":v{i}": TypeSerializer().serialize(value) for i, value in enumerate(attributes.values())}
        self.client.update_item(
            TableName=self.tables.catalog,
            Key={"trackingId": {"S": tracking_id}},
            UpdateExpression="SET " + ", ".join(f"{n} = :v{n[2:]}" for n in names),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )


@pytest.fixture
def mirror(settings: Any, aws_credentials: None) -> Iterator[Mirror]:
    """The DynamoDB mirror switched on, its tables in moto's in-process mock, and every
    UpdateItem the portal sends counted."""
    with mock_aws():
        settings.DYNAMODB_CATALOG_TABLE = "CatalogProcessingRecords"
        tables = mirror_tables()
        assert tables is not None
        create_tables(tables)
        watched = Mirror(tables)
        events = dynamodb_client().meta.events
        handler_id = f"count-writes-{id(watched)}"

        def count(params: dict[str, Any], **_: Any) -> None:
            watched.writes.append(params)

        events.register("provide-client-params.dynamodb.UpdateItem", count, unique_id=handler_id)
        yield watched
        events.unregister("provide-client-params.dynamodb.UpdateItem", unique_id=handler_id)


def put_bytes(url: str, data: bytes, headers: dict[str, str] | None = None) -> Any:
    """PUT to a signed URL the way a client would. Local-backend URLs are served by the test
    client; S3 URLs (moto in-process) through requests, which moto intercepts."""
    parts = urlsplit(url)
    if parts.netloc == "testserver":
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        other = {k: v for k, v in (headers or {}).items() if k != "Content-Type"}
        content_type = (headers or {}).get("Content-Type", "application/octet-stream")
        return Client().put(path, data=data, content_type=content_type, headers=other)
    import requests

    return requests.put(url, data=data, headers=headers or {}, timeout=30)
