"""`manage.py seed_submissions`: rows the portal itself could have written, fast, for one tenant."""

import io
from collections import Counter
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient

from tenants.models import Tenant
from uploads.keys import build_object_key
from uploads.models import MediaKind, MediaStatus, MediaUpload, Stage, Strategy, Submission
from uploads.selectors import FINAL_STAGES

COUNT = 600


def seed(tenant: Tenant, count: int = COUNT, **options: object) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("seed_submissions", count=count, tenant=tenant.id, seed=7, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def test_seeded_rows_pass_the_models_validation(tenant: Tenant) -> None:
    seed(tenant, count=50, days=14)
    for submission in Submission.objects.filter(tenant=tenant):
        submission.full_clean()
        for media in submission.media.all():
            media.full_clean()


def test_each_submission_gets_its_files_with_the_portals_keys(tenant: Tenant) -> None:
    seed(tenant, files_per_submission=3)
    assert Submission.objects.filter(tenant=tenant).count() == COUNT
    assert MediaUpload.objects.filter(submission__tenant=tenant).count() == 3 * COUNT
    for media in MediaUpload.objects.select_related("submission")[:100]:
        submission = media.submission
        ext = media.object_key.rsplit(".", 1)[1]
        assert media.object_key == build_object_key(
            tenant_id=tenant.id,
            artisan_id=submission.artisan_id,
            tracking_id=submission.tracking_id,
            media_id=media.media_id,
            ext=ext,
        )
    kinds = Counter(MediaUpload.objects.values_list("kind", flat=True))
    assert kinds == {MediaKind.PHOTO: 2 * COUNT, MediaKind.AUDIO: COUNT}  # photo, audio, photo


def test_files_follow_their_submissions_stage(tenant: Tenant) -> None:
    seed(tenant, days=30)
    statuses: dict[str, set[tuple[str, ...]]] = {}
    for submission in Submission.objects.prefetch_related("media"):
        statuses.setdefault(submission.stage, set()).add(tuple(m.status for m in submission.media.all()))
        if submission.stage in (Stage.UPLOADED, Stage.COMPLETED, Stage.FAILED):
            photo, audio = submission.media.all()
            assert (submission.photo_key, submission.audio_key) == (photo.object_key, audio.object_key)
            assert submission.language in settings.UPLOADS_LANGUAGES
    assert statuses[Stage.COMPLETED] == {(MediaStatus.UPLOADED, MediaStatus.UPLOADED)}
    assert statuses[Stage.INITIATED] == {(MediaStatus.PENDING, MediaStatus.PENDING)}
    assert statuses[Stage.UPLOADING] == {(MediaStatus.UPLOADED, MediaStatus.PENDING)}
    assert statuses[Stage.EXPIRED] == {(MediaStatus.EXPIRED, MediaStatus.EXPIRED)}
    assert all(m.released_at for m in MediaUpload.objects.filter(status=MediaStatus.EXPIRED))
    uploaded = MediaUpload.objects.filter(status=MediaStatus.UPLOADED)
    assert all(m.size == m.declared_size and m.etag for m in uploaded)
    assert all(m.part_count and m.part_size for m in uploaded.filter(strategy=Strategy.MULTIPART))


def test_submissions_older_than_an_uploads_lifetime_have_settled(tenant: Tenant) -> None:
    seed(tenant, days=60)
    settled_before = timezone.now() - timedelta(seconds=settings.UPLOADS_UPLOAD_EXPIRY_SECONDS, minutes=1)
    old = Submission.objects.filter(created_at__lt=settled_before)
    assert old.exists() and Submission.objects.exclude(stage__in=FINAL_STAGES).exists()
    assert not old.exclude(stage__in=FINAL_STAGES).exists()  # the sweep would have closed them


def test_seeding_twice_adds_rows_with_ids_of_their_own(tenant: Tenant) -> None:
    seed(tenant, count=100)
    seed(tenant, count=100)
    assert Submission.objects.count() == 200
    assert len(set(Submission.objects.values_list("tracking_id", flat=True))) == 200
    assert len(set(MediaUpload.objects.values_list("media_id", flat=True))) == 400
    created = Submission.objects.create(tenant=tenant, artisan_id="art_after")  # the sequence moved on too
    assert created.pk > max(Submission.objects.exclude(pk=created.pk).values_list("pk", flat=True))


def test_a_seeded_submission_answers_its_tenants_status_get_only(
    tenant: Tenant, api: APIClient, other_api: APIClient
) -> None:
    seed(tenant, count=20)
    submission = Submission.objects.filter(stage=Stage.COMPLETED).first()
    assert submission is not None
    response = api.get(f"/v1/catalog/status/{submission.tracking_id}")
    assert response.status_code == 200, response.content
    assert [f["mediaId"] for f in response.json()["files"]] == [m.media_id for m in submission.media.all()]
    assert other_api.get(f"/v1/catalog/status/{submission.tracking_id}").status_code == 404


def test_the_other_tenant_gets_nothing(tenant: Tenant, other_tenant: Tenant) -> None:
    seed(tenant, count=10)
    assert not Submission.objects.filter(tenant=other_tenant).exists()


def test_progress_goes_to_stderr_and_the_summary_to_stdout(tenant: Tenant) -> None:
    out, err = seed(tenant, count=25, batch_size=10)
    assert "Seeded 25 submissions with 50 files for tenant tenant_a" in out
    assert err.splitlines()[-1].startswith("seeded 25/25 submissions (50 files)")
    assert len(err.splitlines()) == 3  # one line per batch


def test_an_unknown_tenant_is_refused(db: None) -> None:
    with pytest.raises(CommandError, match="No tenant 'nobody'"):
        call_command("seed_submissions", count=1, tenant="nobody", stdout=io.StringIO())
