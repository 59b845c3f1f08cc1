"""A batch of part URLs is signed at once (uploads.storage.local_signing.sign_parts): each token
must stay exactly signing.dumps' token of the part's claims, uncompressed, at the path reverse()
gives, so that signing.loads (verify_put) reads it and no claim is lost or added; S3 signs a
batch as it signs each part."""

import time
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from django.core import signing
from django.urls import reverse, set_script_prefix
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import BUCKET, REGION
from uploads.storage import S3Storage
from uploads.storage.local_signing import sign_parts, verify_put

SALT = "uploads.storage.local.put"
NOW = 1_790_000_000.5

part = st.tuples(
    st.integers(min_value=1, max_value=10_000), st.one_of(st.none(), st.integers(min_value=0, max_value=5 * 1024**3))
)


def signed_at(now: float, **kwargs: Any) -> list[Any]:
    real_time = time.time
    time.time = lambda: now  # the module reads the clock through time.time, as signing does
    try:
        return sign_parts(**kwargs)
    finally:
        time.time = real_time


@given(
    key=st.text(min_size=1, max_size=300),
    upload_id=st.text(alphabet="0123456789abcdef-", max_size=40),
    parts=st.lists(part, min_size=1, max_size=5),
    expires_in=st.integers(min_value=-10, max_value=7 * 24 * 3600),
    now=st.floats(min_value=0, max_value=2**33),
)
def test_each_url_of_a_batch_is_reverse_of_signing_dumps_token_of_its_claims(
    key: str, upload_id: str, parts: list[tuple[int, int | None]], expires_in: int, now: float
) -> None:
    signed = signed_at(now, key=key, upload_id=upload_id, parts=parts, expires_in=expires_in)
    expires = int(now) + expires_in
    real_time = time.time
    time.time = lambda: now
    try:
        expected = [
            reverse(
                "local-storage-put",
                args=[signing.dumps({"k": key, "u": upload_id, "n": n, "s": size, "e": expires}, salt=SALT)],
            )
            for n, size in parts
        ]
    finally:
        time.time = real_time
    assert [request.url for request in signed] == expected
    assert {request.expires_at.timestamp() for request in signed} == {expires}
    assert all(request.headers == {} and request.method == "PUT" for request in signed)


def test_a_batch_follows_the_script_prefix() -> None:
    set_script_prefix("/portal/")
    try:
        [signed] = sign_parts(key="t/a/trk/med.ogg", upload_id="u-1", parts=[(1, 10)], expires_in=60)
        assert signed.url.startswith("/portal/storage/put/")
        assert signed.url == reverse("local-storage-put", args=[signed.url.rsplit("/", 1)[1]])
    finally:
        set_script_prefix("/")


def test_a_part_token_verifies_to_its_claims_and_nothing_else() -> None:
    [first, second] = sign_parts(key="t/a/trk/med.ogg", upload_id="u-1", parts=[(3, 10), (4, None)], expires_in=60)
    claims = verify_put(first.url.rsplit("/", 1)[1], 10)
    assert claims == {"k": "t/a/trk/med.ogg", "u": "u-1", "n": 3, "s": 10, "e": int(first.expires_at.timestamp())}
    assert verify_put(second.url.rsplit("/", 1)[1], 12345)["s"] is None


def unsigned(url: str) -> tuple[str, dict[str, str]]:
    """A presigned URL's path and query but for its time and signature (two calls may fall in
    different seconds)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    return f"{parts.netloc}{parts.path}", {k: v for k, v in query.items() if k not in ("X-Amz-Date", "X-Amz-Signature")}


def test_s3_signs_a_batch_as_it_signs_each_part(s3: Any) -> None:
    storage = S3Storage(bucket=BUCKET, region=REGION)
    parts = [(1, 100), (2, 100), (7, None)]
    batch = storage.presign_parts(key="t/a/trk/med.ogg", upload_id="u-1", parts=parts, expires_in=900)
    assert len(batch) == len(parts)
    for (number, size), signed in zip(parts, batch, strict=True):
        (single,) = storage.presign_parts(
            key="t/a/trk/med.ogg", upload_id="u-1", parts=[(number, size)], expires_in=900
        )
        assert unsigned(signed.url) == unsigned(single.url)
        assert (unsigned(signed.url)[1]["partNumber"], unsigned(signed.url)[1]["uploadId"]) == (str(number), "u-1")
        assert signed.headers == single.headers == {}
