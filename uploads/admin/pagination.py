"""Admin pages over tables that grow without end: a COUNT(*) of a million rows on every page
view is the first thing that makes an admin slow, so counting stops at a limit."""

import json
from functools import cached_property
from typing import Any

from django.conf import settings
from django.core.paginator import Paginator
from django.db import connections


class BoundedCountPaginator(Paginator):
    """Counts exactly up to ADMIN_EXACT_COUNT_LIMIT rows (a COUNT over a LIMIT subquery, so its
    cost is bounded); beyond it, PostgreSQL's planner estimate for the same query, and elsewhere
    the limit itself. `estimated` tells the template to say "about"."""

    estimated = False
    estimate_from_planner = False

    @property
    def exact_limit(self) -> int:
        limit: int = settings.ADMIN_EXACT_COUNT_LIMIT
        return limit

    @cached_property
    def count(self) -> int:
        bounded: int = self.object_list[: self.exact_limit + 1].count()  # type: ignore[attr-defined]
        if bounded <= self.exact_limit:
            return bounded
        self.estimated = True
        estimate = planner_estimate(self.object_list)
        self.estimate_from_planner = estimate is not None
        return max(self.exact_limit + 1, estimate or 0)


def planner_estimate(queryset: Any) -> int | None:
    """The row count PostgreSQL's planner expects for the query (EXPLAIN, nothing executed)."""
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):  # psycopg decodes the JSON itself; other drivers may not
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])
