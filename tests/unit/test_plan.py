import pytest
from django.test import override_settings
from hypothesis import given
from hypothesis import strategies as st

from uploads.errors import InvalidInput
from uploads.plan import MIB, plan_parts

REAL_LIMITS = {"UPLOADS_MIN_PART_SIZE": 5 * MIB, "UPLOADS_DEFAULT_PART_SIZE": 8 * MIB}


@given(file_size=st.integers(min_value=1, max_value=5 * 1024**4))
@override_settings(**REAL_LIMITS)
def test_default_plan_covers_the_file_within_s3_limits(file_size: int) -> None:
    plan = plan_parts(file_size=file_size)
    assert 1 <= plan.part_count <= 10_000
    assert 5 * MIB <= plan.part_size <= 5 * 1024**3
    assert plan.part_size * (plan.part_count - 1) + plan.size_of(plan.part_count) == file_size
    assert 0 < plan.size_of(plan.part_count) <= plan.part_size


@override_settings(**REAL_LIMITS)
def test_last_part_is_the_remainder() -> None:
    plan = plan_parts(file_size=20 * MIB + 3, part_size=5 * MIB)
    assert (plan.part_count, plan.size_of(1), plan.size_of(4), plan.size_of(5)) == (5, 5 * MIB, 5 * MIB, 3)


@override_settings(**REAL_LIMITS)
def test_part_size_grows_to_stay_within_ten_thousand_parts() -> None:
    plan = plan_parts(file_size=200 * 1024**3)
    assert plan.part_count <= 10_000
    assert plan.part_size % MIB == 0


@override_settings(**REAL_LIMITS)
@pytest.mark.parametrize(
    ("file_size", "part_size"),
    [(100 * MIB, 5 * MIB - 1), (100 * MIB, 5 * 1024**3 + 1), (60_000 * MIB, 5 * MIB)],
)
def test_client_part_size_outside_s3_limits_is_rejected(file_size: int, part_size: int) -> None:
    with pytest.raises(InvalidInput):
        plan_parts(file_size=file_size, part_size=part_size)
