import pytest
from hypothesis import given
from hypothesis import strategies as st

from uploads.errors import InvalidInput, UnsupportedMediaType
from uploads.keys import build_object_key, validate_artisan_id
from uploads.media_types import resolve_media_type

VALID = {
    "tenant_id": "tenant_a",
    "artisan_id": "art-1",
    "tracking_id": "trk_" + "a" * 24,
    "media_id": "med_" + "b" * 24,
}


def test_key_is_tenant_artisan_tracking_media_ext() -> None:
    assert build_object_key(**VALID, ext="jpg") == f"tenant_a/art-1/trk_{'a' * 24}/med_{'b' * 24}.jpg"


@pytest.mark.parametrize("field", ["tenant_id", "artisan_id", "tracking_id", "media_id"])
@pytest.mark.parametrize("bad", ["", "..", "a/b", "../tenant_b", "x\x00", "é"])
def test_no_segment_can_escape_its_prefix(field: str, bad: str) -> None:
    with pytest.raises(InvalidInput):
        build_object_key(**{**VALID, field: bad}, ext="jpg")


@given(st.text(max_size=80))
def test_any_accepted_artisan_id_yields_a_four_segment_key_in_the_tenant(artisan_id: str) -> None:
    try:
        validate_artisan_id(artisan_id)
    except InvalidInput:
        return
    key = build_object_key(**{**VALID, "artisan_id": artisan_id}, ext="ogg")
    segments = key.split("/")
    assert len(segments) == 4 and segments[0] == "tenant_a" and segments[1] == artisan_id
    assert ".." not in segments and all(segments)


@pytest.mark.parametrize(
    ("content_type", "kind", "ext"),
    [
        ("image/jpeg", "photo", "jpg"),
        ("IMAGE/PNG", "photo", "png"),
        ("audio/webm;codecs=opus", "audio", "webm"),
        ("audio/ogg; codecs=opus", "audio", "ogg"),
        ("audio/mp4", "audio", "m4a"),
        ("audio/wav", "audio", "wav"),
    ],
)
def test_allowed_content_types_map_to_kind_and_extension(content_type: str, kind: str, ext: str) -> None:
    media_type = resolve_media_type(content_type)
    assert (media_type.kind, media_type.ext) == (kind, ext)
    assert ";" not in media_type.content_type


@pytest.mark.parametrize("content_type", ["text/html", "image/svg+xml", "application/octet-stream", "", "video/mp4"])
def test_other_content_types_are_refused(content_type: str) -> None:
    with pytest.raises(UnsupportedMediaType):
        resolve_media_type(content_type)
