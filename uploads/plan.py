"""The part plan of a multipart upload: fixed at initiation, checked at completion."""

import math
from dataclasses import dataclass

from django.conf import settings

from uploads.errors import InvalidInput

MIB = 1024 * 1024


@dataclass(frozen=True)
class PartPlan:
    file_size: int
    part_size: int
    part_count: int

    def size_of(self, part_number: int) -> int:
        """Every part is part_size bytes except the last, which takes the remainder."""
        if part_number < self.part_count:
            return self.part_size
        return self.file_size - self.part_size * (self.part_count - 1)


def plan_parts(*, file_size: int, part_size: int | None = None) -> PartPlan:
    if part_size is None:
        # The default part size, grown (in whole MiB) just enough to stay within the part limit.
        needed = math.ceil(file_size / settings.UPLOADS_MAX_PARTS)
        part_size = settings.UPLOADS_DEFAULT_PART_SIZE
        if needed > part_size:
            part_size = math.ceil(needed / MIB) * MIB
    if not settings.UPLOADS_MIN_PART_SIZE <= part_size <= settings.UPLOADS_MAX_PART_SIZE:
        raise InvalidInput(
            f"partSize must be between {settings.UPLOADS_MIN_PART_SIZE} and {settings.UPLOADS_MAX_PART_SIZE} bytes.",
            details={"field": "partSize", "min": settings.UPLOADS_MIN_PART_SIZE, "max": settings.UPLOADS_MAX_PART_SIZE},
        )
    part_count = max(1, math.ceil(file_size / part_size))
    if part_count > settings.UPLOADS_MAX_PARTS:
        raise InvalidInput(
            f"partSize {part_size} would need {part_count} parts; the limit is {settings.UPLOADS_MAX_PARTS}.",
            details={"field": "partSize", "minPartSize": math.ceil(file_size / settings.UPLOADS_MAX_PARTS)},
        )
    return PartPlan(file_size=file_size, part_size=part_size, part_count=part_count)
