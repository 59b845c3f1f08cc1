"""The S3 client is bounded like SQS's: a stalled S3 cannot hold a request for botocore's
default 60 s per attempt, and the bounds come from settings an operator can change."""

from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import BUCKET, REGION
from uploads.storage import S3Storage

pytestmark = pytest.mark.once


def test_s3_client_has_bounded_timeouts_and_retries_by_default(s3: Any) -> None:
    config: Any = S3Storage(bucket=BUCKET, region=REGION).client.meta.config
    assert config.connect_timeout == 5
    assert config.read_timeout == 20
    assert config.retries == {"total_max_attempts": 3, "mode": "standard"}


def test_s3_client_bounds_follow_the_settings(s3: Any, settings: Any) -> None:
    settings.AWS_S3_CONNECT_TIMEOUT_SECONDS = 2
    settings.AWS_S3_READ_TIMEOUT_SECONDS = 7
    settings.AWS_S3_MAX_ATTEMPTS = 1
    config: Any = S3Storage(bucket=BUCKET, region=REGION).client.meta.config
    assert (config.connect_timeout, config.read_timeout) == (2, 7)
    assert config.retries == {"total_max_attempts": 1, "mode": "standard"}


def test_bounded_client_keeps_signature_v4_and_the_regional_virtual_host(s3: Any) -> None:
    storage = S3Storage(bucket=BUCKET, region=REGION)
    signed = storage.presign_put(key="t/a/k.jpg", content_type="image/jpeg", size=3, expires_in=60)
    assert urlsplit(signed.url).netloc == f"{BUCKET}.s3.{REGION}.amazonaws.com"
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in signed.url
