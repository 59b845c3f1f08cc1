"""A part URL never outlives its upload: signed shortly before the upload expires, it expires
with the upload (not UPLOADS_PART_URL_EXPIRY_SECONDS later), on the local backend and on S3."""

import time
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from tests.conftest import put_bytes
from tests.helpers import assert_error, create_upload, sign_parts
from uploads.models import MediaUpload

pytestmark = pytest.mark.django_db

LEFT = 40  # seconds the upload has left when its part is signed


def expiring_upload(api: APIClient) -> tuple[dict[str, Any], datetime]:
    created = create_upload(api)  # multipart: PART_URL_EXPIRY (900 s) would outlive the upload
    expires_at = timezone.now() + timedelta(seconds=LEFT)
    MediaUpload.objects.filter(media_id=created["mediaId"]).update(expires_at=expires_at)
    return created, expires_at


def test_local_part_url_signed_near_the_uploads_expiry_expires_with_it(
    api: APIClient, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert settings.UPLOADS_PART_URL_EXPIRY_SECONDS > LEFT
    created, expires_at = expiring_upload(api)
    signed = sign_parts(api, created["mediaId"], [1])[1]
    assert datetime.fromisoformat(signed["expiresAt"]) <= expires_at + timedelta(seconds=1)

    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + LEFT + 2)  # just after the upload expired
    response = put_bytes(signed["url"], b"x" * created["partSize"], signed["headers"])
    assert_error(response, 403, "url_expired")


def test_s3_part_url_signed_near_the_uploads_expiry_expires_with_it(s3: Any, api: APIClient) -> None:
    created, _ = expiring_upload(api)
    signed = sign_parts(api, created["mediaId"], [1])[1]
    query = parse_qs(urlsplit(signed["url"]).query)
    assert 1 <= int(query["X-Amz-Expires"][0]) <= LEFT
