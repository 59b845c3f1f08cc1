"""Queries compiled once per process (portal/prepared_queries.py) answer what their QuerySet
answers, converted the same way, and the instances made from their rows are the ones Django
makes."""

from datetime import UTC, datetime
from typing import Any

import pytest
from django.db.models.signals import post_init

from portal.prepared_queries import PreparedQuery, _named, model_from_row
from tenants.models import ApiKey, Tenant
from tenants.services import api_key_create
from tests.helpers import media_row
from uploads.models import MediaUpload, Submission

pytestmark = pytest.mark.django_db

COLUMNS = ("id", "tracking_id", "stage", "error_details", "updated_at", "media__media_id", "media__created_at")


def by_tenant_and_artisan(tenant_id: str, artisan_id: str) -> Any:
    return (
        Submission.objects.filter(tenant_id=tenant_id, artisan_id=artisan_id)
        .order_by("tracking_id", "media__id")
        .values_list(*COLUMNS)
    )


QUERY = PreparedQuery(by_tenant_and_artisan, params=("tenant_id", "artisan_id"))


def test_rows_are_the_querysets_converted_alike(tenant: Tenant, other_tenant: Tenant) -> None:
    for owner, artisan in ((tenant, "art_1"), (tenant, "art_1"), (tenant, "art_2"), (other_tenant, "art_1")):
        submission = Submission.objects.create(
            tenant=owner, artisan_id=artisan, error_details={"why": ["blurry", 2]}, stage_message="x"
        )
        media_row(submission, "photo")
    Submission.objects.create(tenant=tenant, artisan_id="art_1")  # no files: NULLs from the join
    for owner in (tenant, other_tenant):
        for artisan in ("art_1", "art_2", "art_3"):
            rows = QUERY.rows(tenant_id=owner.pk, artisan_id=artisan)
            assert rows == list(by_tenant_and_artisan(owner.pk, artisan))
    rows = QUERY.rows(tenant_id=tenant.pk, artisan_id="art_1")
    assert len(rows) == 3
    assert all(isinstance(row[4], datetime) and row[4].tzinfo is not None for row in rows)
    assert {type(row[3]) for row in rows} == {dict, type(None)}


def test_a_prepared_query_is_one_query(tenant: Tenant, django_assert_num_queries: Any) -> None:
    QUERY.rows(tenant_id=tenant.pk, artisan_id="art_1")
    with django_assert_num_queries(1):
        QUERY.rows(tenant_id=tenant.pk, artisan_id="art_1")


def test_values_are_passed_as_parameters_never_spliced_into_the_sql(tenant: Tenant) -> None:
    hostile = "art_1' OR '1'='1"
    Submission.objects.create(tenant=tenant, artisan_id="art_1")
    assert QUERY.rows(tenant_id=tenant.pk, artisan_id=hostile) == []
    assert "%(p0)s" in QUERY.sql() and "art_1" not in QUERY.sql()


def test_placeholders_are_named_and_literal_percent_signs_kept() -> None:
    assert _named("a LIKE '%%x' AND b = %s OR c = '%%s' OR d = %s", 2) == (
        "a LIKE '%%x' AND b = %(p0)s OR c = '%%s' OR d = %(p1)s"
    )
    with pytest.raises(ValueError):
        _named("a = %s", 2)


def test_every_value_must_be_named(tenant: Tenant) -> None:
    with pytest.raises(TypeError):
        QUERY.rows(tenant_id=tenant.pk)
    with pytest.raises(TypeError):
        QUERY.rows(tenant_id=tenant.pk, artisan_id="a", stage="b")


def test_a_parameter_that_does_not_reach_the_sql_unchanged_is_refused(tenant: Tenant) -> None:
    prefixed = PreparedQuery(
        lambda prefix: Submission.objects.filter(artisan_id__startswith=prefix).values_list("pk"),
        params=("prefix",),
    )
    with pytest.raises(ValueError, match="do not reach the SQL unchanged"):
        prefixed.rows(prefix="art")


def fields_of(instance: Any) -> dict[str, Any]:
    return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}


@pytest.mark.parametrize("model", [Tenant, ApiKey, Submission, MediaUpload])
def test_an_instance_from_a_row_is_the_one_from_db_makes(model: Any, tenant: Tenant) -> None:
    submission = Submission.objects.create(tenant=tenant, artisan_id="art_1", error_details={"a": 1})
    media_row(submission, "audio", part_count=2, parts=1)
    api_key_create(tenant=tenant)
    names = [f.attname for f in model._meta.concrete_fields]
    row = model.objects.values_list(*names).first()
    made = model_from_row(model, row)
    reference = model.from_db("default", names, row)
    assert type(made) is model and fields_of(made) == fields_of(reference)
    assert (made._state.adding, made._state.db) == (False, "default")
    assert made == model.objects.get(pk=made.pk)


def test_columns_left_out_are_deferred_and_read_when_used(tenant: Tenant, django_assert_num_queries: Any) -> None:
    submission = Submission.objects.create(tenant=tenant, artisan_id="art_1", stage_message="hello")
    made = model_from_row(Submission, (submission.pk, submission.tracking_id), attnames=["id", "tracking_id"])
    assert made.get_deferred_fields() == {f.attname for f in Submission._meta.concrete_fields} - {"id", "tracking_id"}
    with django_assert_num_queries(1):
        assert made.stage_message == "hello"


def test_a_model_listened_to_is_made_by_init(tenant: Tenant) -> None:
    made: list[Any] = []

    def listener(sender: Any, instance: Any, **kwargs: Any) -> None:
        made.append(instance)

    post_init.connect(listener, sender=Tenant)
    try:
        row = Tenant.objects.values_list(*[f.attname for f in Tenant._meta.concrete_fields]).get(pk=tenant.pk)
        instance = model_from_row(Tenant, row)
    finally:
        post_init.disconnect(listener, sender=Tenant)
    assert made == [instance] and instance.name == tenant.name


def test_a_row_of_the_wrong_width_is_refused() -> None:
    with pytest.raises(ValueError):
        model_from_row(Tenant, ("t", "T"))
    with pytest.raises(ValueError):
        model_from_row(Tenant, ("t",), attnames=["id", "name"])


def test_datetimes_come_back_aware(tenant: Tenant) -> None:
    submission = Submission.objects.create(tenant=tenant, artisan_id="art_1")
    Submission.objects.filter(pk=submission.pk).update(updated_at=datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC))
    [row] = QUERY.rows(tenant_id=tenant.pk, artisan_id="art_1")
    assert row[4] == datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC)
