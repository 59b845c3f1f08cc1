"""Which content types the portal takes, what kind of file each is, and the extension its
object key gets. The client's file name never reaches a key; the content type alone decides."""

from dataclasses import dataclass

from uploads.errors import UnsupportedMediaType
from uploads.models import MediaKind


@dataclass(frozen=True)
class MediaType:
    content_type: str
    kind: MediaKind
    ext: str


_ALLOWED = [
    MediaType("image/jpeg", MediaKind.PHOTO, "jpg"),
    MediaType("image/png", MediaKind.PHOTO, "png"),
    MediaType("image/webp", MediaKind.PHOTO, "webp"),
    MediaType("image/heic", MediaKind.PHOTO, "heic"),
    MediaType("image/heif", MediaKind.PHOTO, "heif"),
    MediaType("audio/ogg", MediaKind.AUDIO, "ogg"),
    MediaType("audio/opus", MediaKind.AUDIO, "opus"),
    MediaType("audio/webm", MediaKind.AUDIO, "webm"),
    MediaType("audio/mpeg", MediaKind.AUDIO, "mp3"),
    MediaType("audio/mp4", MediaKind.AUDIO, "m4a"),
    MediaType("audio/aac", MediaKind.AUDIO, "aac"),
    MediaType("audio/wav", MediaKind.AUDIO, "wav"),
    MediaType("audio/x-wav", MediaKind.AUDIO, "wav"),
    MediaType("audio/wave", MediaKind.AUDIO, "wav"),
]
MEDIA_TYPES: dict[str, MediaType] = {m.content_type: m for m in _ALLOWED}


def resolve_media_type(content_type: str) -> MediaType:
    """Accepts parameters (`audio/webm;codecs=opus`, as browsers' MediaRecorder reports) but
    signs and stores the bare type, so the header a client must send is predictable."""
    base = content_type.split(";", 1)[0].strip().lower()
    media_type = MEDIA_TYPES.get(base)
    if media_type is None:
        raise UnsupportedMediaType(
            f"Content type {base or content_type!r} is not accepted.",
            details={"field": "contentType", "allowed": sorted(MEDIA_TYPES)},
        )
    return media_type
