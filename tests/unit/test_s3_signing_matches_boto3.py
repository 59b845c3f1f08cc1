"""The portal's own S3 presigner (uploads.storage.s3_signing) returns, for any key, upload id, part
number, size, expiry, region, endpoint, credentials and second, exactly the URL boto3's
generate_presigned_url returns for the same client: the same string, byte for byte. Whatever it
does not reproduce it leaves to boto3. No network: both sides sign locally, at a frozen time."""

import datetime as dt
import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import boto3
import botocore.auth
import pytest
from botocore import UNSIGNED
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import NoCredentialsError
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import BUCKET, REGION
from uploads.keys import MEDIA_ID_PATTERN, TRACKING_ID_PATTERN, build_object_key
from uploads.media_types import MEDIA_TYPES
from uploads.storage import S3Storage
from uploads.storage.s3_signing import MAX_EXPIRES_SECONDS, S3Presigner

pytestmark = pytest.mark.once

REGIONS = ["us-east-1", "ap-south-1", "eu-west-1", "us-west-2", "eu-central-1", "sa-east-1", "cn-north-1"]
# (addressing style, endpoint): AWS's regional virtual host (the portal's default on AWS), botocore's
# own choice, forced path style, and S3-compatible servers (the portal leaves their style to botocore).
ENDPOINTS: list[tuple[str | None, str | None]] = [
    ("virtual", None),
    (None, None),
    ("path", None),
    (None, "http://localhost:5000"),
    (None, "https://minio.example.com:9000/s3/"),
    ("virtual", "http://localhost:5000"),
]
# Role credentials carry a long token with characters that need quoting.
SESSION_TOKEN = "IQoJb3JpZ2luX2VjEJr//////////wEaCmFwLXNvdXRoLTEiRzBFAiEA+abc/def==" * 12


@cache
def presigner_for(region: str, style: str | None, endpoint: str | None, token: str | None) -> S3Presigner:
    """One client and presigner per configuration: building a client costs ~30 ms, signing ~0.2."""
    s3_options: Any = {"addressing_style": style} if style else None
    client = boto3.client(
        "s3",
        region_name=region,
        endpoint_url=endpoint,
        aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        aws_session_token=token,
        config=Config(s3=s3_options, signature_version="s3v4"),
    )
    return S3Presigner(client, BUCKET)


@contextmanager
def frozen_at(presigner: S3Presigner, moment: dt.datetime) -> Iterator[None]:
    """botocore and the presigner both read this instant as now."""
    naive_utc = moment.astimezone(dt.UTC).replace(tzinfo=None)
    clock = presigner.clock
    presigner.clock = moment.timestamp
    try:
        with mock.patch.object(botocore.auth, "get_current_datetime", lambda *_, **__: naive_utc):
            yield
    finally:
        presigner.clock = clock


def signed_here(presigner: S3Presigner, sign: Callable[[], str]) -> str:
    """`sign()`, failing if the presigner handed the URL to boto3 instead of signing it."""
    assert presigner.active  # its probes, which ask boto3, run first
    with mock.patch.object(presigner.client, "generate_presigned_url", side_effect=AssertionError("boto3 signed it")):
        return sign()


def boto3_part_url(presigner: S3Presigner, key: str, upload_id: str, part_number: int, size: int | None, expires: int):
    # The Params order is S3Storage's: it decides the order of the URL's query parameters.
    params: dict[str, Any] = {"Bucket": BUCKET, "Key": key, "UploadId": upload_id, "PartNumber": part_number}
    if size is not None:
        params["ContentLength"] = size
    return presigner.client.generate_presigned_url("upload_part", Params=params, ExpiresIn=expires)


def boto3_put_url(presigner: S3Presigner, key: str, content_type: str, size: int, expires: int) -> str:
    params = {"Bucket": BUCKET, "Key": key, "ContentType": content_type, "IfNoneMatch": "*", "ContentLength": size}
    return presigner.client.generate_presigned_url("put_object", Params=params, ExpiresIn=expires)


# --- strategies -------------------------------------------------------------------------------------
no_surrogates = st.characters(codec="utf-8")  # what an S3 key can hold
portal_keys = st.builds(
    lambda tenant, artisan, tracking, media, ext: build_object_key(
        tenant_id=tenant, artisan_id=artisan, tracking_id=tracking, media_id=media, ext=ext
    ),
    st.from_regex(r"[a-z0-9][a-z0-9_-]{0,62}", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True),
    st.from_regex(TRACKING_ID_PATTERN, fullmatch=True),
    st.from_regex(MEDIA_ID_PATTERN, fullmatch=True),
    st.sampled_from(["jpg", "png", "heic", "ogg", "mp3", "m4a", "mp4", "mov", "webm"]),
)
needs_quoting = st.text(
    st.sampled_from(list(" +~%/?#&=;:@!$'()*,.-_aZ9é中\x00\x7f\U0001f600")), min_size=1, max_size=60
)
keys = st.one_of(portal_keys, needs_quoting, st.text(no_surrogates, min_size=1, max_size=300))
upload_ids = st.one_of(
    st.from_regex(r"[A-Za-z0-9._-]{20,120}", fullmatch=True),  # S3's shape
    st.text(no_surrogates, min_size=1, max_size=80),
)
moments = st.datetimes(
    min_value=dt.datetime(2000, 1, 1),
    max_value=dt.datetime(2099, 12, 31, 23, 59, 59, 999999),
    timezones=st.just(dt.UTC),
)
configs = st.tuples(st.sampled_from(REGIONS), st.sampled_from(ENDPOINTS), st.sampled_from([None, SESSION_TOKEN]))


@settings(max_examples=600)
@given(
    config=configs,
    key=keys,
    upload_id=upload_ids,
    part_number=st.integers(1, 10_000),
    size=st.none() | st.integers(0, 5 * 1024**3),
    expires=st.integers(1, MAX_EXPIRES_SECONDS),
    moment=moments,
)
def test_part_urls_are_byte_identical_to_boto3s(
    config: tuple[str, tuple[str | None, str | None], str | None],
    key: str,
    upload_id: str,
    part_number: int,
    size: int | None,
    expires: int,
    moment: dt.datetime,
) -> None:
    region, (style, endpoint), token = config
    presigner = presigner_for(region, style, endpoint, token)
    with frozen_at(presigner, moment):
        ours = signed_here(
            presigner,
            lambda: presigner.upload_part(
                key=key, upload_id=upload_id, part_number=part_number, size=size, expires_in=expires
            ),
        )
        assert ours == boto3_part_url(presigner, key, upload_id, part_number, size, expires)


@settings(max_examples=200)
@given(
    config=configs,
    key=keys,
    content_type=st.sampled_from(sorted(MEDIA_TYPES)) | st.from_regex(r"[a-z]{1,12}/[a-z0-9.+-]{1,20}", fullmatch=True),
    size=st.integers(0, 5 * 1024**3),
    expires=st.integers(1, MAX_EXPIRES_SECONDS),
    moment=moments,
)
def test_single_put_urls_are_byte_identical_to_boto3s(
    config: tuple[str, tuple[str | None, str | None], str | None],
    key: str,
    content_type: str,
    size: int,
    expires: int,
    moment: dt.datetime,
) -> None:
    region, (style, endpoint), token = config
    presigner = presigner_for(region, style, endpoint, token)
    with frozen_at(presigner, moment):
        ours = signed_here(
            presigner,
            lambda: presigner.put_object(key=key, content_type=content_type, size=size, expires_in=expires),
        )
        assert ours == boto3_put_url(presigner, key, content_type, size, expires)


def test_a_batch_across_midnight_switches_the_signing_day_as_boto3_does() -> None:
    presigner = presigner_for("ap-south-1", "virtual", None, SESSION_TOKEN)
    key = "tenant_a/art_1/trk_0123456789abcdef01234567/med_0123456789abcdef01234567.jpg"
    for second in (-2, -1, 0, 1, 86399, 86400):
        moment = dt.datetime(2031, 5, 6, tzinfo=dt.UTC) + dt.timedelta(seconds=second, microseconds=999999)
        with frozen_at(presigner, moment):
            ours = signed_here(
                presigner,
                lambda: presigner.upload_part(key=key, upload_id="up", part_number=3, size=8 << 20, expires_in=900),
            )
            assert ours == boto3_part_url(presigner, key, "up", 3, 8 << 20, 900)


def test_rotated_credentials_reach_the_urls_and_match_boto3() -> None:
    """An instance role's credentials change under the client; the presigner reads them from the
    client's own provider, so its URLs follow (here at once: a zero reuse window). A new token
    alone, or no token any more, counts as new credentials too."""
    client: Any = boto3.client("s3", region_name=REGION, config=Config(s3={"addressing_style": "virtual"}))
    presigner = S3Presigner(client, BUCKET, credentials_ttl=0)
    moment = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    generations = [("AKIAONE", "secret1", "token1"), ("AKIAONE", "secret1", "token2"), ("AKIATWO", "secret2", None)]
    for access_key, secret_key, token in generations:
        client._request_signer._credentials = Credentials(access_key, secret_key, token)
        with frozen_at(presigner, moment):
            ours = signed_here(
                presigner,
                lambda: presigner.upload_part(key="t/a/k.jpg", upload_id="u", part_number=1, size=5, expires_in=60),
            )
            assert ours == boto3_part_url(presigner, "t/a/k.jpg", "u", 1, 5, 60)
        query = parse_qs(urlsplit(ours).query)
        assert query["X-Amz-Credential"][0].startswith(f"{access_key}/20300102/{REGION}/s3/")
        assert query.get("X-Amz-Security-Token") == ([token] if token else None)


@pytest.mark.parametrize(
    ("call", "why"),
    [
        ({"part_number": 10_001}, "beyond S3's part numbers"),
        ({"part_number": 0}, "below S3's part numbers"),
        ({"expires_in": MAX_EXPIRES_SECONDS + 1}, "longer than SigV4 allows"),
        ({"expires_in": 0}, "no lifetime"),
        ({"size": -1}, "a negative size"),
    ],
)
def test_arguments_outside_what_the_probes_cover_are_signed_by_boto3(call: dict[str, Any], why: str) -> None:
    presigner = presigner_for(REGION, "virtual", None, None)
    args: dict[str, Any] = {"key": "t/a/k.jpg", "upload_id": "u", "part_number": 1, "size": 5, "expires_in": 60}
    args.update(call)
    with frozen_at(presigner, dt.datetime(2030, 1, 2, tzinfo=dt.UTC)):
        reference = boto3_part_url(
            presigner, args["key"], args["upload_id"], args["part_number"], args["size"], args["expires_in"]
        )
        with mock.patch.object(presigner.client, "generate_presigned_url", return_value=reference) as boto3_signs:
            assert presigner.upload_part(**args) == reference, why
    boto3_signs.assert_called_once()


@pytest.mark.parametrize(
    "content_type",
    [
        "image/jpeg ",
        "multipart/form-data;  boundary=x",
        "tëxt/plain",
        "application/x-www-form-urlencoded; charset=utf-8",
    ],
)
def test_content_types_botocore_would_rewrite_are_signed_by_boto3(content_type: str) -> None:
    presigner = presigner_for(REGION, "virtual", None, None)
    with frozen_at(presigner, dt.datetime(2030, 1, 2, tzinfo=dt.UTC)):
        ours = presigner.put_object(key="t/a/k.jpg", content_type=content_type, size=5, expires_in=60)
        assert ours == boto3_put_url(presigner, "t/a/k.jpg", content_type, 5, 60)


def test_an_unsigned_client_is_left_to_boto3() -> None:
    client = boto3.client("s3", region_name=REGION, config=Config(signature_version=UNSIGNED))
    presigner = S3Presigner(client, BUCKET)

    assert not presigner.active
    url = presigner.upload_part(key="t/a/k.jpg", upload_id="u", part_number=1, size=5, expires_in=60)
    assert url == boto3_part_url(presigner, "t/a/k.jpg", "u", 1, 5, 60)
    assert "X-Amz-Signature" not in url


def test_a_handler_that_rewrites_the_request_turns_the_presigner_off() -> None:
    """An event handler changes what boto3 signs; the presigner cannot know what it does, but its
    probes see the difference, and boto3 signs every URL from then on."""
    client = boto3.client("s3", region_name=REGION, config=Config(s3={"addressing_style": "virtual"}))

    def add_header(request: Any, **_: Any) -> None:
        request.headers["x-amz-meta-origin"] = "portal"

    client.meta.events.register("before-sign.s3.UploadPart", add_header)
    presigner = S3Presigner(client, BUCKET)

    assert not presigner.active
    with frozen_at(presigner, dt.datetime(2030, 1, 2, tzinfo=dt.UTC)):
        url = presigner.upload_part(key="t/a/k.jpg", upload_id="u", part_number=1, size=5, expires_in=60)
        assert url == boto3_part_url(presigner, "t/a/k.jpg", "u", 1, 5, 60)
    assert "x-amz-meta-origin" in parse_qs(urlsplit(url).query)["X-Amz-SignedHeaders"][0]


def test_a_client_without_credentials_fails_as_boto3_does(monkeypatch: pytest.MonkeyPatch) -> None:
    client: Any = boto3.client("s3", region_name=REGION)
    client._request_signer._credentials = None
    presigner = S3Presigner(client, BUCKET)

    with pytest.raises(NoCredentialsError):
        presigner.upload_part(key="t/a/k.jpg", upload_id="u", part_number=1, size=5, expires_in=60)
    client._request_signer._credentials = Credentials("AKIALATER", "secret")
    assert presigner.active  # credentials that arrive later are used: a failure is not remembered


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = io.BytesIO(data)

    def stream(self, *_: Any, **__: Any) -> Iterator[bytes]:
        yield self.data.read()

    def read(self, *_: Any, **__: Any) -> bytes:
        return self.data.read()


def test_urls_follow_the_bucket_region_boto3_learns_from_a_redirect() -> None:
    """A bucket outside the configured region: S3 answers 301 naming the bucket's region, botocore
    remembers it and signs URLs for that region's host from then on. So does the presigner."""
    client: Any = boto3.client("s3", region_name=REGION, config=Config(s3={"addressing_style": "virtual"}))
    presigner = S3Presigner(client, BUCKET)
    moment = dt.datetime(2030, 1, 2, tzinfo=dt.UTC)
    with frozen_at(presigner, moment):
        before = signed_here(
            presigner, lambda: presigner.upload_part(key="k", upload_id="u", part_number=1, size=5, expires_in=60)
        )
    redirect = (
        b"<Error><Code>PermanentRedirect</Code><Message>Use the bucket's region.</Message>"
        b"<Endpoint>" + f"{BUCKET}.s3.eu-west-1.amazonaws.com".encode() + b"</Endpoint></Error>"
    )
    answers = [(301, redirect), (200, b"")]

    def s3_answers(request: Any, **_: Any) -> AWSResponse:
        status, body = answers.pop(0)
        headers = HTTPHeaders()
        headers["x-amz-bucket-region"] = "eu-west-1"
        return AWSResponse(request.url, status, headers, _Body(body))

    client.meta.events.register("before-send.s3", s3_answers)
    client.head_object(Bucket=BUCKET, Key="k")

    with frozen_at(presigner, moment):
        after = signed_here(
            presigner, lambda: presigner.upload_part(key="k", upload_id="u", part_number=1, size=5, expires_in=60)
        )
        assert after == boto3_part_url(presigner, "k", "u", 1, 5, 60)
    assert urlsplit(before).netloc == f"{BUCKET}.s3.{REGION}.amazonaws.com"
    assert urlsplit(after).netloc == f"{BUCKET}.s3.eu-west-1.amazonaws.com"


@pytest.mark.parametrize("endpoint", [None, "http://localhost:5000"])
def test_storage_signs_parts_and_puts_as_boto3_would(monkeypatch: pytest.MonkeyPatch, endpoint: str | None) -> None:
    """S3Storage's own client: the regional virtual host on AWS, path style on an S3-compatible
    endpoint (AWS_ENDPOINT_URL_S3), and the params S3Storage signed with before the presigner."""
    if endpoint:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
    storage = S3Storage(bucket=BUCKET, region=REGION)
    key = "tenant_a/art_1/trk_0123456789abcdef01234567/med_0123456789abcdef01234567.jpg"
    with frozen_at(storage.presigner, dt.datetime(2030, 6, 7, 8, 9, 10, tzinfo=dt.UTC)):
        part = signed_here(
            storage.presigner,
            lambda: storage.presign_parts(key=key, upload_id="u-1", parts=[(42, 8 << 20)], expires_in=900)[0].url,
        )
        open_part = signed_here(
            storage.presigner,
            lambda: storage.presign_parts(key=key, upload_id="u-1", parts=[(43, None)], expires_in=900)[0].url,
        )
        put = signed_here(
            storage.presigner,
            lambda: storage.presign_put(key=key, content_type="image/jpeg", size=1234, expires_in=600).url,
        )
        assert part == boto3_part_url(storage.presigner, key, "u-1", 42, 8 << 20, 900)
        assert open_part == boto3_part_url(storage.presigner, key, "u-1", 43, None, 900)
        assert put == boto3_put_url(storage.presigner, key, "image/jpeg", 1234, 600)
    expected_host = "localhost:5000" if endpoint else f"{BUCKET}.s3.{REGION}.amazonaws.com"
    assert urlsplit(part).netloc == expected_host
