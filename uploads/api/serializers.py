"""The wire contract, camelCase, one input and one output serializer per endpoint."""

from typing import Any

from django.core.validators import RegexValidator
from rest_framework import serializers

from uploads.media_types import MEDIA_TYPES
from uploads.models import MediaUpload, Stage
from uploads.selectors import media_bytes_received

MAX_BIGINT = 2**63 - 1


class AbsoluteUrlField(serializers.CharField):
    """The local backend signs paths; clients need absolute URLs. S3 URLs pass unchanged."""

    def to_representation(self, value: str) -> str:
        return self.context["request"].build_absolute_uri(value)


class CompactSerializer(serializers.Serializer):
    # Leaves out optional fields that have no value, as the contract's `field?` marks them.

    def to_representation(self, instance: Any) -> dict[str, Any]:
        data = super().to_representation(instance)
        return {k: v for k, v in data.items() if v not in (None, "") or self.fields[k].required}


# --- inputs --------------------------------------------------------------------------------
class InitiateInput(serializers.Serializer):
    tenantId = serializers.CharField(
        source="tenant_id", required=False, help_text="Optional; must be the API key's tenant (else 403)."
    )
    artisanId = serializers.CharField(
        source="artisan_id", max_length=64, help_text="1-64 letters, digits, '_' or '-'. Becomes part of the key."
    )
    contentType = serializers.CharField(
        source="content_type",
        max_length=200,
        help_text="Photos: " + ", ".join(t for t in MEDIA_TYPES if t.startswith("image/")) + ". "
        "Audio: " + ", ".join(t for t in MEDIA_TYPES if t.startswith("audio/")) + ". "
        "Parameters (audio/webm;codecs=opus) are accepted and dropped.",
    )
    trackingId = serializers.CharField(
        source="tracking_id", required=False, max_length=64, help_text="Adds this file to an existing submission."
    )
    fileSize = serializers.IntegerField(
        source="file_size",
        required=False,
        min_value=1,
        max_value=MAX_BIGINT,
        help_text="Bytes. When given, the answer is a PUT URL signed for exactly this Content-Length. "
        "Left out, the answer is a form POST (uploadMethod POST, uploadFields) whose policy lets storage take "
        "1 byte up to the tenant's limit for the type, and refuse anything else while it arrives.",
    )


class CreateUploadInput(InitiateInput):
    fileSize = serializers.IntegerField(
        source="file_size", min_value=1, max_value=MAX_BIGINT, help_text="Bytes; above 16 MiB the upload is multipart."
    )
    partSize = serializers.IntegerField(
        source="part_size",
        required=False,
        min_value=1,
        max_value=MAX_BIGINT,
        help_text="Propose a part size (5 MiB to 5 GiB, at most 10,000 parts); makes the upload multipart.",
    )


class CompleteInput(serializers.Serializer):
    trackingId = serializers.CharField(source="tracking_id", max_length=64)
    photoKey = serializers.CharField(source="photo_key", max_length=512, help_text="The photo's `key`.")
    audioKey = serializers.CharField(source="audio_key", max_length=512, help_text="The audio's `key`.")
    language = serializers.CharField(max_length=8, help_text="ISO 639 code of the spoken description, e.g. hi, ta, en.")
    priority = serializers.CharField(
        required=False, default="normal", max_length=16, help_text="low, normal (default) or high."
    )


class SignPartsInput(serializers.Serializer):
    partNumbers = serializers.ListField(
        source="part_numbers",
        child=serializers.IntegerField(min_value=1, max_value=10_000),
        min_length=1,
        max_length=100,
    )


class RecordPartInput(serializers.Serializer):
    etag = serializers.CharField(max_length=128)
    size = serializers.IntegerField(min_value=1, max_value=MAX_BIGINT)


class ProgressQuery(serializers.Serializer):
    urls = serializers.IntegerField(required=False, default=0, min_value=0, max_value=100)


class PipelineEventInput(serializers.Serializer):
    eventId = serializers.CharField(
        source="event_id",
        min_length=1,
        max_length=128,
        trim_whitespace=False,  # an id is taken exactly as sent: " e1" is not "e1"
        validators=[RegexValidator(r"\A[A-Za-z0-9._:-]+\Z", "Letters, digits, '.', '_', ':' or '-' only.")],
        help_text="The pipeline's own id for this report, 1-128 letters, digits, '.', '_', ':' or '-'. "
        "A repeat of an eventId already recorded for the submission changes nothing.",
    )
    stage = serializers.ChoiceField(
        choices=[Stage.PROCESSING.value, Stage.COMPLETED.value, Stage.FAILED.value],
        help_text="Where processing stands. The stage only moves forward: completed or failed is final.",
    )
    message = serializers.CharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        max_length=500,
        help_text="Shown as the status message; a default per stage when absent.",
    )
    catalogId = serializers.CharField(
        source="catalog_id",
        required=False,
        allow_blank=True,
        allow_null=True,
        max_length=128,
        help_text="The catalog entry created; recorded when stage is completed.",
    )
    errorDetails = serializers.DictField(
        source="error_details",
        required=False,
        allow_null=True,
        help_text="A JSON object saying what went wrong; recorded when stage is failed. At most 32 levels "
        "deep and 16 KiB as JSON (else 400 invalid_input naming errorDetails and the bounds).",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # An optional field sent as null is the same as one left out.
        return {name: value for name, value in attrs.items() if value is not None}


# --- outputs -------------------------------------------------------------------------------
class InitiateOutput(CompactSerializer):
    """A PUT of exactly fileSize bytes, or, for a file of undeclared size, an HTML-form POST
    (S3's presigned POST) whose signed policy bounds the size: storage enforces it either way."""

    trackingId = serializers.CharField(source="media.submission.tracking_id")
    uploadMethod = serializers.ChoiceField(
        choices=["PUT", "POST"],
        source="method",
        help_text="PUT (fileSize given): send the bytes as the body to uploadUrl with `headers`. "
        "POST (no fileSize): send multipart/form-data to uploadUrl, every uploadFields entry as a field, "
        "then the file as the last field, named `file`. Storage answers 204, and refuses a file over the "
        "tenant's limit or an empty one while it arrives (S3: 400 EntityTooLarge or EntityTooSmall; the "
        "local backend: 413 or 400).",
    )
    uploadUrl = AbsoluteUrlField(source="signed.url")
    expiresAt = serializers.DateTimeField(source="signed.expires_at")
    key = serializers.CharField(source="media.object_key")
    mediaId = serializers.CharField(source="media.media_id")
    headers = serializers.DictField(
        child=serializers.CharField(), help_text="Headers to send with the PUT; empty for a POST."
    )
    uploadFields = serializers.DictField(
        source="fields",
        child=serializers.CharField(),
        required=False,
        default=None,
        help_text="POST only: the signed form fields (key, Content-Type, policy and signature), sent as they are.",
    )

    def to_representation(self, instance: Any) -> dict[str, Any]:
        form = instance.form
        flat = {
            "media": instance.media,
            "method": "POST" if form is not None else "PUT",
            "signed": form if form is not None else instance.upload,
            "headers": {} if form is not None else instance.upload.headers,
            "fields": form.fields if form is not None else None,
        }
        return super().to_representation(flat)


class CreateUploadOutput(CompactSerializer):
    trackingId = serializers.CharField(source="media.submission.tracking_id")
    mediaId = serializers.CharField(source="media.media_id")
    key = serializers.CharField(source="media.object_key")
    strategy = serializers.CharField(source="media.strategy")
    expiresAt = serializers.SerializerMethodField(method_name="get_expires_at")
    uploadUrl = AbsoluteUrlField(source="upload.url", required=False, default=None)
    headers = serializers.DictField(
        source="upload.headers", child=serializers.CharField(), required=False, default=None
    )
    partSize = serializers.IntegerField(source="plan.part_size", required=False, default=None)
    numParts = serializers.IntegerField(source="plan.part_count", required=False, default=None)

    def get_expires_at(self, obj: Any) -> str:
        """The single PUT URL's expiry, or the multipart upload's."""
        when = obj.upload.expires_at if obj.upload else obj.media.expires_at
        return serializers.DateTimeField().to_representation(when)


class CompleteOutput(serializers.Serializer):
    status = serializers.CharField()
    trackingId = serializers.CharField()
    message = serializers.CharField()


class SignedPartOutput(serializers.Serializer):
    partNumber = serializers.IntegerField(source="part_number")
    url = AbsoluteUrlField(source="request.url")
    size = serializers.IntegerField(
        allow_null=True, help_text="The exact Content-Length the URL is signed for; null when any size is allowed."
    )
    expiresAt = serializers.DateTimeField(source="request.expires_at")
    headers = serializers.DictField(source="request.headers", child=serializers.CharField())


class SignedPartsOutput(serializers.Serializer):
    parts = SignedPartOutput(many=True)


class PartOutput(serializers.Serializer):
    """A part as storage lists it, or as a client recorded it: the same three facts."""

    partNumber = serializers.IntegerField(source="part_number")
    size = serializers.IntegerField()
    etag = serializers.CharField()


class ProgressOutput(CompactSerializer):
    mediaId = serializers.CharField(source="media.media_id")
    trackingId = serializers.CharField(source="media.submission.tracking_id")
    key = serializers.CharField(source="media.object_key")
    status = serializers.CharField(source="media.status")
    strategy = serializers.CharField(source="media.strategy")
    fileSize = serializers.IntegerField(source="media.declared_size", allow_null=True)
    expiresAt = serializers.DateTimeField(source="media.expires_at")
    bytesUploaded = serializers.IntegerField(source="bytes_uploaded")
    partSize = serializers.IntegerField(source="media.part_size", required=False, default=None)
    numParts = serializers.IntegerField(source="media.part_count", required=False, default=None)
    completedParts = PartOutput(source="completed_parts", many=True)
    pendingParts = serializers.ListField(source="pending_parts", child=serializers.IntegerField())
    pendingPartUrls = SignedPartOutput(source="part_urls", many=True)


class MediaAbortOutput(serializers.Serializer):
    mediaId = serializers.CharField(source="media_id")
    key = serializers.CharField(source="object_key")
    status = serializers.CharField()


class MediaCompleteOutput(MediaAbortOutput):
    size = serializers.IntegerField()
    etag = serializers.CharField()


class FileStatusOutput(CompactSerializer):
    mediaId = serializers.CharField(source="media_id")
    kind = serializers.CharField()
    key = serializers.CharField(source="object_key")
    contentType = serializers.CharField(source="content_type")
    strategy = serializers.CharField()
    status = serializers.CharField()
    fileSize = serializers.IntegerField(source="declared_size", allow_null=True)
    bytesRecorded = serializers.SerializerMethodField(
        method_name="get_bytes_recorded",
        help_text="Uploaded bytes as far as the portal has recorded them (all of them once uploaded). "
        "GET /v1/catalog/uploads/{mediaId} asks storage itself.",
    )
    numParts = serializers.IntegerField(source="part_count", required=False, default=None)

    def get_bytes_recorded(self, media: MediaUpload) -> int:
        return media_bytes_received(media)


class StatusOutput(CompactSerializer):
    trackingId = serializers.CharField(source="tracking_id")
    stage = serializers.CharField()
    message = serializers.CharField(source="stage_message")
    timestamp = serializers.DateTimeField(source="updated_at")
    catalogId = serializers.CharField(source="catalog_id", required=False, allow_null=True, default=None)
    errorDetails = serializers.JSONField(source="error_details", required=False, default=None)
    files = FileStatusOutput(source="media", many=True)


class PipelineEventOutput(serializers.Serializer):
    eventId = serializers.CharField(source="event_id", help_text="The eventId of the report.")
    accepted = serializers.BooleanField(
        source="report.accepted",
        help_text="True: this report was applied. False: a repeat of an eventId already recorded; nothing changed.",
    )
    trackingId = serializers.CharField(source="report.submission.tracking_id", help_text="The submission reported on.")
    stage = serializers.CharField(source="report.submission.stage", help_text="The submission's stage now.")
    version = serializers.IntegerField(
        source="report.submission.version", help_text="Bumped by one for each change; orders status updates."
    )


class ErrorBodyOutput(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    details = serializers.DictField()


class ErrorOutput(serializers.Serializer):
    """Every 4xx and 5xx of the API has this shape."""

    error = ErrorBodyOutput()
