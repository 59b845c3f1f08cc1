"""The local backend's receiving end: where its signed URLs and forms point. Plain Django, not
DRF: bodies are streamed to disk, never held in memory. It answers CORS for the origins in
UPLOADS_CORS_ORIGINS as the bucket's CORS rule does on S3 (`manage.py s3_setup_bucket`).
Its signed GET URLs (staff previews) are served here too, streamed from disk, with byte ranges."""

from collections.abc import Callable, Mapping
from functools import wraps
from typing import Any, BinaryIO, Concatenate, ParamSpec

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParser, MultiPartParserError
from django.http.response import HttpResponseBase
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

from portal.exceptions import domain_error_response, error_body, method_not_allowed_response
from portal.gunicorn_body import socket_body
from uploads.errors import CrossSiteRefused, DomainError, InvalidInput, NotFound, StorageUnavailable
from uploads.storage import LocalStorage, StorageError, StoredObject, UploadNotFound, get_storage
from uploads.storage.local import IncomingObject
from uploads.storage.local_signing import verify_get, verify_post_policy

P = ParamSpec("P")
View = Callable[Concatenate[HttpRequest, P], HttpResponse]

CORS_METHODS = ("PUT", "POST")
# The headers the local backend's URLs are signed with (as on S3): the rest need no preflight.
CORS_ALLOWED_HEADERS = ("Content-Type", "If-None-Match")
CORS_MAX_AGE_SECONDS = 3600


def storage_cors(view: View[P]) -> View[P]:
    """Answers preflights for the configured origins and lets their pages read the answer's
    ETag; any other origin gets no CORS header at all (its preflight a 403), so the browser
    keeps it out. Same-origin requests need none of this."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: P.args, **kwargs: P.kwargs) -> HttpResponse:
        origin = request.headers.get("Origin")
        allowed = origin if origin is not None and origin in settings.UPLOADS_CORS_ORIGINS else None
        if request.method == "OPTIONS":
            wanted = request.headers.get("Access-Control-Request-Method", "")
            if allowed is None or wanted not in CORS_METHODS:
                return domain_error_response(
                    CrossSiteRefused("This origin may not upload here.", details={"origin": origin})
                )
            response = HttpResponse(status=204)
            response["Access-Control-Allow-Methods"] = ", ".join(CORS_METHODS)
            response["Access-Control-Allow-Headers"] = ", ".join(CORS_ALLOWED_HEADERS)
            response["Access-Control-Max-Age"] = str(CORS_MAX_AGE_SECONDS)
        else:
            response = view(request, *args, **kwargs)
        if allowed is not None:
            response["Access-Control-Allow-Origin"] = allowed
            response["Access-Control-Expose-Headers"] = "ETag"
        response["Vary"] = "Origin"
        return response

    return wrapped


@csrf_exempt
@storage_cors
def local_put(request: HttpRequest, token: str) -> HttpResponse:
    if request.method != "PUT":  # answered in the API's error shape, not Django's empty 405
        return method_not_allowed_response(request.method or "", ["PUT"], "PUT the bytes.")
    try:
        etag = _receive(request, token)
    except DomainError as exc:
        refusal = domain_error_response(exc)
        if exc.status_code == 413:  # the body is left unread: do not reuse the connection
            refusal["Connection"] = "close"
        return refusal
    response = HttpResponse(status=200)
    response["ETag"] = etag
    return response


@csrf_exempt
@storage_cors
def local_post(request: HttpRequest) -> HttpResponse:
    """S3's form upload (presigned POST), as Uppy sends it: the signed fields, then `file`.
    Answers 204 with the ETag, as S3 does."""
    if request.method != "POST":
        return method_not_allowed_response(request.method or "", ["POST"], "POST the form.")
    try:
        storage = _local_storage()
        incoming = _receive_form(request, storage)
        try:
            etag = incoming.publish()
        except (StorageError, OSError) as exc:
            raise StorageUnavailable(str(exc)) from exc
    except DomainError as exc:
        refusal = domain_error_response(exc)
        if exc.status_code == 413:  # the rest of the body is left unread: do not reuse the connection
            refusal["Connection"] = "close"
        return refusal
    response = HttpResponse(status=204)
    response["ETag"] = etag
    response["Location"] = request.build_absolute_uri(reverse("local-storage-post")) + incoming.policy.key
    return response


class PolicyBoundFileHandler(FileUploadHandler):
    """Streams a form's `file` straight into the storage's tmp dir while hashing it, after
    checking the policy among the fields before it (S3 also reads the form in order), and stops
    reading the moment the file passes the policy's size: memory and disk stay bounded whatever
    a client sends."""

    def __init__(self, storage: LocalStorage, fields: Callable[[], Mapping[str, Any]]) -> None:
        super().__init__()
        self.storage = storage
        self.fields = fields
        self.incoming: IncomingObject | None = None

    def new_file(self, field_name: str, *args: Any, **kwargs: Any) -> None:
        if field_name != "file" or self.incoming is not None:
            raise InvalidInput("Send one file, in a field named file, after the other fields.")
        policy = verify_post_policy({name: str(value) for name, value in self.fields().items()})
        self.incoming = self.storage.open_incoming(policy)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        assert self.incoming is not None
        self.incoming.write(raw_data)  # raises TooLarge past the policy's size, discarding the file

    def file_complete(self, file_size: int) -> None:
        return None  # the file stays with this handler, not in request.FILES

    def discard(self) -> None:
        if self.incoming is not None:
            self.incoming.discard()


def _receive_form(request: HttpRequest, storage: LocalStorage) -> IncomingObject:
    if request.content_type != "multipart/form-data":
        raise InvalidInput("Send the form as multipart/form-data.", details={"contentType": request.content_type})
    parser: MultiPartParser | None = None

    def fields_so_far() -> Mapping[str, Any]:
        # Django's parser builds the form's fields in this attribute as it reads them; the
        # handler needs the ones before the file to know the policy before the file's bytes.
        return getattr(parser, "_post", {})

    handler = PolicyBoundFileHandler(storage, fields_so_far)
    try:
        parser = MultiPartParser(request.META, request, [handler], request.encoding)  # type: ignore[arg-type]
        parser.parse()
    except MultiPartParserError as exc:
        handler.discard()
        raise InvalidInput(f"The form could not be read: {exc}") from exc
    except BaseException:
        handler.discard()
        raise
    if handler.incoming is None:
        raise InvalidInput("The form has no file field.", details={"field": "file"})
    return handler.incoming


def _receive(request: HttpRequest, token: str) -> str:
    storage = _local_storage()
    raw_length = request.META.get("CONTENT_LENGTH") or None
    content_length = None
    if raw_length is not None:
        if not (raw_length.isascii() and raw_length.isdigit()):
            raise InvalidInput("Content-Length is not a number.")
        content_length = int(raw_length)
    try:
        return storage.receive_put(
            token=token,
            body=socket_body(request) or request,
            content_length=content_length,
            content_type=request.content_type or "",
            if_none_match=request.headers.get("If-None-Match"),
        )
    except UploadNotFound:
        raise NotFound("This multipart upload no longer exists (completed or aborted).") from None
    except (StorageError, OSError) as exc:  # a full or failing disk is ours, not the client's
        raise StorageUnavailable(str(exc)) from exc


def _local_storage() -> LocalStorage:
    storage = get_storage()
    if not isinstance(storage, LocalStorage):
        raise NotFound("Local storage is not in use.")
    return storage


# --- reading: signed GET URLs (staff previews) ------------------------------------------------
GET_BLOCK_SIZE = 64 * 1024


def local_get(request: HttpRequest, token: str) -> HttpResponseBase:
    """A signed GET URL, answered as S3 answers one: the object streamed from disk, one byte
    range as a 206 (audio players seek with ranges; Django's FileResponse sends whole files
    only), HEAD with the headers alone. Errors in the API's shape: 403 for an expired or
    altered URL, 404 for an object that is not stored, 416 for a range outside it."""
    if request.method not in ("GET", "HEAD"):
        return method_not_allowed_response(request.method or "", ["GET", "HEAD"], "GET the object.")
    try:
        storage = _local_storage()
        grant = verify_get(token)
        try:
            opened = storage.open_object(key=grant.key)
        except (StorageError, OSError) as exc:
            raise StorageUnavailable(str(exc)) from exc
        if opened is None:
            raise NotFound("This object is not stored.")
    except DomainError as exc:
        return domain_error_response(exc)
    file, stored = opened
    window = None
    if request.headers.get("If-Range", stored.etag) == stored.etag:  # a changed object is sent whole
        try:
            window = byte_range(request.headers.get("Range"), stored.size)
        except RangeNotSatisfiable:
            file.close()
            refusal = JsonResponse(
                error_body(
                    "range_not_satisfiable", "The requested range is outside the object.", {"size": stored.size}
                ),
                status=416,
            )
            refusal["Content-Range"] = f"bytes */{stored.size}"
            return refusal
    response = _object_response(request, file, stored, window, grant.content_type or stored.content_type)
    response["Accept-Ranges"] = "bytes"
    response["ETag"] = stored.etag
    response["Cache-Control"] = "private"
    # Stored bytes are the uploader's: a browser opening the URL itself runs nothing of them.
    response["Content-Security-Policy"] = "sandbox; default-src 'none'"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _object_response(
    request: HttpRequest, file: BinaryIO, stored: StoredObject, window: tuple[int, int] | None, content_type: str
) -> HttpResponseBase:
    first, last = window if window is not None else (0, stored.size - 1)
    length = last - first + 1
    status = 206 if window is not None else 200
    content_type = content_type or "application/octet-stream"
    response: HttpResponseBase
    if request.method == "HEAD":
        file.close()
        response = HttpResponse(status=status, content_type=content_type)
    elif window is None:
        response = FileResponse(file, content_type=content_type)
    else:
        file.seek(first)
        response = FileResponse(ByteWindow(file, length), status=206, content_type=content_type)
    if isinstance(response, FileResponse):
        response.block_size = GET_BLOCK_SIZE
    response["Content-Length"] = str(length)
    if status == 206:
        response["Content-Range"] = f"bytes {first}-{last}/{stored.size}"
    return response


class RangeNotSatisfiable(Exception):
    pass


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The first and last byte (inclusive) of a single `Range: bytes=...` request; None to send
    the whole object: no header, several ranges or one not understood (RFC 9110 lets a server
    ignore Range). Raises RangeNotSatisfiable for a range that starts past the end."""
    if header is None or not header.startswith("bytes="):
        return None
    first, dash, last = header.removeprefix("bytes=").strip().partition("-")
    first, last = first.strip(), last.strip()
    if not dash or not all(v == "" or (v.isascii() and v.isdigit()) for v in (first, last)):
        return None
    if first == "":  # bytes=-N: the last N bytes
        if last == "" or int(last) == 0 or size == 0:
            raise RangeNotSatisfiable
        return max(0, size - int(last)), size - 1
    start, end = int(first), int(last) if last else size - 1
    if last and end < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable
    return start, min(end, size - 1)


class ByteWindow:
    """`length` bytes of an open file from where it stands, read in blocks: a range never runs
    past its end, whether Django streams it or the server's wsgi.file_wrapper does."""

    def __init__(self, file: BinaryIO, length: int) -> None:
        self.file = file
        self.remaining = length

    def read(self, size: int = -1) -> bytes:
        if self.remaining <= 0:
            return b""
        chunk = self.file.read(self.remaining if size < 0 else min(size, self.remaining))
        self.remaining -= len(chunk)
        return chunk

    def close(self) -> None:
        self.file.close()
