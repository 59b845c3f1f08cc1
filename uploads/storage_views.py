"""The local backend's receiving end: where its signed URLs point. Plain Django, not DRF: the
body is raw bytes streamed to disk, never parsed or held in memory."""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from portal.exceptions import error_body
from uploads.errors import DomainError, InvalidInput, NotFound, StorageUnavailable
from uploads.storage import LocalStorage, StorageError, UploadNotFound, get_storage


@csrf_exempt
def local_put(request: HttpRequest, token: str) -> HttpResponse:
    if request.method != "PUT":  # answered in the API's error shape, not Django's empty 405
        refusal = JsonResponse(
            error_body("method_not_allowed", f"Method {request.method} not allowed; PUT the bytes."), status=405
        )
        refusal["Allow"] = "PUT"
        return refusal
    try:
        etag = _receive(request, token)
    except DomainError as exc:
        return JsonResponse(error_body(exc.code, exc.message, exc.details), status=exc.status_code)
    response = HttpResponse(status=200)
    response["ETag"] = etag
    return response


def _receive(request: HttpRequest, token: str) -> str:
    storage = get_storage()
    if not isinstance(storage, LocalStorage):
        raise NotFound("Local storage is not in use.")
    raw_length = request.META.get("CONTENT_LENGTH") or None
    content_length = None
    if raw_length is not None:
        if not (raw_length.isascii() and raw_length.isdigit()):
            raise InvalidInput("Content-Length is not a number.")
        content_length = int(raw_length)
    try:
        return storage.receive_put(
            token=token,
            body=request,
            content_length=content_length,
            content_type=request.content_type or "",
            if_none_match=request.headers.get("If-None-Match"),
        )
    except UploadNotFound:
        raise NotFound("This multipart upload no longer exists (completed or aborted).") from None
    except (StorageError, OSError) as exc:  # a full or failing disk is ours, not the client's
        raise StorageUnavailable(str(exc)) from exc
