"""The admin index's one search box: whatever a ticket quotes leads to the submission, within the
staff member's own tenants and nowhere else."""

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from tenants.models import Tenant
from tests.helpers import staff_client
from uploads.models import MediaUpload, Submission

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/uploads/submission/"


@pytest.fixture
def viewer(tenant: Tenant) -> Client:
    return staff_client(tenant)


def photo_of(submission: Submission) -> MediaUpload:
    return MediaUpload.objects.create(
        submission=submission,
        kind="photo",
        content_type="image/jpeg",
        object_key=f"{submission.tenant_id}/{submission.artisan_id}/{submission.tracking_id}/photo.jpg",
        strategy="single",
        expires_at=timezone.now() + timedelta(days=1),
    )


def change_page(submission: Submission) -> str:
    return f"/admin/uploads/submission/{submission.pk}/change/"


def messages_of(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_a_tracking_id_opens_its_submission(viewer: Client, tenant: Tenant) -> None:
    mine = Submission.objects.create(tenant=tenant, artisan_id="art_1")
    response = viewer.get("/admin/search/", {"q": f"  {mine.tracking_id} "})
    assert response.status_code == 302
    assert response["Location"] == change_page(mine)


def test_a_media_id_opens_its_submission(viewer: Client, tenant: Tenant) -> None:
    mine = Submission.objects.create(tenant=tenant, artisan_id="art_1")
    response = viewer.get("/admin/search/", {"q": photo_of(mine).media_id})
    assert response["Location"] == change_page(mine)


def test_an_object_key_opens_its_submission(viewer: Client, tenant: Tenant) -> None:
    mine = Submission.objects.create(tenant=tenant, artisan_id="art_1")
    response = viewer.get("/admin/search/", {"q": photo_of(mine).object_key})
    assert response["Location"] == change_page(mine)


def test_an_artisan_id_with_one_submission_opens_it(viewer: Client, tenant: Tenant) -> None:
    mine = Submission.objects.create(tenant=tenant, artisan_id="art_solo")
    assert viewer.get("/admin/search/", {"q": "art_solo"})["Location"] == change_page(mine)


def test_several_matches_open_the_list_filtered_by_the_query(viewer: Client, tenant: Tenant) -> None:
    Submission.objects.create(tenant=tenant, artisan_id="art 7&x")
    Submission.objects.create(tenant=tenant, artisan_id="art 7&x")
    response = viewer.get("/admin/search/", {"q": "art 7&x"})
    assert response.status_code == 302
    assert response["Location"] == f"{CHANGELIST}?q=art+7%26x"


def test_no_match_says_so_on_the_index(viewer: Client, tenant: Tenant) -> None:
    response = viewer.get("/admin/search/", {"q": "trk_<nothing>"}, follow=True)
    assert response.redirect_chain == [("/admin/", 302)]
    assert messages_of(response) == ["Nothing matches “trk_<nothing>” in your tenants."]
    assert "trk_&lt;nothing&gt;" in response.content.decode()


def test_another_tenants_tracking_id_matches_nothing(viewer: Client, other_tenant: Tenant) -> None:
    theirs = Submission.objects.create(tenant=other_tenant, artisan_id="art_1")
    response = viewer.get("/admin/search/", {"q": theirs.tracking_id}, follow=True)
    assert response.redirect_chain == [("/admin/", 302)]
    assert messages_of(response) == [f"Nothing matches “{theirs.tracking_id}” in your tenants."]


def test_another_tenants_rows_do_not_make_a_single_match_several(
    viewer: Client, tenant: Tenant, other_tenant: Tenant
) -> None:
    mine = Submission.objects.create(tenant=tenant, artisan_id="art_shared")
    Submission.objects.create(tenant=other_tenant, artisan_id="art_shared")
    assert viewer.get("/admin/search/", {"q": "art_shared"})["Location"] == change_page(mine)


def test_superuser_finds_any_tenants_submission(db: Any, other_tenant: Tenant) -> None:
    theirs = Submission.objects.create(tenant=other_tenant, artisan_id="art_1")
    client = Client()
    client.force_login(User.objects.create_superuser("root", password="pw"))
    assert client.get("/admin/search/", {"q": theirs.tracking_id})["Location"] == change_page(theirs)


def test_an_empty_query_goes_back_to_the_index_quietly(viewer: Client) -> None:
    response = viewer.get("/admin/search/", {"q": "   "}, follow=True)
    assert response.redirect_chain == [("/admin/", 302)]
    assert messages_of(response) == []


def test_anonymous_search_goes_to_login(db: Any) -> None:
    response = Client().get("/admin/search/", {"q": "trk_x"})
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=/admin/search/")


def test_staff_without_membership_may_not_search(db: Any, other_tenant: Tenant) -> None:
    theirs = Submission.objects.create(tenant=other_tenant, artisan_id="art_1")
    assert staff_client(None).get("/admin/search/", {"q": theirs.tracking_id}).status_code == 403


def test_index_has_the_search_box_at_the_top_autofocused_and_labelled(viewer: Client) -> None:
    html = viewer.get("/admin/").content.decode()
    form = html.index('action="/admin/search/"')
    assert form < html.index("Submissions by stage") < html.index('id="content-main"')
    assert '<label for="triage-q">' in html
    assert "tracking id" in html and "media id" in html and "object key" in html and "artisan id" in html
    assert 'name="q"' in html and "autofocus" in html
