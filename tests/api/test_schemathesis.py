"""Schemathesis against the OpenAPI document at /v1/schema/: every operation, at least 200
generated cases for each of a client key, a pipeline key and no key, sent in-process to the WSGI
app. No answer may be a 5xx and every answer must match the document (status codes, bodies,
headers, content types). A second test replays schemathesis' deterministic coverage cases.

Random ids only ever meet a 404, so the tenant holds a completed submission and an open multipart
upload, and about half of the cases have their path ids, and the ids, keys and types in their
JSON body, swapped for real ones: then cases also start, complete, sign, abort and report on
existing objects, and the success bodies are checked too."""

from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from tenants.models import ApiKey
from tenants.services import api_key_create, tenant_create
from tests.conftest import client_for
from tests.helpers import MULTIPART_SIZE, PART, PHOTO, complete_body, create_upload, uploaded_submission

pytestmark = [pytest.mark.slow, pytest.mark.once]

schema = schemathesis.openapi.from_wsgi("/v1/schema/?format=json", get_wsgi_application())

CASES = 200
# What the API promises whatever the input: no 5xx, an answer the document describes, and no
# success for an operation that requires a key once the key is removed or spoiled (ignored_auth
# sends the case again that way). Whether invalid input is refused is checked on the coverage
# cases only: swapping in real ids and values can make a generated invalid request valid.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    ignored_auth,
]
COVERAGE_CHECKS = [*CHECKS, negative_data_rejection, unsupported_method]
# The seeded tenant is shared by all of a test's cases, on purpose: they act on the same objects
# one after another, as a client's requests do (a completed submission stays completed). How fast
# cases are drawn on a busy 2-core CI machine is not what this test is about.
SHARED_STATE = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]


@dataclass(frozen=True)
class Seeded:
    headers: dict[str, str]
    # Real values by the name they have in a path or a JSON body.
    known: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    # The completed submission's own body: only together do these fields name it.
    submission: dict[str, str] = field(default_factory=dict)


@pytest.fixture(params=["client", "pipeline", "none"])
def seeded(request: pytest.FixtureRequest, transactional_db: None, settings: Any) -> Seeded:
    """One tenant with a completed submission (photo and audio at storage) and an open multipart
    upload, and the Authorization header the cases are sent with (none for "none"). Committed
    transactions, so a completion's on-commit hand-off to processing runs as in production. Rate
    limits are off: a 429 is documented, but it would stop cases reaching the views."""
    settings.API_RATE_PER_KEY = settings.API_RATE_PER_TENANT = "off"
    tenant = tenant_create(tenant_id="tenant_a", name="Tenant A")
    api = client_for(tenant)
    submission = uploaded_submission(api)
    body = complete_body(submission)
    assert api.post("/v1/catalog/upload/complete", body, format="json").status_code == 202
    multipart = create_upload(api)
    headers = {}
    if request.param != "none":
        _, raw = api_key_create(tenant=tenant, role=ApiKey.Role(request.param))
        headers["Authorization"] = f"Bearer {raw}"
    tracking_ids = (submission["trackingId"], multipart["trackingId"])
    media_ids = (submission["photoMediaId"], submission["audioMediaId"], multipart["mediaId"])
    return Seeded(
        headers=headers,
        known={
            "tracking_id": tracking_ids,
            "media_id": media_ids,
            "trackingId": tracking_ids,
            "artisanId": ("art_1",),
            "contentType": ("image/jpeg", "audio/ogg"),
            "fileSize": (len(PHOTO), MULTIPART_SIZE),
            "language": ("hi",),
            "priority": ("normal", "high"),
            "part_number": (1, 5),  # the multipart upload has five parts
            "partNumbers": ([1], [2, 5]),
            "size": (PART,),
            "eventId": ("evt-1", "evt-2"),
        },
        submission={k: body[k] for k in ("trackingId", "photoKey", "audioKey")},
    )


def _swap_in_real_values(case: Any, data: Any, seeded: Seeded) -> None:
    """Replace some generated values by real ones, each by a draw, so shrinking still works."""
    for values in (case.path_parameters, case.body):
        if not isinstance(values, dict):
            continue
        for name, known in seeded.known.items():
            if name in values and data.draw(st.booleans(), label=f"real {name}"):
                values[name] = data.draw(st.sampled_from(known), label=name)
    if isinstance(case.body, dict) and "photoKey" in case.body and data.draw(st.booleans(), label="real keys"):
        case.body.update(seeded.submission)


@schema.parametrize()
@schema.given(data=st.data())
@settings(max_examples=CASES, suppress_health_check=SHARED_STATE)
def test_every_answer_conforms_to_the_schema(case: Any, data: Any, seeded: Seeded) -> None:
    _swap_in_real_values(case, data, seeded)
    if not seeded.headers and case.headers:
        case.headers.pop("Authorization", None)  # "none" means none, not a generated bearer token
    case.call_and_validate(headers=seeded.headers, checks=CHECKS)


@schema.parametrize()
@settings(phases=[Phase.explicit], suppress_health_check=SHARED_STATE)
def test_coverage_cases_conform_to_the_schema(case: Any, seeded: Seeded) -> None:
    """Schemathesis' coverage phase, which custom strategies turn off above: each field missing,
    at and past its bounds, of the wrong type; other content types; methods the path lacks (405 with Allow)."""
    case.call_and_validate(headers=seeded.headers, checks=COVERAGE_CHECKS)
