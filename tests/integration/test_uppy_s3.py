"""Uppy's routes and the bucket set-up against S3 on a moto server over HTTP: what a browser
meets (form POST to the bucket URL, part PUTs, CORS preflights), with boto3 finding the server
through AWS_ENDPOINT_URL_S3 as any S3-compatible endpoint would be configured."""

from io import StringIO
from typing import Any

import pytest
import requests
from django.core.management import CommandError, call_command
from django.test import Client

from tenants.models import Tenant
from tests.helpers import PART, PHOTO, payload, s3_multipart_etag
from tests.integration.conftest import ServerBucket
from tests.uppy_client import complete, created, sign, signed_form, staff_client, tracking_of, v1_complete
from uploads.storage.s3 import LIFECYCLE_RULE_ID

APP = "https://app.example"


def setup(*origins: str) -> str:
    out = StringIO()
    call_command("s3_setup_bucket", *[f"--origin={o}" for o in origins], stdout=out)
    return out.getvalue()


@pytest.fixture
def uppy(tenant: Tenant, other_tenant: Tenant) -> Client:
    return staff_client(tenant)


# --- s3_setup_bucket ------------------------------------------------------------------------------
def test_setup_writes_cors_and_lifecycle_keeping_other_rules_and_is_idempotent(bucket: ServerBucket) -> None:
    s3 = bucket.client
    s3.put_bucket_cors(
        Bucket=bucket.name,
        CORSConfiguration={"CORSRules": [{"ID": "reports", "AllowedMethods": ["GET"], "AllowedOrigins": ["*"]}]},
    )
    logs_rule = {"ID": "expire-logs", "Status": "Enabled", "Filter": {"Prefix": "logs/"}, "Expiration": {"Days": 30}}
    s3.put_bucket_lifecycle_configuration(Bucket=bucket.name, LifecycleConfiguration={"Rules": [logs_rule]})

    first = setup(APP, "http://127.0.0.1:8000/")
    assert "CORS rule portal-browser-uploads written" in first
    assert f"Lifecycle rule {LIFECYCLE_RULE_ID} written" in first

    cors = {r.get("ID"): r for r in s3.get_bucket_cors(Bucket=bucket.name)["CORSRules"]}
    assert set(cors) == {"reports", "portal-browser-uploads"}
    ours = cors["portal-browser-uploads"]
    assert sorted(ours["AllowedMethods"]) == ["POST", "PUT"]
    assert sorted(ours["AllowedOrigins"]) == ["http://127.0.0.1:8000", APP]
    assert sorted(ours["AllowedHeaders"]) == ["Content-Type", "If-None-Match"]
    assert ours["ExposeHeaders"] == ["ETag"]
    rules = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=bucket.name)["Rules"]}
    assert set(rules) == {"expire-logs", LIFECYCLE_RULE_ID}
    assert rules[LIFECYCLE_RULE_ID]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 8}
    assert rules["expire-logs"]["Expiration"] == {"Days": 30}

    again = setup(APP, "http://127.0.0.1:8000")
    assert "unchanged" in again.splitlines()[0] and "unchanged" in again.splitlines()[1]
    assert len(s3.get_bucket_cors(Bucket=bucket.name)["CORSRules"]) == 2
    assert len(s3.get_bucket_lifecycle_configuration(Bucket=bucket.name)["Rules"]) == 2

    assert "written" in setup(APP)  # a changed origin list replaces our rule, not the others
    cors = {r.get("ID"): r for r in s3.get_bucket_cors(Bucket=bucket.name)["CORSRules"]}
    assert cors["portal-browser-uploads"]["AllowedOrigins"] == [APP] and "reports" in cors


def test_setup_defaults_to_the_portals_own_and_configured_origins(bucket: ServerBucket, settings: Any) -> None:
    settings.PORTAL_BASE_URL = "https://portal.example"
    settings.UPLOADS_CORS_ORIGINS = [APP]
    setup()
    [rule] = bucket.client.get_bucket_cors(Bucket=bucket.name)["CORSRules"]
    assert sorted(rule["AllowedOrigins"]) == [APP, "https://portal.example"]


def test_setup_without_a_bucket_is_an_error(settings: Any) -> None:
    settings.S3_RAW_MEDIA_BUCKET = ""
    with pytest.raises(CommandError, match="S3_RAW_MEDIA_BUCKET"):
        setup()


def test_the_rule_lets_the_origin_read_each_parts_etag(uppy: Client, bucket: ServerBucket) -> None:
    """moto's server answers every preflight itself (wide open), but reads the bucket's rule for
    the headers of the PUT's answer: the one a page needs, the part's ETag, exposed to `APP`."""

    def put_part(number: int) -> requests.Response:
        url = sign(uppy, upload, number).json()["url"]
        response = requests.put(url, data=payload(PART, seed=number), headers={"Origin": APP}, timeout=30)
        assert response.status_code == 200
        return response

    upload = created(uppy)
    assert "Access-Control-Expose-Headers" not in put_part(1).headers  # before the set-up
    setup(APP)
    after = put_part(2)
    assert after.headers["Access-Control-Allow-Origin"] == APP
    assert after.headers["Access-Control-Expose-Headers"] == "ETag" and after.headers["ETag"]


# --- Uppy's uploads against the server -------------------------------------------------------------
def test_a_form_post_and_a_multipart_upload_over_http_complete_byte_identical(
    uppy: Client, bucket: ServerBucket
) -> None:
    form = signed_form(uppy)
    assert form["url"] == f"{bucket.endpoint}/{bucket.name}/"
    posted = requests.post(form["url"], data=form["fields"], files={"file": ("blob", PHOTO, "image/jpeg")}, timeout=30)
    assert posted.status_code == 204, posted.text

    audio = payload(PART * 2 + 77, seed=9)
    chunks = [audio[:PART], audio[PART : 2 * PART], audio[2 * PART :]]
    upload = created(uppy, trackingId=tracking_of(form["fields"]["key"]))
    parts = []
    for number, chunk in enumerate(chunks, start=1):
        url = sign(uppy, upload, number).json()["url"]
        put = requests.put(url, data=chunk, timeout=30)
        assert put.status_code == 200, put.text
        parts.append((number, put.headers["ETag"]))
    assert complete(uppy, upload, parts).status_code == 200
    assert bucket.client.head_object(Bucket=bucket.name, Key=upload["key"])["ETag"] == s3_multipart_etag(chunks)
    assert bucket.multipart_uploads_of(upload["key"]) == []

    accepted = v1_complete(uppy, tracking_of(upload["key"]), form["fields"]["key"], upload["key"])
    assert accepted.status_code == 202, accepted.content
    assert bucket.object_bytes(form["fields"]["key"]) == PHOTO
    assert bucket.object_bytes(upload["key"]) == audio
