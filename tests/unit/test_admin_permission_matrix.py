"""Who may open and do what in the staff admin, URL by URL and action by action, and that no
answer ever carries another tenant's tracking, media or artisan ids.

Two tenants each hold submissions in several stages. The data is built once for the module
(inside a transaction rolled back at the end; each test runs in a savepoint of its own), so
the whole matrix stays fast; the conftest's `tenant`/`other_tenant` fixtures are per test, so
the module builds the same two tenants itself."""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import transaction
from django.test import Client
from django.utils import timezone

from tenants.models import Membership, Tenant
from tenants.services import api_key_create, tenant_create, upload_link_create
from tests.helpers import media_row
from uploads.models import (
    Event,
    MediaKind,
    MediaStatus,
    OutboxMessage,
    Stage,
    Submission,
)
from uploads.services import STAFF_ACTIONS

ROLES = ["superuser", "operator", "viewer", "other_staff", "no_membership", "anonymous"]
ACTING_ROLES = {"superuser", "operator"}  # whose confirmed actions on tenant A's rows take effect
REASON = "ticket 4711"
CHANGELIST = "/admin/uploads/submission/"


def _row(*statuses: int) -> dict[str, int]:
    return dict(zip(ROLES, statuses, strict=True))


# fmt: off
# "operator" and "viewer" are tenant A's; "other_staff" is an operator of tenant B only;
# "no_membership" is is_staff without any Membership. Every URL below names tenant A's rows
# unless its name says "other_tenant". 302 for anonymous is the login redirect.
EXPECTED: dict[str, dict[str, int]] = {
    #                                       superuser operator viewer other  no-memb. anon
    "changelist":                      _row(200,      200,     200,   200,   403,     302),
    "changelist_search":               _row(200,      200,     200,   200,   403,     302),
    "filter_stage":                    _row(200,      200,     200,   200,   403,     302),
    "filter_tenant":                   _row(200,      200,     200,   200,   403,     302),
    "filter_other_tenant":             _row(200,      200,     200,   200,   403,     302),
    "filter_language":                 _row(200,      200,     200,   200,   403,     302),
    "filter_priority":                 _row(200,      200,     200,   200,   403,     302),
    "filter_stuck":                    _row(200,      200,     200,   200,   403,     302),
    "filter_failed_messages":          _row(200,      200,     200,   200,   403,     302),
    "filter_created_at":               _row(200,      200,     200,   200,   403,     302),
    "change_page":                     _row(200,      200,     200,   404,   404,     302),
    "change_page_other_tenant":        _row(200,      404,     404,   200,   404,     302),
    "storage_check":                   _row(200,      200,     200,   404,   404,     302),
    "export":                          _row(200,      200,     200,   200,   403,     302),
    "export_filtered":                 _row(200,      200,     200,   200,   403,     302),
    "dashboard":                       _row(200,      200,     200,   200,   200,     302),
    "index_search":                    _row(302,      302,     302,   302,   403,     302),
    # No admin declares autocomplete_fields on uploads models, yet Django's autocomplete view
    # answers for any foreign key to a registered admin with search_fields (Submission): it
    # checks only the view permission of the target's admin, whose queryset is scoped.
    "autocomplete_submission":         _row(200,      200,     200,   200,   403,     302),
    "autocomplete_submission_search":  _row(200,      200,     200,   200,   403,     302),
    "autocomplete_tenant":             _row(200,      403,     403,   403,   403,     302),
    "outbox_list":                     _row(200,      200,     200,   200,   403,     302),
    # A viewer's POST of an action it does not have renders the list again (Django drops it).
    "outbox_retry":                    _row(302,      302,     200,   302,   403,     302),
    "api_key_list":                    _row(200,      200,     200,   200,   403,     302),
    "upload_link_list":                _row(200,      200,     200,   200,   403,     302),
    "act_page_other_tenant":           _row(200,      404,     404,   200,   404,     302),
}
for _name in STAFF_ACTIONS:
    EXPECTED |= {
        # From the list: the viewer has no such action (the list again); another tenant's
        # operator selected a row outside its scope, so the page lists nothing.
        f"{_name}_from_list_confirmation":  _row(200, 200, 200, 200, 403, 302),
        f"{_name}_from_list_confirmed":     _row(302, 302, 200, 302, 403, 302),
        # From the submission page: another tenant's row is missing; a viewer may not act.
        f"{_name}_from_page_confirmation":  _row(200, 200, 403, 404, 404, 302),
        f"{_name}_from_page_confirmed":     _row(302, 302, 403, 404, 404, 302),
    }
# fmt: on


@dataclass
class TenantData:
    tenant: Tenant
    by_stage: dict[str, Submission]
    failed_message: OutboxMessage
    secrets: set[str] = field(default_factory=set)  # ids that must never reach the other tenant's staff


@dataclass
class World:
    a: TenantData
    b: TenantData
    users: dict[str, User]


def _tenant_data(tenant_id: str) -> TenantData:
    tenant = tenant_create(tenant_id=tenant_id, name=tenant_id.replace("_", " ").title())
    letter = tenant_id[-1]
    long_ago = timezone.now() - timedelta(hours=5)  # stuck, so the dashboard lists them too
    by_stage: dict[str, Submission] = {}
    for n, stage in enumerate([Stage.INITIATED, Stage.UPLOADING, Stage.FAILED, Stage.COMPLETED], start=1):
        by_stage[stage] = Submission.objects.create(
            tenant=tenant,
            artisan_id=f"art_{letter}_{n}",
            stage=stage,
            language="hi",
            priority="high",
            last_progress_at=long_ago,
            error_details={"reason": "blurry photo"} if stage == Stage.FAILED else None,
        )
    media_row(by_stage[Stage.INITIATED], MediaKind.PHOTO, status=MediaStatus.PENDING)
    media_row(by_stage[Stage.UPLOADING], MediaKind.AUDIO, status=MediaStatus.PENDING, part_count=5, parts=3)
    for stage in (Stage.FAILED, Stage.COMPLETED):
        media_row(by_stage[stage], MediaKind.PHOTO, status=MediaStatus.UPLOADED)
        media_row(by_stage[stage], MediaKind.AUDIO, status=MediaStatus.UPLOADED, part_count=5, parts=5)
    failed = by_stage[Stage.FAILED]
    message = OutboxMessage.objects.create(
        dedup_key=f"status:{failed.tracking_id}:1",
        topic=OutboxMessage.Topic.STATUS,
        submission=failed,
        body={"trackingId": failed.tracking_id},
        status=OutboxMessage.Status.FAILED,
        attempts=8,
        last_error="queue unreachable",
    )
    key, _ = api_key_create(tenant=tenant, name=f"app of {tenant_id}")
    link, _ = upload_link_create(tenant=tenant, artisan_id=f"link_artisan_{letter}", days=3)
    secrets = {tenant_id, key.prefix, link.artisan_id}
    for submission in by_stage.values():
        secrets |= {submission.tracking_id, submission.artisan_id, f"{CHANGELIST}{submission.pk}/"}
        secrets |= set(submission.media.values_list("media_id", flat=True))
    return TenantData(tenant=tenant, by_stage=by_stage, failed_message=message, secrets=secrets)


@pytest.fixture(scope="module")
def world(django_db_setup: Any, django_db_blocker: Any) -> Iterator[World]:
    with django_db_blocker.unblock(), transaction.atomic():
        a, b = _tenant_data("tenant_a"), _tenant_data("tenant_b")
        users = {
            "superuser": User.objects.create_superuser("root", password="pw"),
            "operator": User.objects.create_user("op_a", password="pw", is_staff=True),
            "viewer": User.objects.create_user("viewer_a", password="pw", is_staff=True),
            "other_staff": User.objects.create_user("op_b", password="pw", is_staff=True),
            "no_membership": User.objects.create_user("loner", password="pw", is_staff=True),
        }
        Membership.objects.create(user=users["operator"], tenant=a.tenant, role=Membership.Role.OPERATOR)
        Membership.objects.create(user=users["viewer"], tenant=a.tenant, role=Membership.Role.VIEWER)
        Membership.objects.create(user=users["other_staff"], tenant=b.tenant, role=Membership.Role.OPERATOR)
        yield World(a=a, b=b, users=users)
        transaction.set_rollback(True)


@dataclass
class Call:
    method: str
    path: str
    data: dict[str, Any] = field(default_factory=dict)
    echoed: set[str] = field(default_factory=set)  # what the caller typed into the URL itself
    target: Submission | None = None  # a confirmed action's row: changed only by ACTING_ROLES


# Which of tenant A's rows each action applies to (so an operator's confirmation offers the form).
TARGET_STAGE = {
    "reprocess": Stage.FAILED,
    "abort": Stage.INITIATED,
    "expire": Stage.UPLOADING,
    "resend_status": Stage.COMPLETED,
    "retry_messages": Stage.FAILED,
}


def _calls(w: World) -> dict[str, Callable[[], Call]]:
    a, b = w.a.by_stage, w.b.by_stage
    page = f"{CHANGELIST}{a[Stage.UPLOADING].pk}/change/"
    tracking = a[Stage.UPLOADING].tracking_id
    media_id = a[Stage.UPLOADING].media.get().media_id
    auto = "/admin/autocomplete/?app_label=uploads&model_name={}&field_name={}"
    calls: dict[str, Callable[[], Call]] = {
        "changelist": lambda: Call("GET", CHANGELIST),
        "changelist_search": lambda: Call("GET", f"{CHANGELIST}?q={tracking}", echoed={tracking}),
        "filter_stage": lambda: Call("GET", f"{CHANGELIST}?stage=failed"),
        "filter_tenant": lambda: Call("GET", f"{CHANGELIST}?tenant_id=tenant_a", echoed={"tenant_a"}),
        "filter_other_tenant": lambda: Call("GET", f"{CHANGELIST}?tenant_id=tenant_b", echoed={"tenant_b"}),
        "filter_language": lambda: Call("GET", f"{CHANGELIST}?language=hi"),
        "filter_priority": lambda: Call("GET", f"{CHANGELIST}?priority=high"),
        "filter_stuck": lambda: Call("GET", f"{CHANGELIST}?stuck=yes"),
        "filter_failed_messages": lambda: Call("GET", f"{CHANGELIST}?failed_messages=yes"),
        "filter_created_at": lambda: Call("GET", f"{CHANGELIST}?created_at__gte=2000-01-01T00:00:00%2B00:00"),
        "change_page": lambda: Call("GET", page),
        "change_page_other_tenant": lambda: Call("GET", f"{CHANGELIST}{b[Stage.UPLOADING].pk}/change/"),
        "storage_check": lambda: Call("GET", f"{page}?storage={media_id}", echoed={media_id}),
        "export": lambda: Call("GET", f"{CHANGELIST}export.csv"),
        "export_filtered": lambda: Call("GET", f"{CHANGELIST}export.csv?stuck=yes&language=hi"),
        "dashboard": lambda: Call("GET", "/admin/"),
        "index_search": lambda: Call("GET", f"/admin/search/?q={tracking}", echoed={tracking}),
        "autocomplete_submission": lambda: Call("GET", auto.format("outboxmessage", "submission")),
        "autocomplete_submission_search": lambda: Call(
            "GET", auto.format("event", "submission") + f"&term={tracking}", echoed={tracking}
        ),
        "autocomplete_tenant": lambda: Call("GET", auto.format("submission", "tenant")),
        "outbox_list": lambda: Call("GET", "/admin/uploads/outboxmessage/"),
        "outbox_retry": lambda: Call(
            "POST",
            "/admin/uploads/outboxmessage/",
            {"action": "retry_delivery", "_selected_action": [w.a.failed_message.pk]},
        ),
        "api_key_list": lambda: Call("GET", "/admin/tenants/apikey/"),
        "upload_link_list": lambda: Call("GET", "/admin/tenants/uploadlink/"),
        "act_page_other_tenant": lambda: Call("GET", f"{CHANGELIST}{b[Stage.COMPLETED].pk}/act/resend_status/"),
    }
    for name, stage in TARGET_STAGE.items():
        calls |= _action_calls(name, a[stage])
    return calls


def _action_calls(name: str, row: Submission) -> dict[str, Callable[[], Call]]:
    selected = {"action": name, "_selected_action": [row.pk]}
    confirm = {f"version_{row.pk}": row.version, "confirm": "yes", "reason": REASON}
    act = f"{CHANGELIST}{row.pk}/act/{name}/"
    return {
        f"{name}_from_list_confirmation": lambda: Call("POST", CHANGELIST, selected),
        f"{name}_from_list_confirmed": lambda: Call("POST", CHANGELIST, {**selected, **confirm}, target=row),
        f"{name}_from_page_confirmation": lambda: Call("GET", act),
        f"{name}_from_page_confirmed": lambda: Call("POST", act, confirm, target=row),
    }


def _client(w: World, role: str) -> Client:
    client = Client()
    if role != "anonymous":
        client.force_login(w.users[role])
    return client


def _forbidden(w: World, role: str) -> set[str]:
    """What this role must never be shown: the other tenant's ids (both tenants' for staff
    without a membership and for anonymous callers)."""
    return {
        "superuser": set(),
        "operator": w.b.secrets,
        "viewer": w.b.secrets,
        "other_staff": w.a.secrets,
        "no_membership": w.a.secrets | w.b.secrets,
        "anonymous": w.a.secrets | w.b.secrets,
    }[role]


def _body(response: Any, role: str) -> str:
    """The body, and where a redirect leads (not for anonymous callers: the login redirect
    carries the requested path back to them)."""
    content = b"".join(response.streaming_content) if response.streaming else response.content
    return content.decode() + ("" if role == "anonymous" else response.get("Location", ""))


def _state(row: Submission) -> tuple[str, int, int, list[str]]:
    row = Submission.objects.get(pk=row.pk)
    statuses = sorted(row.outbox.values_list("status", flat=True))
    return row.stage, row.version, Event.objects.filter(submission=row).count(), statuses


CASES = [pytest.param(name, role, id=f"{name}-{role}") for name in EXPECTED for role in ROLES]


@pytest.mark.django_db
@pytest.mark.parametrize(("url_name", "role"), CASES)
def test_admin_answers_each_role_as_the_matrix_says_and_shows_no_other_tenants_ids(
    world: World, url_name: str, role: str
) -> None:
    call = _calls(world)[url_name]()
    before = _state(call.target) if call.target else None

    client = _client(world, role)
    response = client.get(call.path) if call.method == "GET" else client.post(call.path, call.data)

    assert response.status_code == EXPECTED[url_name][role], _body(response, role)[:2000]
    if response.status_code == 302 and role == "anonymous":
        assert response["Location"].startswith("/admin/login/")
    body = _body(response, role)
    leaked = sorted(s for s in _forbidden(world, role) - call.echoed if s in body)
    assert not leaked, f"{role} was shown another tenant's {leaked}"
    if url_name.endswith("_from_list_confirmation") or url_name.endswith("_from_page_confirmation"):
        offered = "yes, go ahead" in body
        assert offered == (role in ACTING_ROLES), f"{role}: confirmation form offered={offered}"
    if call.target is not None:
        after = _state(call.target)
        if role in ACTING_ROLES:
            assert after != before
            actor = f"staff:{world.users[role].username}"
            assert Event.objects.filter(submission=call.target, actor=actor, reason=REASON).exists()
        else:
            assert after == before, f"{role}'s confirmed {url_name} changed {before} into {after}"


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_outbox_retry_touches_only_messages_the_role_operates(world: World, role: str) -> None:
    message = world.a.failed_message
    _client(world, role).post(
        "/admin/uploads/outboxmessage/", {"action": "retry_delivery", "_selected_action": [message.pk]}
    )
    status = OutboxMessage.objects.get(pk=message.pk).status
    expected = OutboxMessage.Status.PENDING if role in ACTING_ROLES else OutboxMessage.Status.FAILED
    assert status == expected


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("role", "lands_on_the_submission"),
    [("superuser", True), ("operator", True), ("viewer", True), ("other_staff", False)],
)
def test_index_search_opens_a_submission_only_within_the_roles_tenants(
    world: World, role: str, lands_on_the_submission: bool
) -> None:
    row = world.a.by_stage[Stage.FAILED]
    response = _client(world, role).get(f"/admin/search/?q={row.tracking_id}")
    page = f"{CHANGELIST}{row.pk}/change/"
    assert response["Location"] == (page if lands_on_the_submission else "/admin/")


def test_matrix_covers_every_staff_action() -> None:
    for name in STAFF_ACTIONS:
        assert {f"{name}_from_list_confirmed", f"{name}_from_page_confirmed"} <= set(EXPECTED)
    assert set(TARGET_STAGE) == set(STAFF_ACTIONS)


@pytest.mark.django_db
def test_superuser_sees_both_tenants_so_the_leak_check_has_something_to_find(world: World) -> None:
    listed = _body(_client(world, "superuser").get(CHANGELIST), "superuser")
    exported = _body(_client(world, "superuser").get(f"{CHANGELIST}export.csv"), "superuser")
    for data in (world.a, world.b):
        for row in data.by_stage.values():
            assert row.tracking_id in listed and f"{CHANGELIST}{row.pk}/" in listed
            assert {row.tracking_id, row.artisan_id, *row.media.values_list("media_id", flat=True)} <= set(
                exported.replace(",", " ").replace(":", " ").split()
            )
