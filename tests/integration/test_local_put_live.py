"""Part PUTs to the local backend under a real gunicorn, where the body is read straight from
gunicorn's socket (portal.gunicorn_body): the bytes stored are the bytes sent, with their MD5 as
ETag, whether the body came with the headers in one packet or trickled in; a body shorter than
its Content-Length is a 400 that stores nothing; the connection serves its next request after a
PUT, pipelined or not. Requests are written by hand so the tests choose how bytes reach the
server."""

import hashlib
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import pytest

from tests.integration.live_gunicorn import ROOT, accepts_connections, free_port, running_gunicorn

MIB = 1024 * 1024
PART_SIZE = 3 * MIB  # several of the storage's 1 MiB blocks
FILE_SIZE = 2 * PART_SIZE + 1_000  # a last part short enough to share a read with what follows it
pytestmark = pytest.mark.once  # a server process with its own SQLite file


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Connection:
    """One keep-alive connection; requests are bytes written as the test says."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.reader: BinaryIO = self.sock.makefile("rb")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def response(self) -> Response:
        status = int(self.reader.readline().split()[1])
        headers = {}
        while (line := self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        return Response(status, headers, self.reader.read(int(headers.get("content-length", 0))))

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


def request(method: str, url: str, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    """The request's bytes: headers and body together, so gunicorn reads part of the body with
    the headers (the fast path must take those bytes from gunicorn's buffer)."""
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@dataclass
class Upload:
    media_id: str
    parts: list[dict[str, Any]]
    directory: Path  # the storage's, for its part records

    def records(self, part_number: int) -> list[Path]:
        return list(self.directory.glob(f"{part_number:05d}.*"))


class Portal:
    def __init__(self, data: Path, port: int, key: str) -> None:
        self.data, self.port, self.key = data, port, key

    def api(self, method: str, path: str, payload: Any = None) -> Any:
        body = json.dumps(payload).encode() if payload is not None else b""
        conn = Connection(self.port)
        try:
            conn.send(
                request(method, path, body, {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"})
            )
            answer = conn.response()
        finally:
            conn.close()
        assert answer.status in (200, 201), answer.body
        return answer.json()

    def new_upload(self) -> "Upload":
        before = set(self.uploads_dir.glob("*"))
        created = self.api(
            "POST",
            "/v1/catalog/uploads",
            {"artisanId": "artisan_live", "contentType": "audio/wav", "fileSize": FILE_SIZE, "partSize": PART_SIZE},
        )
        assert created["strategy"] == "multipart" and created["numParts"] == 3
        signed = self.api("POST", f"/v1/catalog/uploads/{created['mediaId']}/parts", {"partNumbers": [1, 2, 3]})
        (directory,) = set(self.uploads_dir.glob("*")) - before
        return Upload(created["mediaId"], signed["parts"], directory)

    @property
    def uploads_dir(self) -> Path:
        return self.data / "storage" / "multipart"

    def object_bytes(self, key: str) -> bytes:
        return (self.data / "storage" / "objects" / key).read_bytes()


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    data = tmp_path_factory.mktemp("live-put") / "data"
    data.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "DJANGO_SETTINGS_MODULE"))},
        "PORTAL_DATA_DIR": str(data),
        "SECRET_KEY": secrets.token_urlsafe(40),
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "LOG_LEVEL": "WARNING",
        "API_RATE_PER_KEY": "off",
        "API_RATE_PER_TENANT": "off",
        "UPLOADS_MULTIPART_THRESHOLD": str(MIB),
        "UPLOADS_MIN_PART_SIZE": str(64 * 1024),
    }

    def manage(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=True
        )
        return done.stdout

    manage("migrate", "--no-input")
    manage("create_tenant", "tenant_live", "--name", "Live")
    key = manage("create_api_key", "tenant_live").strip().splitlines()[-1]
    port = free_port()
    with running_gunicorn(port=port, env=env, workers=1, ready=accepts_connections(port)):
        yield Portal(data, port, key)


def md5_etag(data: bytes) -> str:
    return f'"{hashlib.md5(data).hexdigest()}"'


def test_parts_sent_with_their_headers_are_stored_byte_for_byte_with_s3s_etags(portal: Portal) -> None:
    upload = portal.new_upload()
    content = os.urandom(FILE_SIZE)
    conn = Connection(portal.port)
    try:
        for part in upload.parts:
            start = (part["partNumber"] - 1) * PART_SIZE
            body = content[start : start + part["size"]]
            conn.send(request("PUT", part["url"], body, part["headers"]))
            answer = conn.response()
            assert answer.status == 200, answer.body
            assert answer.headers["etag"] == md5_etag(body)
    finally:
        conn.close()
    done = portal.api("POST", f"/v1/catalog/uploads/{upload.media_id}/complete")
    assert done["size"] == FILE_SIZE
    assert portal.object_bytes(done["key"]) == content
    digests = b"".join(hashlib.md5(content[i : i + PART_SIZE]).digest() for i in range(0, FILE_SIZE, PART_SIZE))
    assert done["etag"] == f'"{hashlib.md5(digests).hexdigest()}-3"'


def test_part_body_shorter_than_its_content_length_is_a_400_and_stores_nothing(portal: Portal) -> None:
    upload = portal.new_upload()
    part = upload.parts[0]
    whole = request("PUT", part["url"], os.urandom(part["size"]), part["headers"])
    conn = Connection(portal.port)
    try:
        conn.send(whole[: len(whole) - MIB])  # a MiB short
        conn.sock.shutdown(socket.SHUT_WR)
        answer = conn.response()
    finally:
        conn.close()
    assert answer.status == 400
    assert answer.json()["error"]["details"] == {"missingBytes": MIB}
    assert upload.records(1) == []


def test_keep_alive_connection_answers_its_next_requests_after_a_put(portal: Portal) -> None:
    parts = portal.new_upload().parts
    bodies = [os.urandom(part["size"]) for part in parts]
    conn = Connection(portal.port)
    try:
        conn.send(request("PUT", parts[0]["url"], bodies[0], parts[0]["headers"]))
        assert conn.response().headers["etag"] == md5_etag(bodies[0])
        # Then three requests pipelined behind it: the last PUT's body (1,000 bytes) and the GET
        # reach gunicorn in one read, and must be told apart.
        conn.send(
            request("PUT", parts[1]["url"], bodies[1], parts[1]["headers"])
            + request("PUT", parts[2]["url"], bodies[2], parts[2]["headers"])
            + request("GET", "/healthz")
        )
        assert conn.response().headers["etag"] == md5_etag(bodies[1])
        assert conn.response().headers["etag"] == md5_etag(bodies[2])
        assert conn.response().status == 200
    finally:
        conn.close()


def test_part_arriving_in_small_slow_pieces_is_stored_whole(portal: Portal) -> None:
    upload = portal.new_upload()
    part = upload.parts[0]
    body = os.urandom(part["size"])
    whole = request("PUT", part["url"], body, part["headers"])
    head = len(whole) - len(body)
    pieces = [whole[: head - 1], whole[head - 1 : head + 10]]  # even the headers' end comes late
    pieces += [whole[start : start + 64 * 1024] for start in range(head + 10, len(whole), 64 * 1024)]
    conn = Connection(portal.port)
    try:
        for piece in pieces:
            conn.send(piece)
            time.sleep(0.01)
        answer = conn.response()
    finally:
        conn.close()
    assert answer.status == 200
    assert answer.headers["etag"] == md5_etag(body)
    assert [path.name for path in upload.records(1)] == [f"00001.{hashlib.md5(body).hexdigest()}"]


def test_parts_sent_at_once_one_of_them_twice_are_stored_byte_for_byte(portal: Portal) -> None:
    """The server's threads write the parts into one data file side by side (straight from the
    socket's buffer to the disk where the filesystem allows it), the repeated part over itself."""
    upload = portal.new_upload()
    content = os.urandom(FILE_SIZE)
    sends = [*upload.parts, upload.parts[1]]
    answers: dict[int, list[Response]] = {}

    def send(part: dict[str, Any]) -> None:
        start = (part["partNumber"] - 1) * PART_SIZE
        conn = Connection(portal.port)
        try:
            conn.send(request("PUT", part["url"], content[start : start + part["size"]], part["headers"]))
            answers.setdefault(part["partNumber"], []).append(conn.response())
        finally:
            conn.close()

    threads = [threading.Thread(target=send, args=(part,)) for part in sends]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted((number, [a.status for a in got]) for number, got in answers.items()) == [
        (1, [200]),
        (2, [200, 200]),
        (3, [200]),
    ]
    done = portal.api("POST", f"/v1/catalog/uploads/{upload.media_id}/complete")
    assert portal.object_bytes(done["key"]) == content
