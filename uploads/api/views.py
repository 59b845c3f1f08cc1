"""API v1. Every action: validate input, call one service, render output."""

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from tenants.auth import HasTenant, IsPipelineKey, SessionGrant
from tenants.models import ApiKey, Tenant
from uploads import selectors, services
from uploads.api import inputs, outputs
from uploads.api import serializers as io
from uploads.errors import TenantMismatch

if TYPE_CHECKING:
    from rest_framework.permissions import _SupportsHasPermission  # the stubs' name for "a permission"

ERRORS = {code: io.ErrorOutput for code in (400, 401, 403, 404, 409, 413, 415, 503)}


def _validated(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _tenant(request: Request, claimed: str | None = None) -> Tenant:
    tenant: Tenant = request.tenant  # type: ignore[attr-defined]
    if claimed is not None and claimed != tenant.id:
        raise TenantMismatch("tenantId does not match the API key's tenant.", details={"field": "tenantId"})
    return tenant


def _artisan(request: Request) -> str | None:
    """The one artisan an upload link's session acts for; None for API keys and staff."""
    return request.auth.artisan_id if isinstance(request.auth, SessionGrant) else None


def _actor(request: Request) -> str:
    if isinstance(request.auth, ApiKey):
        return f"api:{request.auth.prefix}"
    if isinstance(request.auth, SessionGrant):
        return request.auth.actor
    return "api"


class CatalogViewSet(viewsets.ViewSet):
    """The original contract: initiate, complete, status."""

    def get_permissions(self) -> Sequence["_SupportsHasPermission"]:
        # The pipeline reads status too; starting and finishing uploads stays with client keys.
        if self.action == "status":
            return [HasTenant()]
        return super().get_permissions()

    @extend_schema(
        request=io.InitiateInput, responses={201: io.InitiateOutput, **ERRORS}, operation_id="upload_initiate"
    )
    def initiate(self, request: Request) -> Response:
        """Start one file (photo or audio). With fileSize: a URL to PUT exactly that many bytes to, with the
        headers to send. Without: a form to POST the file to (uploadMethod POST, uploadFields), whose signed
        policy bounds its size by the tenant's limit."""
        data = _validated(io.InitiateInput, request.data)
        initiated = services.media_initiate(
            tenant=_tenant(request, data.pop("tenant_id", None)),
            allow_multipart=False,
            file_size=data.pop("file_size", None),
            artisan_scope=_artisan(request),
            actor=_actor(request),
            **data,
        )
        return Response(io.InitiateOutput(initiated, context={"request": request}).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=io.CompleteInput, responses={202: io.CompleteOutput, **ERRORS}, operation_id="upload_complete"
    )
    def complete(self, request: Request) -> Response:
        """Hand the submission to processing once both files are at storage. Safe to repeat."""
        data = _validated(io.CompleteInput, request.data)
        submission = selectors.submission_get(
            tenant=_tenant(request), tracking_id=data.pop("tracking_id"), artisan_id=_artisan(request)
        )
        services.submission_complete(submission=submission, actor=_actor(request), **data)
        body = {
            "status": "accepted",
            "trackingId": submission.tracking_id,
            "message": "Upload complete; the submission is accepted for processing.",
        }
        return Response(io.CompleteOutput(body).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses={200: io.StatusOutput, **ERRORS}, operation_id="submission_status")
    def status(self, request: Request, tracking_id: str) -> Response:
        """Where the submission stands, and each file's upload progress."""
        found = selectors.submission_status(
            tenant=_tenant(request), tracking_id=tracking_id, artisan_id=_artisan(request)
        )
        return Response(outputs.status_output(found.submission, found.files))  # = io.StatusOutput(...).data


class UploadViewSet(viewsets.ViewSet):
    """Resumable uploads: one file, single PUT or multipart, driven part by part."""

    lookup_field = "media_id"

    @extend_schema(request=io.CreateUploadInput, responses={201: io.CreateUploadOutput, **ERRORS})
    def create(self, request: Request) -> Response:
        """Start a resumable upload: a single PUT URL, or a multipart plan whose parts are signed on demand."""
        data = _validated(io.CreateUploadInput, request.data)
        initiated = services.media_initiate(
            tenant=_tenant(request, data.pop("tenant_id", None)),
            artisan_scope=_artisan(request),
            actor=_actor(request),
            **data,
        )
        return Response(
            io.CreateUploadOutput(initiated, context={"request": request}).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(
        parameters=[
            OpenApiParameter("urls", int, description="Also sign URLs for up to this many pending parts (0-100).")
        ],
        responses={200: io.ProgressOutput, **ERRORS},
    )
    def retrieve(self, request: Request, media_id: str) -> Response:
        """Resume: the parts storage holds, the parts still missing and, with `urls`, fresh URLs for them."""
        query = _validated(io.ProgressQuery, request.query_params)
        media = selectors.media_get(tenant=_tenant(request), media_id=media_id, artisan_id=_artisan(request))
        progress = services.media_progress(media=media, sign_pending=query["urls"])
        return Response(outputs.progress_output(progress, request))  # = io.ProgressOutput(...).data

    @extend_schema(responses={200: io.MediaAbortOutput, **ERRORS})
    def destroy(self, request: Request, media_id: str) -> Response:
        """Abort an unfinished upload and free its storage. Safe to repeat."""
        media = selectors.media_get(tenant=_tenant(request), media_id=media_id, artisan_id=_artisan(request))
        media = services.media_abort(media=media, actor=_actor(request))
        return Response(io.MediaAbortOutput(media).data)

    @extend_schema(request=io.SignPartsInput, responses={200: io.SignedPartsOutput, **ERRORS})
    def sign_parts(self, request: Request, media_id: str) -> Response:
        """Short-lived URLs for up to 100 parts, each signed for its exact size."""
        data = inputs.sign_parts_input(request.data)  # = _validated(io.SignPartsInput, request.data)
        media = selectors.media_to_sign(tenant=_tenant(request), media_id=media_id, artisan_id=_artisan(request))
        parts = services.media_sign_parts(media=media, part_numbers=data["part_numbers"])
        return Response(outputs.signed_parts_output(parts, request))  # = io.SignedPartsOutput(...).data

    @extend_schema(request=io.RecordPartInput, responses={200: io.PartOutput, **ERRORS})
    def record_part(self, request: Request, media_id: str, part_number: int) -> Response:
        """Note a part you sent (for progress displays); storage, not this note, decides completion."""
        data = _validated(io.RecordPartInput, request.data)
        media = selectors.media_get(tenant=_tenant(request), media_id=media_id, artisan_id=_artisan(request))
        part = services.media_record_part(media=media, part_number=part_number, actor=_actor(request), **data)
        return Response(io.PartOutput(part).data)

    @extend_schema(request=None, responses={200: io.MediaCompleteOutput, **ERRORS})
    def complete(self, request: Request, media_id: str) -> Response:
        """Finish one file: every part is checked against the plan at storage, then the object. Safe to repeat."""
        media = selectors.media_get(tenant=_tenant(request), media_id=media_id, artisan_id=_artisan(request))
        media = services.media_complete(media=media, actor=_actor(request))
        return Response(io.MediaCompleteOutput(media).data)


class PipelineViewSet(viewsets.ViewSet):
    """What the processing pipeline reports back, with a pipeline key."""

    permission_classes = [IsPipelineKey]

    @extend_schema(
        request=io.PipelineEventInput,
        responses={200: io.PipelineEventOutput, **ERRORS},
        operation_id="submission_event",
    )
    def events(self, request: Request, tracking_id: str) -> Response:
        """Report processing, completed or failed. Safe to repeat: a repeated eventId changes nothing
        and answers `accepted: false`; a report that would move the stage backwards is a 409."""
        data = _validated(io.PipelineEventInput, request.data)
        submission = selectors.submission_get(tenant=_tenant(request), tracking_id=tracking_id)
        report = services.submission_record_pipeline_event(submission=submission, actor=_actor(request), **data)
        return Response(io.PipelineEventOutput({"event_id": data["event_id"], "report": report}).data)
