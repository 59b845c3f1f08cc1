"""A part's body read straight from gunicorn's socket (portal.gunicorn_body) gives exactly the
bytes gunicorn's own reader would, and leaves gunicorn's parser where its reader would: the next
request on a keep-alive connection parses whole, and a body cut short closes the connection.
These run gunicorn's real parser and WSGI environ over a loopback connection, so a gunicorn whose
internals moved turns them red (the fast path would silently stop being taken)."""

import hashlib
import os
import socket
import struct
import threading
from collections.abc import Iterator

import pytest
from django.core.handlers.wsgi import WSGIRequest
from django.test import RequestFactory
from gunicorn.config import Config  # type: ignore[import-untyped]
from gunicorn.http.body import Body  # type: ignore[import-untyped]
from gunicorn.http.parser import RequestParser  # type: ignore[import-untyped]
from gunicorn.http.unreader import Unreader  # type: ignore[import-untyped]
from gunicorn.http.wsgi import create  # type: ignore[import-untyped]

from portal.gunicorn_body import SocketBody, socket_body
from uploads.errors import InvalidInput
from uploads.storage.files import CHUNK_SIZE
from uploads.storage.request_body import body_blocks

pytestmark = pytest.mark.once  # sockets and gunicorn's parser, no database


class Connection:
    """The client's end of a connection and gunicorn's parser on the server's end."""

    def __init__(self) -> None:
        with socket.create_server(("127.0.0.1", 0)) as listener:
            self.client = socket.create_connection(listener.getsockname())
            self.server, _ = listener.accept()
        self.server.settimeout(10)
        self.cfg = Config()
        self.parser = RequestParser(self.cfg, self.server, ("127.0.0.1", 40000))
        self.senders: list[threading.Thread] = []

    def send(self, *pieces: bytes) -> None:
        """From another thread, one piece after the other: the socket's buffers hold less than
        a large body."""

        def send_all() -> None:
            for piece in pieces:
                self.client.sendall(piece)

        sender = threading.Thread(target=send_all)
        sender.start()
        self.senders.append(sender)

    def next_request(self) -> WSGIRequest:
        message = next(self.parser)
        _, environ = create(message, self.server, ("127.0.0.1", 40000), ("127.0.0.1", 8000), self.cfg)
        return WSGIRequest(environ)

    def close(self) -> None:
        for sender in self.senders:
            sender.join(10)
        self.client.close()
        self.server.close()


@pytest.fixture
def connection() -> Iterator[Connection]:
    conn = Connection()
    yield conn
    conn.close()


def put(body: bytes, length: int | None = None) -> bytes:
    size = len(body) if length is None else length
    return b"PUT /storage/t HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size + body


def received(body: SocketBody, length: int) -> bytes:
    return b"".join(bytes(block) for block in body_blocks(body, length))


def test_body_sent_with_its_headers_is_read_whole_from_the_socket(connection: Connection) -> None:
    data = os.urandom(2 * CHUNK_SIZE + 12345)
    connection.send(put(data))  # gunicorn reads the first bytes with the headers
    request = connection.next_request()
    body = socket_body(request)
    assert isinstance(body, SocketBody)
    blocks = [hashlib.md5(block).digest() for block in body_blocks(body, len(data))]
    assert len(blocks) == 3
    assert blocks == [hashlib.md5(data[i : i + CHUNK_SIZE]).digest() for i in range(0, len(data), CHUNK_SIZE)]


def test_body_arriving_in_small_pieces_is_read_whole(connection: Connection) -> None:
    data = os.urandom(300_000)
    headers = put(b"", length=len(data))
    connection.client.sendall(headers[:-2])  # the headers, without their blank line yet
    connection.client.sendall(headers[-2:] + data[:10])
    request = connection.next_request()
    body = socket_body(request)
    assert body is not None
    connection.send(*(data[start : start + 7_000] for start in range(10, len(data), 7_000)))
    assert received(body, len(data)) == data


def test_next_request_on_the_connection_parses_after_the_body(connection: Connection) -> None:
    data = os.urandom(CHUNK_SIZE + 1)
    following = b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n"
    connection.send(put(data) + following)  # pipelined: both in gunicorn's buffer
    body = socket_body(connection.next_request())
    assert body is not None
    assert received(body, len(data)) == data
    assert connection.parser.finish_body() is True  # nothing of the body is left to drain
    after = connection.next_request()
    assert after.method == "GET" and after.path == "/after"


def test_small_body_and_the_next_request_both_in_gunicorns_buffer_stay_apart(connection: Connection) -> None:
    following = put(b"second")
    connection.client.sendall(put(b"first") + following)
    body = socket_body(connection.next_request())
    assert body is not None
    assert received(body, 5) == b"first"
    after = connection.next_request()
    assert after.read() == b"second"


def test_body_ending_early_is_invalid_and_closes_the_connection(connection: Connection) -> None:
    connection.client.sendall(put(b"x" * 1000, length=5000))
    connection.client.shutdown(socket.SHUT_WR)
    body = socket_body(connection.next_request())
    assert body is not None
    with pytest.raises(InvalidInput) as refused:
        received(body, 5000)
    assert refused.value.details == {"missingBytes": 4000}
    assert connection.parser.finish_body() is False  # gunicorn will not parse a next request


def test_connection_reset_midway_is_an_error_and_closes_the_connection(connection: Connection) -> None:
    connection.client.sendall(put(b"x" * 1000, length=5000))
    body = socket_body(connection.next_request())
    assert body is not None
    connection.client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    connection.client.close()  # with linger 0: a reset, not an orderly end
    with pytest.raises(ConnectionResetError):
        received(body, 5000)
    assert connection.parser.finish_body() is False


@pytest.mark.parametrize(("owner", "name"), [(Unreader, "take_buffered"), (Body, "failed")])
def test_gunicorn_without_what_the_fast_path_needs_is_read_as_before(
    connection: Connection, monkeypatch: pytest.MonkeyPatch, owner: type, name: str
) -> None:
    connection.client.sendall(put(b"body"))
    request = connection.next_request()
    if owner is Body:  # an instance attribute
        monkeypatch.delattr(request.META["wsgi.input"], name)
    else:
        monkeypatch.delattr(owner, name)
    assert socket_body(request) is None
    assert request.read() == b"body"


def test_body_already_partly_read_is_left_to_djangos_reader(connection: Connection) -> None:
    connection.client.sendall(put(b"0123456789"))
    request = connection.next_request()
    assert request.read(3) == b"012"
    assert socket_body(request) is None
    assert request.read() == b"3456789"


def test_chunked_body_is_left_to_djangos_reader(connection: Connection) -> None:
    connection.client.sendall(
        b"PUT /storage/t HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    )
    request = connection.next_request()
    assert socket_body(request) is None


def test_request_not_served_by_gunicorn_is_left_to_djangos_reader() -> None:
    request = RequestFactory().put("/storage/t", data=b"body", content_type="application/octet-stream")
    assert socket_body(request) is None
