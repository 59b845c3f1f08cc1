"""Staff actions on a submission: each goes through the services the API uses, records who and
why, refuses a row whose version moved since the page showed it, and touches no other tenant."""

from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from tenants.models import Membership, Tenant
from tests.helpers import (
    complete_body,
    create_upload,
    put_part,
    sign_parts,
    staff_action,
    staff_client,
    stored_files,
    uploaded_submission,
)
from uploads.errors import Conflict, InvalidInput, StorageUnavailable
from uploads.models import Event, MediaStatus, MediaUpload, OutboxMessage, Stage, Submission
from uploads.queue import LocalQueue, get_publisher
from uploads.services import STAFF_ACTIONS, staff_action_run, submission_close
from uploads.storage import LocalStorage

pytestmark = pytest.mark.django_db(transaction=True)

OPERATOR = Membership.Role.OPERATOR


def uploading(api: APIClient) -> Submission:
    """A submission with a multipart file half sent: parts at storage, the upload still open."""
    created = create_upload(api)
    signed = sign_parts(api, created["mediaId"], [1, 2])
    for number in (1, 2):
        put_part(signed[number], b"x" * created["partSize"])
    recorded = api.put(
        f"/v1/catalog/uploads/{created['mediaId']}/parts/1", {"size": created["partSize"], "etag": "e1"}, format="json"
    )
    assert recorded.status_code == 200, recorded.content
    return Submission.objects.get(tracking_id=created["trackingId"])


def completed(api: APIClient) -> Submission:
    body = complete_body(uploaded_submission(api))
    assert api.post("/v1/catalog/upload/complete", body).status_code == 202
    return Submission.objects.get(tracking_id=body["trackingId"])


def run(name: str, submission: Submission, reason: str = "ticket 7", version: int | None = None) -> str:
    submission.refresh_from_db()
    return staff_action_run(
        action=STAFF_ACTIONS[name],
        submission=submission,
        actor="staff:ana",
        reason=reason,
        expected_version=submission.version if version is None else version,
    )


def status_updates() -> list[dict[str, Any]]:
    queue = get_publisher("status")
    assert isinstance(queue, LocalQueue)
    return list(queue.messages())


def test_abort_closes_the_submission_and_frees_its_unfinished_files_at_storage(api: APIClient) -> None:
    submission = uploading(api)
    assert any("multipart" in f for f in stored_files())
    outcome = run("abort", submission, reason="artisan asked, ticket 12")
    submission.refresh_from_db()
    assert submission.stage == Stage.ABORTED
    media = submission.media.get()
    assert media.status == MediaStatus.ABORTED and media.released_at is not None
    assert not any("multipart" in f for f in stored_files())
    assert "removed from storage" in outcome
    event = submission.events.get(action="submission.aborted")
    assert (event.actor, event.reason) == ("staff:ana", "artisan asked, ticket 12")
    assert status_updates()[-1]["body"]["stage"] == "aborted"


def test_expire_now_closes_as_expired(api: APIClient) -> None:
    submission = uploading(api)
    run("expire", submission)
    submission.refresh_from_db()
    assert submission.stage == Stage.EXPIRED
    assert submission.media.get().status == MediaStatus.EXPIRED


def test_abort_of_a_finished_submission_is_refused_and_keeps_its_files(api: APIClient) -> None:
    submission = completed(api)
    files = stored_files()
    with pytest.raises(Conflict, match="only an unfinished upload"):
        run("abort", submission)
    submission.refresh_from_db()
    assert submission.stage == Stage.QUEUED
    assert stored_files() == files
    assert set(submission.media.values_list("status", flat=True)) == {MediaStatus.UPLOADED}


def test_a_row_whose_version_moved_since_the_page_is_refused_not_overwritten(api: APIClient) -> None:
    submission = uploading(api)
    shown = submission.version - 1  # the page showed the submission before its last change
    with pytest.raises(Conflict, match="changed since you looked"):
        run("abort", submission, version=shown)
    submission.refresh_from_db()
    assert submission.stage == Stage.UPLOADING
    assert submission.media.get().status == MediaStatus.PENDING
    assert not submission.events.filter(action="submission.aborted").exists()


def test_the_close_itself_checks_the_version_a_concurrent_change_loses_to(api: APIClient) -> None:
    """The refusal before running is not the only guard: the conditional UPDATE checks too."""
    submission = uploading(api)
    with pytest.raises(Conflict):
        submission_close(
            submission=submission,
            to=Stage.ABORTED,
            actor="staff:ana",
            reason="r",
            expected_version=submission.version + 1,
        )
    assert Submission.objects.get(pk=submission.pk).stage == Stage.UPLOADING


def test_a_reason_is_required(api: APIClient) -> None:
    submission = uploading(api)
    with pytest.raises(InvalidInput, match="reason"):
        run("abort", submission, reason="   ")
    assert Submission.objects.get(pk=submission.pk).stage == Stage.UPLOADING


def test_abort_with_storage_unreachable_closes_and_leaves_the_release_to_the_sweep(
    api: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    submission = uploading(api)

    def down(*args: Any, **kwargs: Any) -> None:
        raise StorageUnavailable("storage is down")

    monkeypatch.setattr(LocalStorage, "abort_multipart", down)
    outcome = run("abort", submission)
    assert "expiry sweep will free" in outcome
    media = MediaUpload.objects.get(submission=submission)
    assert media.status == MediaStatus.ABORTED and media.released_at is None  # the sweep's to finish


def test_resend_status_sends_the_current_update_again_under_a_new_deduplication_id(api: APIClient) -> None:
    submission = completed(api)
    before = status_updates()
    run("resend_status", submission)
    run("resend_status", submission)
    after = status_updates()
    resent = after[len(before) :]
    assert [m["body"]["stage"] for m in resent] == ["queued", "queued"]
    assert [m["body"]["version"] for m in resent] == [submission.version] * 2
    dedup = [m["deduplicationId"] for m in after]
    assert len(set(dedup)) == len(dedup)  # a FIFO queue would drop a repeated id
    submission.refresh_from_db()
    assert submission.events.filter(action="submission.status_resent").count() == 2
    assert submission.stage == Stage.QUEUED


def test_retry_messages_gives_failed_messages_new_attempts_and_says_so_in_the_timeline(
    api: APIClient, settings: Any
) -> None:
    submission = completed(api)
    with pytest.raises(Conflict, match="no failed messages"):
        run("retry_messages", submission)
    OutboxMessage.objects.filter(submission=submission, topic="status").update(
        status="failed", attempts=settings.OUTBOX_MAX_ATTEMPTS
    )
    run("retry_messages", submission, reason="queue was down")
    assert not OutboxMessage.objects.filter(submission=submission, status="failed").exists()
    assert submission.events.get(action="outbox.retried").reason == "queue was down"


def test_operator_aborts_from_the_list_after_confirming_and_the_list_shows_the_new_stage(
    api: APIClient, tenant: Tenant
) -> None:
    submission = uploading(api)
    confirmation, done = staff_action(staff_client(tenant, OPERATOR), "abort", [submission], reason="ticket 9")
    assert confirmation.status_code == 200
    assert f'name="version_{submission.pk}" value="{submission.version}"' in confirmation.content.decode()
    page = done.content.decode()
    assert done.redirect_chain[-1][0].startswith("/admin/uploads/submission/")
    assert f"Submission {submission.tracking_id}: Aborted" in page  # not "Trk_…": a word comes first
    assert 'stage-badge stage-aborted">Aborted' in page  # the list after the redirect is fresh
    assert Submission.objects.get(pk=submission.pk).stage == Stage.ABORTED


def test_the_confirmation_page_alone_changes_nothing(api: APIClient, tenant: Tenant) -> None:
    submission = uploading(api)
    client = staff_client(tenant, OPERATOR)
    client.post("/admin/uploads/submission/", {"action": "abort", "_selected_action": [submission.pk]})
    client.get(f"/admin/uploads/submission/{submission.pk}/act/abort/")
    assert Submission.objects.get(pk=submission.pk).stage == Stage.UPLOADING
    assert not Event.objects.filter(action="submission.aborted").exists()


def test_confirming_without_a_reason_shows_the_page_again_and_changes_nothing(api: APIClient, tenant: Tenant) -> None:
    submission = uploading(api)
    _, done = staff_action(staff_client(tenant, OPERATOR), "abort", [submission], reason="")
    assert "This field is required." in done.content.decode()
    assert Submission.objects.get(pk=submission.pk).stage == Stage.UPLOADING


def test_a_stale_confirmation_is_refused_per_row_and_the_others_go_ahead(api: APIClient, tenant: Tenant) -> None:
    stale, fresh = uploading(api), uploading(api)
    _, done = staff_action(
        staff_client(tenant, OPERATOR), "abort", [stale, fresh], versions={f"version_{stale.pk}": stale.version - 1}
    )
    page = done.content.decode()
    assert f"Submission {stale.tracking_id}: not done. It changed since you looked" in page
    assert f"Submission {fresh.tracking_id}: Aborted" in page
    assert Submission.objects.get(pk=stale.pk).stage == Stage.UPLOADING
    assert Submission.objects.get(pk=fresh.pk).stage == Stage.ABORTED


def test_operator_of_one_tenant_and_viewer_of_another_acts_only_on_the_first(
    api: APIClient, other_api: APIClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    mine, theirs = uploading(api), uploading(other_api)
    client = staff_client(tenant, OPERATOR)
    user = User.objects.get(username=f"operator_{tenant.id}")
    Membership.objects.create(user=user, tenant=other_tenant, role=Membership.Role.VIEWER)
    confirmation, done = staff_action(client, "abort", [mine, theirs])
    assert f"You may only view tenant {other_tenant.id}" in confirmation.content.decode()
    assert f"Submission {theirs.tracking_id}: not done. You may only view" in done.content.decode()
    assert Submission.objects.get(pk=theirs.pk).stage == Stage.UPLOADING
    assert Submission.objects.get(pk=mine.pk).stage == Stage.ABORTED


def test_the_action_from_the_submission_page_goes_back_to_it(api: APIClient, tenant: Tenant) -> None:
    submission = uploading(api)
    client = staff_client(tenant, OPERATOR)
    url = f"/admin/uploads/submission/{submission.pk}/act/expire/"
    assert "Expire now" in client.get(url).content.decode()
    done = client.post(
        url, {"confirm": "yes", "reason": "abandoned", f"version_{submission.pk}": submission.version}, follow=True
    )
    assert done.redirect_chain[-1][0] == f"/admin/uploads/submission/{submission.pk}/change/"
    page = done.content.decode()
    assert "submission.expired" in page and "abandoned" in page  # the timeline shows it, with the reason
    assert Submission.objects.get(pk=submission.pk).stage == Stage.EXPIRED


def test_unknown_action_or_other_tenants_submission_on_the_act_url_is_404(
    api: APIClient, other_api: APIClient, tenant: Tenant
) -> None:
    mine, theirs = uploading(api), uploading(other_api)
    client = staff_client(tenant, OPERATOR)
    assert client.get(f"/admin/uploads/submission/{mine.pk}/act/delete_everything/").status_code == 404
    assert client.get(f"/admin/uploads/submission/{theirs.pk}/act/abort/").status_code == 404
    response = client.post(
        f"/admin/uploads/submission/{theirs.pk}/act/abort/",
        {"confirm": "yes", "reason": "x", f"version_{theirs.pk}": theirs.version},
    )
    assert response.status_code == 404
    assert Submission.objects.get(pk=theirs.pk).stage == Stage.UPLOADING


def test_viewer_cannot_act_through_the_act_url(api: APIClient, tenant: Tenant) -> None:
    submission = uploading(api)
    viewer = staff_client(tenant, Membership.Role.VIEWER)
    response = viewer.post(
        f"/admin/uploads/submission/{submission.pk}/act/abort/",
        {"confirm": "yes", "reason": "x", f"version_{submission.pk}": submission.version},
    )
    assert response.status_code == 403
    assert Submission.objects.get(pk=submission.pk).stage == Stage.UPLOADING


def test_a_confirmation_without_a_readable_version_is_refused(api: APIClient, tenant: Tenant) -> None:
    submission = uploading(api)
    _, done = staff_action(
        staff_client(tenant, OPERATOR), "abort", [submission], versions={f"version_{submission.pk}": "two"}
    )
    assert "not done. The page did not say which version you saw." in done.content.decode()
    assert Submission.objects.get(pk=submission.pk).stage == Stage.UPLOADING
