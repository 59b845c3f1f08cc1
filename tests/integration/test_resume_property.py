"""Property: whatever happens to the parts on the way (lost, repeated, out of order, sent with
expired URLs), a client that resumes only from GET /v1/catalog/uploads/{mediaId}?urls=N ends
with an object byte-identical to its file, with S3's ETag, on both storage backends."""

from typing import Any

import pytest
from django.conf import settings as django_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

import uploads.storage.local_signing
from tests.conftest import BUCKET
from tests.integration.resume_client import Backend, Clock, ResumingClient, Round, Scenario, file_bytes

PART_SIZE = django_settings.UPLOADS_MIN_PART_SIZE  # 64 KiB in the test settings
SINGLE_MAX = django_settings.UPLOADS_MULTIPART_THRESHOLD  # 256 KiB: at or below it, one PUT
MULTIPART_MAX = 6 * PART_SIZE

property_settings = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def sizes(maximum: int) -> st.SearchStrategy[int]:
    """Any size, with the part boundaries (where off-by-ones live) drawn often."""
    edges = sorted(
        {s for n in range(1, maximum // PART_SIZE + 1) for s in (n * PART_SIZE - 1, n * PART_SIZE, n * PART_SIZE + 1)}
    )
    return st.one_of(st.integers(1, maximum), st.sampled_from([1, *(s for s in edges if s <= maximum)]))


@st.composite
def rounds(draw: st.DrawFn, part_count: int) -> Round:
    numbers = list(range(1, part_count + 1))
    sends = list(draw(st.permutations(numbers)))
    for repeated in draw(st.lists(st.sampled_from(numbers), max_size=part_count)):
        sends.insert(draw(st.integers(0, len(sends))), repeated)
    lost = draw(st.frozensets(st.integers(0, len(sends) - 1)))  # a part lost, then perhaps re-sent
    expire_after = draw(st.none() | st.integers(0, len(sends)))
    return Round(sends=tuple(sends), lost=lost, expire_after=expire_after)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    multipart = draw(st.booleans())
    size = draw(sizes(MULTIPART_MAX if multipart else SINGLE_MAX))
    part_count = -(-size // PART_SIZE) if multipart else 1
    return Scenario(
        size=size,
        seed=draw(st.integers(0, 2**32)),
        part_size=PART_SIZE if multipart else None,
        rounds=tuple(draw(st.lists(rounds(part_count), min_size=1, max_size=3))),
        urls_per_resume=draw(st.integers(1, part_count)),
    )


def check_resumed_upload(api: APIClient, other_api: APIClient, backend: Backend, scenario: Scenario) -> None:
    client = ResumingClient(api=api, other_api=other_api, backend=backend, scenario=scenario)
    completed = client.run()
    assert backend.read_object(completed["key"]) == file_bytes(scenario.size, scenario.seed)


@pytest.fixture
def local_backend(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Backend:
    clock = Clock()
    monkeypatch.setattr(uploads.storage.local_signing, "time", clock)
    root = settings.UPLOADS_LOCAL_ROOT
    return Backend(
        name="local",
        read_object=lambda key: (root / "objects" / key).read_bytes(),
        clock=clock,
        url_lifetime=max(settings.UPLOADS_URL_EXPIRY_SECONDS, settings.UPLOADS_PART_URL_EXPIRY_SECONDS),
    )


@pytest.fixture
def s3_backend(s3: Any) -> Backend:
    return Backend(name="s3", read_object=lambda key: s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())


@property_settings
@given(scenario=scenarios())
def test_resumed_upload_is_byte_identical_on_local_storage(
    api: APIClient, other_api: APIClient, local_backend: Backend, scenario: Scenario
) -> None:
    check_resumed_upload(api, other_api, local_backend, scenario)


@property_settings
@given(scenario=scenarios())
def test_resumed_upload_is_byte_identical_on_s3(
    api: APIClient, other_api: APIClient, s3_backend: Backend, scenario: Scenario
) -> None:
    check_resumed_upload(api, other_api, s3_backend, scenario)
