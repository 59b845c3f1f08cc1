"""The bound on every JSON value the portal stores from outside (the pipeline's errorDetails,
by the events endpoint or the DynamoDB pull-back): at most MAX_JSON_DEPTH levels of nesting and
MAX_JSON_BYTES once serialized. The request parser only guards against a body too deep for
Python's own decoder; a value just below that still cannot be written (RecursionError in the
encoder) or shown (the admin's indented rendering recurses deeper still). 32 levels is DynamoDB's
own nesting limit for an attribute, so a value the mirror could hold is never refused here;
16 KiB is generous for an error report and keeps status messages and pages small.

A value stored before the bound existed (or written around it) is read back as a short notice
instead (StoredJSONField), so no page, status answer or message built from it can fail on it."""

import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from uploads.errors import InvalidInput

MAX_JSON_DEPTH = 32
MAX_JSON_BYTES = 16 * 1024


def json_depth_exceeds(value: Any, limit: int) -> bool:
    """Whether `value` nests more than `limit` objects/arrays deep (a scalar is depth 0, `{}` 1).
    Walks without recursion, and stops at the first level too deep, so any value is safe to ask."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list | tuple):
            if depth + 1 > limit:
                return True
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
    return False


def json_check_bounded(
    value: Any, *, field: str, max_depth: int = MAX_JSON_DEPTH, max_bytes: int = MAX_JSON_BYTES
) -> None:
    """Raises InvalidInput (400) naming `field` and the bound it passes; None passes."""
    if value is None:
        return
    bounds = {"field": field, "maxDepth": max_depth, "maxBytes": max_bytes}
    if json_depth_exceeds(value, max_depth):
        raise InvalidInput(f"{field} is nested more than {max_depth} levels deep.", details=bounds)
    try:
        encoded = json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:  # not JSON (NaN, which PostgreSQL's jsonb refuses; a set...)
        raise InvalidInput(f"{field} is not a JSON value: {exc}", details=bounds) from None
    size = len(encoded.encode())
    if size > max_bytes:
        raise InvalidInput(f"{field} is {size} bytes as JSON; at most {max_bytes} are kept.", details=bounds)


NOT_SHOWN = {"notShown": f"The stored value nests more than {MAX_JSON_DEPTH} levels deep; it is not shown."}


class StoredJSONField(models.JSONField):
    """A JSONField whose stored value, if nested beyond the bound, reads back as NOT_SHOWN: Python's
    decoder may not even manage it (RecursionError), and whatever renders it next surely not.
    For migrations it is a plain JSONField (same column, same deconstruction)."""

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        try:
            loaded = super().from_db_value(value, expression, connection)
        except RecursionError:
            return dict(NOT_SHOWN)
        return dict(NOT_SHOWN) if json_depth_exceeds(loaded, MAX_JSON_DEPTH) else loaded

    def deconstruct(self) -> Any:
        name, _, args, kwargs = super().deconstruct()
        return name, "django.db.models.JSONField", args, kwargs
