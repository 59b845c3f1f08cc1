"""The submission page's DynamoDB mirror panel: on demand only, the catalog record and each file's
upload-state item beside the database's values, every difference marked and explained (behind
with its pending writes, ahead, missing, changed at the same version), the pipeline's own
attributes shown as written by others, an unreachable DynamoDB shown as such; another tenant's
submission stays a 404."""

import re
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from boto3.dynamodb.types import TypeSerializer
from django.test import Client
from rest_framework.test import APIClient

from tenants.models import Membership, Tenant
from tests.conftest import Mirror
from tests.helpers import complete_body, staff_client, uploaded_submission
from uploads import dynamodb
from uploads.models import Submission
from uploads.services import outbox_relay
from uploads.services.mirror_inspection import submission_mirror_view

pytestmark = pytest.mark.django_db

LIST = "/admin/uploads/submission/"


@pytest.fixture
def viewer(tenant: Tenant) -> Client:
    return staff_client(tenant, Membership.Role.VIEWER)


@pytest.fixture
def relayed(api: APIClient, mirror: Mirror, django_capture_on_commit_callbacks: Any) -> Submission:
    """A completed submission, queued, every mirror write it owed sent."""
    with django_capture_on_commit_callbacks(execute=True):
        sent = uploaded_submission(api)
        assert api.post("/v1/catalog/upload/complete", complete_body(sent), format="json").status_code == 202
    outbox_relay()
    return Submission.objects.get(tracking_id=sent["trackingId"])


@pytest.fixture
def dynamodb_calls() -> Iterator[list[str]]:
    """The name of every call the portal's DynamoDB client makes (reads and writes)."""
    calls: list[str] = []
    events = dynamodb.client().meta.events

    def count(model: Any, **_: Any) -> None:
        calls.append(model.name)

    events.register("before-call.dynamodb", count, unique_id="count-mirror-panel-calls")
    yield calls
    events.unregister("before-call.dynamodb", unique_id="count-mirror-panel-calls")


def page(client: Client, submission: Submission, query: str = "") -> str:
    response = client.get(f"{LIST}{submission.pk}/change/{query}")
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def mirror_panel(html: str) -> str:
    found = re.search(r'<section class="mirror-panel".*?</section>', html, re.S)
    assert found, "no mirror panel"
    return found.group(0)


def row(panel: str, item: str, attribute: str) -> str:
    """The table row of `attribute` inside `item`'s box (e.g. "Catalog record"), tags stripped."""
    box = re.search(rf"<details[^>]*>\s*<summary><strong>{re.escape(item)}</strong>.*?</details>", panel, re.S)
    assert box, f"no item {item}"
    found = re.search(rf"<tr class=\"(\w+)\"><td><code>{attribute}</code>.*?</tr>", box.group(0), re.S)
    assert found, f"no row {attribute} in {item}"
    cells = [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", found.group(0))]
    return " | ".join([found.group(1), *cells])


def catalog_update(mirror: Mirror, submission: Submission, **attributes: Any) -> None:
    """Someone else writes the catalog record, unconditionally."""
    names = {f"#n{i}": name for i, name in enumerate(attributes)}
    values = {f":v{i}": TypeSerializer().serialize(value) for i, value in enumerate(attributes.values())}
    mirror.client.update_item(
        TableName=mirror.tables.catalog,
        Key={"trackingId": {"S": submission.tracking_id}},
        UpdateExpression="SET " + ", ".join(f"{n} = :v{n[2:]}" for n in names),
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values,
    )


def states(submission: Submission) -> list[str]:
    view = submission_mirror_view(submission=submission)
    assert view is not None and view.reachable, view
    return [item.state for item in view.items]


def test_with_the_mirror_off_the_panel_is_one_line_and_dynamodb_is_never_asked(
    api: APIClient, viewer: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    def never(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("DynamoDB was asked")

    monkeypatch.setattr(dynamodb, "_call", never)
    submission = Submission.objects.get(tracking_id=uploaded_submission(api)["trackingId"])
    assert submission_mirror_view(submission=submission) is None
    for query in ("", "?mirror=1"):
        panel = mirror_panel(page(viewer, submission, query))
        assert "The DynamoDB mirror is off" in panel
        assert "Compare with DynamoDB" not in panel and "<table" not in panel


def test_a_plain_page_view_never_calls_dynamodb_the_comparison_reads_two_items_worth(
    relayed: Submission, viewer: Client, dynamodb_calls: list[str]
) -> None:
    panel = mirror_panel(page(viewer, relayed))
    assert 'href="?mirror=1#mirror">Compare with DynamoDB' in panel
    assert dynamodb_calls == []
    page(viewer, relayed, "?mirror=1")
    assert dynamodb_calls == ["GetItem", "Query"]  # the record, and the files' partition: reads only


def test_after_a_relayed_flow_every_item_is_in_sync_and_its_values_are_shown(
    relayed: Submission, viewer: Client
) -> None:
    assert states(relayed) == ["in sync", "in sync", "in sync"]
    panel = mirror_panel(page(viewer, relayed, "?mirror=1"))
    assert "All 3 items agree with the database." in panel
    assert row(panel, "Catalog record", "stage") == "same | stage | queued | queued"
    assert row(panel, "Catalog record", "version") == f"same | version | {relayed.version} | {relayed.version}"
    audio = relayed.media.get(kind="audio")
    assert row(panel, f"Audio {audio.media_id}", "status") == "same | status | uploaded | uploaded"
    assert "differs" not in panel and "pending" not in panel


def test_an_item_set_back_behind_the_portals_back_is_behind_with_its_differences_marked(
    relayed: Submission, viewer: Client, mirror: Mirror
) -> None:
    catalog_update(mirror, relayed, stage="uploading", version=1)
    assert states(relayed) == ["behind", "in sync", "in sync"]
    panel = mirror_panel(page(viewer, relayed, "?mirror=1"))
    assert "1 of 3 items not in sync with the database" in panel
    assert row(panel, "Catalog record", "stage") == "differs | stage | queued | uploading differs"
    assert row(panel, "Catalog record", "version") == f"differs | version | {relayed.version} | 1 differs"
    assert row(panel, "Catalog record", "artisanId").startswith("same |")
    assert f"DynamoDB holds version 1, the database {relayed.version}." in panel
    assert "No mirror write for it is pending in the outbox" in panel


def test_a_behind_item_counts_the_mirror_writes_still_pending_for_it(
    relayed: Submission, viewer: Client, pipeline: APIClient
) -> None:
    # The pipeline reports processing; its mirror write waits in the outbox (no relay runs).
    for n, message in enumerate(["Transcribing the audio.", "Writing the description."]):
        body = {"eventId": f"e-{n}", "stage": "processing", "message": message}
        response = pipeline.post(f"/v1/catalog/status/{relayed.tracking_id}/events", body, format="json")
        assert response.status_code == 200, response.content
    relayed.refresh_from_db()
    assert states(relayed) == ["behind", "in sync", "in sync"]
    panel = mirror_panel(page(viewer, relayed, "?mirror=1"))
    pending = relayed.outbox.filter(topic="mirror", status="pending").count()
    assert pending >= 1
    assert f"{pending} write{'s' if pending > 1 else ''} pending" in panel
    assert f"{pending} mirror write{'s' if pending > 1 else ''} for it pending in the outbox" in panel
    assert row(panel, "Catalog record", "stage") == "differs | stage | processing | queued differs"


def test_the_same_version_with_other_values_is_differing_and_a_newer_version_is_ahead(
    relayed: Submission, viewer: Client, mirror: Mirror
) -> None:
    catalog_update(mirror, relayed, language="ta")
    view = submission_mirror_view(submission=relayed)
    assert view is not None
    record = view.items[0]
    assert record.state == "differing" and record.differences == 1
    assert [r.name for r in record.rows if r.differs] == ["language"]
    panel = mirror_panel(page(viewer, relayed, "?mirror=1"))
    assert f"Version {relayed.version} in both, but 1 attribute differs: written behind the portal" in panel
    assert row(panel, "Catalog record", "language") == "differs | language | hi | ta differs"

    catalog_update(mirror, relayed, version=relayed.version + 5)
    assert states(relayed)[0] == "ahead"
    assert f"DynamoDB holds a newer version ({relayed.version + 5}) than the database ({relayed.version})" in (
        page(viewer, relayed, "?mirror=1")
    )


def test_a_deleted_item_is_missing_and_an_unknown_file_is_extra(
    relayed: Submission, viewer: Client, mirror: Mirror
) -> None:
    photo = relayed.media.get(kind="photo")
    mirror.client.delete_item(
        TableName=mirror.tables.upload_state,
        Key={"trackingId": {"S": relayed.tracking_id}, "mediaId": {"S": photo.media_id}},
    )
    mirror.client.put_item(
        TableName=mirror.tables.upload_state,
        Item={"trackingId": {"S": relayed.tracking_id}, "mediaId": {"S": "m_stranger"}, "status": {"S": "pending"}},
    )
    assert states(relayed) == ["in sync", "missing", "in sync", "extra"]
    panel = mirror_panel(page(viewer, relayed, "?mirror=1"))
    assert "2 of 4 items not in sync" in panel
    assert row(panel, f"Photo {photo.media_id}", "status") == "differs | status | uploaded | — differs"
    assert "DynamoDB has no such item" in panel
    assert row(panel, "File m_stranger", "status") == "differs | status | — | pending differs"


def test_the_pipelines_attributes_are_shown_as_written_by_others_and_never_count_as_differences(
    relayed: Submission, viewer: Client, mirror: Mirror
) -> None:
    mirror.pipeline_writes(
        relayed.tracking_id,
        processingStage="failed",
        processingMessage="The audio could not be transcribed.",
        errorDetails={"reason": "audio_unreadable", "retryable": False},
        processingUpdatedAt="2025-01-01T10:00:00.000Z",
        reviewer="qa-7",  # an attribute nobody told the portal about
    )
    view = submission_mirror_view(submission=relayed)
    assert view is not None and view.items[0].state == "in sync"
    assert [other.name for other in view.items[0].others] == [
        "processingStage", "processingMessage", "errorDetails", "processingUpdatedAt", "reviewer",
    ]  # fmt: skip
    panel = mirror_panel(page(viewer, relayed, "?mirror=1"))
    others = panel.split("Written by others", 1)[1].split("</tbody>", 1)[0]
    assert "The audio could not be transcribed." in others
    assert "{&quot;reason&quot;: &quot;audio_unreadable&quot;, &quot;retryable&quot;: false}" in others
    assert "qa-7" in others and "not the portal's" in others
    assert "All 3 items agree with the database." in panel


def test_dynamodb_unreachable_is_shown_as_such_never_a_500(
    api: APIClient, viewer: Client, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    submission = Submission.objects.get(tracking_id=uploaded_submission(api)["trackingId"])
    with socket.socket() as closed:  # a port nothing listens on: connections are refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    settings.DYNAMODB_CATALOG_TABLE = "CatalogProcessingRecords"
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", f"http://127.0.0.1:{port}")
    panel = mirror_panel(page(viewer, submission, "?mirror=1"))
    assert '<p class="storage-unreachable">DynamoDB did not answer: Could not connect to the endpoint URL' in panel
    assert "<table" not in panel
    assert "Ask again" in panel


def test_another_tenants_staff_get_a_404_and_dynamodb_is_not_asked(
    relayed: Submission, other_tenant: Tenant, dynamodb_calls: list[str]
) -> None:
    outsider = staff_client(other_tenant, Membership.Role.OPERATOR)
    assert outsider.get(f"{LIST}{relayed.pk}/change/?mirror=1").status_code == 404
    assert dynamodb_calls == []
