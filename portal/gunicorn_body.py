"""A request body of known length read straight from gunicorn's socket into the caller's buffer.

Why: a part PUT hashes and writes every byte it receives, and on a 2-core machine the
portal's data plane is CPU-bound. Read through WSGI, each MiB of a body is received into a new
bytes object, then copied through BytesIO buffers by gunicorn's SocketUnreader, LengthReader
and Body (write, getvalue, slices), about 0.5 CPU-seconds per 512 MiB, a quarter of all the
server's work. Here the bytes go from the socket into one reusable buffer (`recv_into`) and
from there to the hash and the file, with no copy in between.

This reaches into gunicorn's reader objects, which are not a public API. Hence:
  - only the exact classes this was written against are recognised (gunicorn 27's Body over a
    LengthReader over a SocketUnreader, the plain HTTP/1.1 path of the sync and gthread
    workers), with the attributes it uses; anything else (another server, Django's test
    client, a chunked body, HTTP/2, a gunicorn whose internals moved) gets None and the caller
    reads through `request.read()` as before;
  - nothing of the body may have been read yet (gunicorn's and Django's readers both untouched);
  - gunicorn's own state stays what its reader would leave: LengthReader.length counts what is
    still unread, bytes it had read ahead stay in its buffer beyond the body (a pipelined next
    request), and Body.failed is set when the socket fails or the peer stops early, so the
    worker closes the connection instead of parsing the next request mid-body. A keep-alive
    connection is then served exactly as after `Body.read()`.
Bytes past Content-Length are the next request on the connection, never this body's: as with
gunicorn's own reader, a body "longer than its Content-Length" cannot be seen here."""

from typing import Any

from django.http import HttpRequest

try:
    from gunicorn.http.body import Body, LengthReader  # type: ignore[import-untyped]
    from gunicorn.http.unreader import SocketUnreader  # type: ignore[import-untyped]
except ImportError:  # gunicorn is the production server, not a dependency of the code
    Body = LengthReader = SocketUnreader = None


class SocketBody:
    """The rest of one request's body, `fill`ed into caller buffers (see
    uploads.storage.request_body.body_blocks); 0 once Content-Length bytes were taken or the
    peer closed early."""

    def __init__(self, body: Any, reader: Any, unreader: Any) -> None:
        self._body = body
        self._reader = reader
        self._unreader = unreader
        self._recv_into = unreader.sock.recv_into

    def fill(self, buffer: memoryview, /) -> int:
        wanted = min(len(buffer), self._reader.length)
        if wanted <= 0:
            return 0
        try:
            # What gunicorn read past the headers comes first. It may run past this body (a
            # pipelined request): that surplus goes back for gunicorn's parser.
            held = self._unreader.take_buffered()
            if held:
                count = min(len(held), wanted)
                buffer[:count] = memoryview(held)[:count]
                if count < len(held):
                    self._unreader.unread(held[count:])
            else:
                count = self._recv_into(buffer, wanted)
        except BaseException:
            self._body.failed = True  # where the next request starts is unknown: close
            raise
        if count == 0:
            self._body.failed = True  # the peer closed before Content-Length bytes
        self._reader.length -= count
        return count


def socket_body(request: HttpRequest) -> SocketBody | None:
    """The request's body as a SocketBody when it can be read from gunicorn's socket (see the
    module's docstring), else None: read it with `request.read()`."""
    if Body is None:
        return None
    body = request.META.get("wsgi.input")
    # Exact types: a subclass may read differently.
    if type(body) is not Body or type(body.reader) is not LengthReader:
        return None
    reader, unreader = body.reader, body.reader.unreader
    if type(unreader) is not SocketUnreader:
        return None
    # Not in every gunicorn, and both needed (see SocketBody.fill): without them, read as before.
    if not hasattr(unreader, "take_buffered") or not hasattr(body, "failed"):
        return None
    # Untouched: its reader still owes the whole Content-Length (Django reads only through Body,
    # and Body only through its reader).
    if str(reader.length) != request.META.get("CONTENT_LENGTH"):
        return None
    return SocketBody(body, reader, unreader)
