"""The sweep's entry points: `manage.py sweep [--dry-run] [--limit N]` for operators, and the
periodic Celery task (called as a function, as a worker would run it)."""

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from tests.helpers import PHOTO, create_upload, initiate, row_counts, stored_files
from uploads.models import Event, MediaStatus, MediaUpload, Stage, Submission
from uploads.storage import StorageError, get_storage
from uploads.tasks import sweep_expired_uploads


def sweep(*args: str) -> list[str]:
    out = StringIO()
    call_command("sweep", *args, stdout=out)
    return out.getvalue().splitlines()


def abandoned_upload(api: APIClient, minutes_ago: int = 1) -> str:
    """A multipart upload (storage holds it) whose expiry passed `minutes_ago`; returns its id."""
    media_id: str = create_upload(api)["mediaId"]
    expired_at = timezone.now() - timedelta(minutes=minutes_ago)
    MediaUpload.objects.filter(media_id=media_id).update(expires_at=expired_at)
    return media_id


def stale_submission(api: APIClient) -> tuple[str, str]:
    """A submission still initiated longer than the TTL after it began; returns its tracking and media ids."""
    initiated = initiate(api, content_type="image/jpeg", file_size=len(PHOTO))
    began = timezone.now() - timedelta(seconds=django_settings.UPLOADS_SUBMISSION_TTL_SECONDS + 60)
    Submission.objects.filter(tracking_id=initiated["trackingId"]).update(created_at=began)
    return initiated["trackingId"], initiated["mediaId"]


def state() -> tuple[Any, ...]:
    return (
        row_counts(),
        list(Submission.objects.order_by("pk").values_list("stage", "version")),
        list(MediaUpload.objects.order_by("pk").values_list("status", "version", "released_at")),
        stored_files(),
    )


def status(media_id: str) -> str:
    return MediaUpload.objects.get(media_id=media_id).status


def test_sweep_command_dry_run_lists_ids_and_changes_nothing(api: APIClient, other_api: APIClient) -> None:
    ours = abandoned_upload(api)
    theirs = abandoned_upload(other_api)
    tracking_id, pending = stale_submission(other_api)
    before = state()

    lines = sweep("--dry-run")

    assert state() == before
    assert lines[0] == f"Would expire 1 submissions: {tracking_id}"
    assert lines[1].startswith("Would expire 3 uploads: ")
    assert set(lines[1].split(": ")[1].split()) == {ours, theirs, pending}
    assert lines[2].startswith("Would release storage of 3 uploads: ")
    assert set(lines[2].split(": ")[1].split()) == {ours, theirs, pending}
    assert len(lines) == 3


def test_sweep_command_expires_releases_and_reports_what_it_did(api: APIClient, other_api: APIClient) -> None:
    ours = abandoned_upload(api)
    tracking_id, pending = stale_submission(other_api)
    assert any(path.startswith("multipart/") for path in stored_files())

    lines = sweep()

    assert lines[0] == f"Expired 1 submissions: {tracking_id}"
    assert set(lines[1].removeprefix("Expired 2 uploads: ").split()) == {ours, pending}
    assert set(lines[2].removeprefix("Released storage of 2 uploads: ").split()) == {ours, pending}
    assert Submission.objects.get(tracking_id=tracking_id).stage == Stage.EXPIRED
    assert status(ours) == status(pending) == MediaStatus.EXPIRED
    assert not any(path.startswith("multipart/") for path in stored_files())
    assert sweep() == ["Expired 0 submissions.", "Expired 0 uploads.", "Released storage of 0 uploads."]


def test_sweep_command_limit_takes_the_longest_expired_first_and_leaves_the_rest_to_the_next_run(
    api: APIClient, other_api: APIClient
) -> None:
    oldest = abandoned_upload(other_api, minutes_ago=30)
    middle = abandoned_upload(api, minutes_ago=20)
    newest = abandoned_upload(api, minutes_ago=10)

    first = sweep("--limit", "2")

    assert first[1] == f"Expired 2 uploads: {oldest} {middle}"
    assert [status(m) for m in (oldest, middle, newest)] == ["expired", "expired", "pending"]

    second = sweep("--limit", "2")

    assert second[1] == f"Expired 1 uploads: {newest}"
    assert MediaUpload.objects.filter(status=MediaStatus.EXPIRED, released_at__isnull=False).count() == 3


def test_sweep_command_says_when_storage_was_unavailable(api: APIClient, monkeypatch: pytest.MonkeyPatch) -> None:
    media_id = abandoned_upload(api)

    def unavailable(**_: Any) -> None:
        raise StorageError("connection refused")

    monkeypatch.setattr(get_storage(), "abort_multipart", unavailable)

    lines = sweep()

    assert lines[1] == f"Expired 1 uploads: {media_id}"
    assert lines[2] == "Released storage of 0 uploads."
    assert lines[3] == "Storage unavailable for 1; the next run retries."
    assert MediaUpload.objects.get(media_id=media_id).released_at is None


def test_sweep_task_expires_and_returns_counts(api: APIClient, other_api: APIClient) -> None:
    abandoned_upload(api)
    stale_submission(other_api)

    assert sweep_expired_uploads() == {
        "expired_submissions": 1,
        "expired_media": 2,
        "released_media": 2,
        "release_failed": 0,
    }
    assert Event.objects.filter(action="media.expired", actor="system:sweep").count() == 2
    assert sweep_expired_uploads() == {
        "expired_submissions": 0,
        "expired_media": 0,
        "released_media": 0,
        "release_failed": 0,
    }


def test_sweep_task_has_a_stable_name_and_is_scheduled_periodically() -> None:
    assert sweep_expired_uploads.name == "uploads.sweep.expire"
    scheduled = [job["task"] for job in django_settings.CELERY_BEAT_SCHEDULE.values()]
    assert scheduled.count("uploads.sweep.expire") == 1
