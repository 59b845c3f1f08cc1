"""The hottest request body (the part numbers to sign) checked by hand in its common shape: a
DRF serializer spends longer validating ten integers than signing their URLs.

Only input the serializer would accept unchanged is taken here; anything else (strings of
digits, floats, a missing or odd field, out of range or too many numbers) goes to the serializer,
so every error keeps its own code, message and details. The bounds are read from the serializer
itself, and tests/api/test_hand_written_outputs.py checks both paths agree on any input."""

from typing import Any

from rest_framework import serializers

from uploads.api.serializers import SignPartsInput


def _bounds() -> tuple[int, int, int, int]:
    """The serializer's own: fewest and most part numbers, lowest and highest part number."""
    field = SignPartsInput().fields["partNumbers"]
    assert isinstance(field, serializers.ListField) and isinstance(field.child, serializers.IntegerField)
    most, lowest, highest = field.max_length, field.child.min_value, field.child.max_value
    assert most is not None and lowest is not None and highest is not None
    return field.min_length or 0, most, lowest, highest


_MIN_COUNT, _MAX_COUNT, _LOWEST, _HIGHEST = _bounds()


def sign_parts_input(data: Any) -> dict[str, Any]:
    """SignPartsInput(data=data)'s validated data, or its ValidationError."""
    numbers = data.get("partNumbers") if isinstance(data, dict) else None
    if (
        type(numbers) is list
        and _MIN_COUNT <= len(numbers) <= _MAX_COUNT
        and all(type(n) is int and _LOWEST <= n <= _HIGHEST for n in numbers)
    ):
        return {"part_numbers": list(numbers)}
    serializer = SignPartsInput(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)
