"""An HTTP reverse proxy for tests that must see and spoil a client's traffic request by request:
a flipped byte in a body, a 503 storage never sent, a connection cut before the request reached
the server or after the server acted on it (the answer lost). Unlike live.FaultyProxy (a TCP
pipe) it understands HTTP, so it can count what reached the server and fault one request of a
keep-alive connection. Bodies stream through in 1 MiB chunks: a 100 MiB upload never sits in
memory. The client's Host header is passed on, so URLs the upstream builds from it (the local
backend's signed URLs) point back at the proxy."""

import http.client
import random
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import cast

CHUNK = 1024 * 1024
# Per connection, never forwarded (RFC 9110 7.6.1); the proxy frames bodies itself.
# Expect: 100-continue is answered to the client by BaseHTTPRequestHandler already.
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "expect"}
S3_UNAVAILABLE = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>ServiceUnavailable</Code>'
    b"<Message>Injected by the test proxy.</Message></Error>"
)
API_UNAVAILABLE = b'{"error": {"code": "unavailable", "message": "Injected by the test proxy.", "details": {}}}'


@dataclass
class Exchange:
    """One request as the proxy saw it, filled in as it goes. `status`: what the client was
    answered (None: nothing); `upstream_status`: what the upstream answered (None: it never got
    the whole request). `fault`: what the proxy did: "flipped", "failed" (a 503 of its own, not forwarded),
    "dropped-before" (not forwarded, no answer), "dropped-after" (forwarded and answered, the
    answer not passed on), "broken" (the client or the upstream went away mid-exchange)."""

    method: str
    path: str  # path and query, as the client sent them
    length: int  # the request's Content-Length
    status: int | None = None
    upstream_status: int | None = None
    fault: str | None = None


Matcher = Callable[[Exchange], bool]


@dataclass
class _Flip:
    predicate: Matcher
    remaining: int


class HttpProxy:
    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self._lock = threading.Lock()
        self._exchanges: list[Exchange] = []
        self._flips: list[_Flip] = []
        self._fail: tuple[float, random.Random] = (0.0, random.Random(0))
        self._drop: tuple[float, random.Random] = (0.0, random.Random(0))
        self._excluded: list[Matcher] = []
        self._in_flight = 0
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.proxy = self
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- what the test reads ---------------------------------------------------------------
    def exchanges(self) -> list[Exchange]:
        with self._lock:
            return list(self._exchanges)

    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    # --- fault knobs, settable while traffic flows ---------------------------------------------
    def flip_byte_in(self, predicate: Matcher, count: int = 1) -> None:
        """The next `count` requests matching `predicate` have one byte of their body inverted
        (the middle one), with their Content-Length unchanged: corruption TCP's checksum missed."""
        with self._lock:
            self._flips.append(_Flip(predicate, count))

    def fail_rate(self, p: float, seed: int = 0) -> None:
        with self._lock:
            self._fail = (p, random.Random(seed))

    def drop_rate(self, p: float, seed: int = 0) -> None:
        with self._lock:
            self._drop = (p, random.Random(seed))

    def exclude(self, predicate: Matcher) -> None:
        """Requests matching `predicate` are never failed or dropped (flips have their own predicate)."""
        with self._lock:
            self._excluded.append(predicate)

    def _decide(self, exchange: Exchange) -> int | None:
        """Records the request and what happens to it; returns where in its body a byte is flipped."""
        with self._lock:
            self._exchanges.append(exchange)
            self._in_flight += 1
            exchange.fault, flip_at = self._fault_for(exchange)
            return flip_at

    def _fault_for(self, exchange: Exchange) -> tuple[str | None, int | None]:
        for flip in self._flips:
            if flip.remaining > 0 and exchange.length > 0 and flip.predicate(exchange):
                flip.remaining -= 1
                return "flipped", exchange.length // 2
        if any(predicate(exchange) for predicate in self._excluded):
            return None, None
        if self._fail[1].random() < self._fail[0]:
            return "failed", None
        if self._drop[1].random() < self._drop[0]:
            return ("dropped-before" if self._drop[1].random() < 0.5 else "dropped-after"), None
        return None, None

    def _note(self, exchange: Exchange, *, done: bool = False, **outcome: int | str | None) -> None:
        """Sets what is known of an exchange as soon as it is known (a test polling the record must
        not lag behind the client); `done`: the proxy is finished with it."""
        with self._lock:
            for name, value in outcome.items():
                setattr(exchange, name, value)
            self._in_flight -= done


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    proxy: HttpProxy

    def handle_error(self, request: object, client_address: object) -> None:
        """A client killed or cut between requests is what these tests do on purpose: no traceback."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive towards the client
    timeout = 120  # an idle keep-alive connection's thread ends eventually

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _forward(self) -> None:
        proxy = cast(_Server, self.server).proxy
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.send_error(501, "The test proxy takes bodies with a Content-Length only")
            return
        exchange = Exchange(self.command, self.path, int(self.headers.get("Content-Length") or 0))
        flip_at = proxy._decide(exchange)
        fault = exchange.fault
        try:
            if fault in ("failed", "dropped-before"):
                self._drain(exchange.length)
                if fault == "failed":
                    proxy._note(exchange, status=503)
                    self._answer_unavailable()
                else:
                    self.close_connection = True
                proxy._note(exchange, done=True)
                return
            upstream = http.client.HTTPConnection(*proxy.upstream, timeout=120)
            try:
                response = self._send_upstream(upstream, exchange.length, flip_at)
                if fault == "dropped-after":
                    proxy._note(exchange, upstream_status=response.status)
                    response.read()
                    self.close_connection = True
                else:
                    proxy._note(exchange, upstream_status=response.status, status=response.status)
                    self._relay(response)
            finally:
                upstream.close()
            proxy._note(exchange, done=True)
        except (OSError, http.client.HTTPException):
            self.close_connection = True
            proxy._note(exchange, done=True, status=None, fault="broken")

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _forward

    def _drain(self, length: int) -> None:
        while length > 0:
            chunk = self.rfile.read(min(CHUNK, length))
            if not chunk:
                raise ConnectionError("the client closed the connection mid-body")
            length -= len(chunk)

    def _send_upstream(
        self, upstream: http.client.HTTPConnection, length: int, flip_at: int | None
    ) -> http.client.HTTPResponse:
        upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for name, value in self.headers.items():
            if name.lower() not in HOP_BY_HOP:
                upstream.putheader(name, value)
        upstream.endheaders()
        sent = 0
        while sent < length:
            chunk = self.rfile.read(min(CHUNK, length - sent))
            if not chunk:  # the client died mid-body: the upstream gets a short body, as it would
                raise ConnectionError("the client closed the connection mid-body")
            if flip_at is not None and sent <= flip_at < sent + len(chunk):
                spoiled = bytearray(chunk)
                spoiled[flip_at - sent] ^= 0xFF
                chunk = bytes(spoiled)
            upstream.send(chunk)
            sent += len(chunk)
        return upstream.getresponse()

    def _relay(self, response: http.client.HTTPResponse) -> None:
        self.send_response_only(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        has_body = self.command != "HEAD" and response.status not in (204, 304)
        chunked = has_body and response.getheader("Content-Length") is None
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        while has_body and (data := response.read(CHUNK)):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _answer_unavailable(self) -> None:
        api = self.path.startswith("/v1/")
        body = API_UNAVAILABLE if api else S3_UNAVAILABLE
        self.send_response_only(503, "Service Unavailable")
        self.send_header("Content-Type", "application/json" if api else "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
