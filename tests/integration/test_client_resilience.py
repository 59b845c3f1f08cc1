"""The Python client's resilience claims, proved against the real portal: the client runs as a
subprocess (`python -m uploads.client upload ...`) that speaks only HTTP to pytest-django's live
server (or to S3 on a moto server), through tests/integration/http_proxy.py, which counts what
reached storage and spoils requests on purpose."""

import hashlib
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from pytest_django.live_server_helper import LiveServer

from tenants.services import api_key_create, tenant_create
from tests.helpers import object_bytes, stored_files
from tests.integration.conftest import ServerBucket
from tests.integration.http_proxy import Exchange, HttpProxy
from tests.integration.live import wait_for
from uploads.storage.local_signing import verify_put

MIB = 1024 * 1024


# --- the proxy itself --------------------------------------------------------------------------
class _Echo(BaseHTTPRequestHandler):
    """Answers every request with the Host it was sent and the MD5 of its body; notes each path in `seen`."""

    protocol_version = "HTTP/1.1"
    seen: list[str] = []

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_PUT(self) -> None:
        digest = hashlib.md5(usedforsecurity=False)
        remaining = int(self.headers["Content-Length"])
        while remaining:
            chunk = self.rfile.read(min(MIB, remaining))
            digest.update(chunk)
            remaining -= len(chunk)
        self.seen.append(self.path)
        body = f"{self.headers['Host']} {digest.hexdigest()}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_PUT


@pytest.fixture
def echo_proxy() -> Iterator[tuple[HttpProxy, list[str]]]:
    seen: list[str] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("Echo", (_Echo,), {"seen": seen}))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    proxy = HttpProxy(("127.0.0.1", server.server_address[1]))
    yield proxy, seen
    proxy.close()
    server.shutdown()
    server.server_close()


def _put(connection: http.client.HTTPConnection, path: str, body: bytes) -> tuple[int, str]:
    connection.request("PUT", path, body=body, headers={"Host": "portal.test:8000"})
    response = connection.getresponse()
    return response.status, response.read().decode()


@pytest.mark.once
def test_proxy_streams_bodies_keeps_the_connection_and_host_and_records_each_request(
    echo_proxy: tuple[HttpProxy, list[str]],
) -> None:
    proxy, _ = echo_proxy
    body = bytes(range(256)) * (20 * MIB // 256)
    connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=30)
    assert _put(connection, "/a?x=1", body) == (200, f"portal.test:8000 {hashlib.md5(body).hexdigest()}")
    first_socket = connection.sock
    assert _put(connection, "/b", b"small") == (200, f"portal.test:8000 {hashlib.md5(b'small').hexdigest()}")
    assert connection.sock is first_socket  # keep-alive
    assert [(e.method, e.path, e.length, e.status, e.fault) for e in proxy.exchanges()] == [
        ("PUT", "/a?x=1", len(body), 200, None),
        ("PUT", "/b", 5, 200, None),
    ]


@pytest.mark.once
def test_proxy_flips_one_byte_in_the_next_matching_request_only(echo_proxy: tuple[HttpProxy, list[str]]) -> None:
    proxy, _ = echo_proxy
    body = b"x" * (3 * MIB)
    spoiled = bytearray(body)
    spoiled[len(body) // 2] ^= 0xFF
    proxy.flip_byte_in(lambda e: e.path == "/target")
    connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=30)
    assert _put(connection, "/other", body)[1].endswith(hashlib.md5(body).hexdigest())
    assert _put(connection, "/target", body)[1].endswith(hashlib.md5(spoiled).hexdigest())
    assert _put(connection, "/target", body)[1].endswith(hashlib.md5(body).hexdigest())
    assert [e.fault for e in proxy.exchanges()] == [None, "flipped", None]


@pytest.mark.once
def test_proxy_fails_and_drops_at_the_rates_set_except_what_is_excluded(
    echo_proxy: tuple[HttpProxy, list[str]],
) -> None:
    proxy, seen = echo_proxy
    proxy.fail_rate(1.0, seed=1)
    proxy.exclude(lambda e: e.path == "/spared")
    connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=30)
    status, body = _put(connection, "/v1/x", b"abc")
    assert status == 503 and '"unavailable"' in body
    assert _put(connection, "/spared", b"abc")[0] == 200
    proxy.fail_rate(0.0)
    proxy.drop_rate(1.0, seed=3)
    for n in range(20):
        connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=30)
        with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
            _put(connection, f"/dropped/{n}", b"abc")
    dropped = [e for e in proxy.exchanges() if e.path.startswith("/dropped/")]
    after = [e.path for e in dropped if e.fault == "dropped-after"]
    assert {e.fault for e in dropped} == {"dropped-before", "dropped-after"}
    assert [p for p in seen if p.startswith("/dropped/")] == after  # only those reached the upstream
    assert all((e.upstream_status == 200) == (e.fault == "dropped-after") and e.status is None for e in dropped)
    assert proxy.in_flight() == 0


# --- the client against the portal -------------------------------------------------------------
REPO = Path(__file__).resolve().parents[2]
PART_SIZE = 8 * MIB
PHOTO_SIZE = 300_000
FINISHED = {"uploaded", "queued", "processing", "completed"}  # the portal took the submission
LOCAL_PUT_PREFIX = "/storage/put/"
CLIENT_TIMEOUT = 180  # seconds for one run of the client, a ceiling on a busy 2-core machine


@dataclass(frozen=True)
class StoragePut:
    """A PUT of bytes to storage, as the proxy saw it: a part of a multipart upload (`part` set)
    or a file's single PUT (`part` None)."""

    upload: str  # the multipart upload id, or the object key of a single PUT
    part: int | None


def local_storage_put(exchange: Exchange) -> StoragePut | None:
    """Decodes the local backend's signed URL with the portal's own verifier: which part it was."""
    if exchange.method != "PUT" or not exchange.path.startswith(LOCAL_PUT_PREFIX):
        return None
    claims = verify_put(urlsplit(exchange.path).path.removeprefix(LOCAL_PUT_PREFIX), exchange.length)
    return StoragePut(claims["u"], claims["n"]) if "u" in claims else StoragePut(claims["k"], None)


def s3_storage_put(exchange: Exchange) -> StoragePut | None:
    """A presigned PutObject or UploadPart URL (path style: /bucket/key?...)."""
    if exchange.method != "PUT":
        return None
    url = urlsplit(exchange.path)
    query = parse_qs(url.query)
    if "partNumber" in query:
        return StoragePut(query["uploadId"][0], int(query["partNumber"][0]))
    return StoragePut(url.path, None)


def stored_parts(proxy: HttpProxy, decode: Callable[[Exchange], StoragePut | None], since: int = 0) -> list[int]:
    """Part numbers storage answered 200 for, in the order they were sent, from exchange `since` on."""
    numbers = []
    for exchange in proxy.exchanges()[since:]:
        put = decode(exchange)
        if put is not None and put.part is not None and exchange.upstream_status == 200:
            numbers.append(put.part)
    return numbers


def single_puts(proxy: HttpProxy, decode: Callable[[Exchange], StoragePut | None]) -> list[Exchange]:
    return [e for e in proxy.exchanges() if (put := decode(e)) is not None and put.part is None]


def write_random_file(path: Path, size: int, seed: int) -> Path:
    """Written a MiB at a time: a 100 MiB file never sits in this process's memory whole."""
    rng = random.Random(seed)
    with path.open("wb") as out:
        for offset in range(0, size, MIB):
            out.write(rng.randbytes(min(MIB, size - offset)))
    return path


def sha256_of(path: Path) -> str:
    with path.open("rb") as source:
        return hashlib.file_digest(source, "sha256").hexdigest()


@dataclass(frozen=True)
class Upload:
    """One `python -m uploads.client upload ...` command, to be run (again) as a user would."""

    photo: Path
    audio: Path
    url: str
    key: str
    state_dir: Path

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "uploads.client", "upload", str(self.photo), str(self.audio),
            "--artisan", "art_1", "--language", "hi", "--url", self.url, "--key", self.key,
            "--state-dir", str(self.state_dir), "--json",
        ]  # fmt: skip

    def start(self) -> "subprocess.Popen[str]":
        return subprocess.Popen(self.command(), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def run(self) -> dict[str, Any]:
        """Runs to the end; the client must exit 0 and print its JSON summary."""
        done = subprocess.run(self.command(), cwd=REPO, capture_output=True, text=True, timeout=CLIENT_TIMEOUT)
        assert done.returncode == 0, f"{' '.join(self.command())}\nexit {done.returncode}\n{done.stdout}\n{done.stderr}"
        summary: dict[str, Any] = json.loads(done.stdout)
        return summary

    def media_ids(self) -> dict[str, str]:
        """Each file's mediaId from the client's state file (format: uploads/client/state.py)."""
        ids: dict[str, str] = {}
        for path in self.state_dir.rglob("*.json"):
            for label, entry in json.loads(path.read_text()).get("files", {}).items():
                ids[label] = entry["mediaId"]
        return ids


def kill_when(process: "subprocess.Popen[str]", condition: Callable[[], bool]) -> None:
    """SIGKILL the moment `condition` holds, as a phone's OS or the OOM killer would: no cleanup."""
    deadline = time.monotonic() + CLIENT_TIMEOUT
    while not condition():
        assert process.poll() is None, f"the client ended before it was killed:\n{process.communicate()}"
        assert time.monotonic() < deadline, "timed out waiting for the moment to kill the client"
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL


class Portal:
    """The live server's public API, called directly (not through the proxy) to check results."""

    def __init__(self, url: str, key: str) -> None:
        self.url = url
        self.headers = {"Authorization": f"Bearer {key}"}

    def get(self, path: str, status: int = 200) -> Any:
        response = requests.get(f"{self.url}/v1{path}", headers=self.headers, timeout=30)
        assert response.status_code == status, response.text
        return response.json()


@pytest.fixture
def portal_settings(settings: Any, transactional_db: None) -> None:
    """Production's part plan: 8 MiB parts, S3's 5 MiB minimum, multipart above 16 MiB (the
    photo goes in one PUT). The live server runs in this process, so `settings` reaches it;
    `transactional_db` so its threads see the tenant and key this test commits."""
    settings.UPLOADS_DEFAULT_PART_SIZE = PART_SIZE
    settings.UPLOADS_MIN_PART_SIZE = 5 * MIB
    settings.UPLOADS_MULTIPART_THRESHOLD = 16 * MIB


@pytest.fixture
def keys(portal_settings: None) -> tuple[str, str]:
    """A client key of the tenant that uploads, and one of a second tenant."""
    tenant_a = tenant_create(tenant_id="tenant_a", name="Tenant A")
    tenant_b = tenant_create(tenant_id="tenant_b", name="Tenant B")
    return api_key_create(tenant=tenant_a)[1], api_key_create(tenant=tenant_b)[1]


@pytest.fixture
def portal(live_server: LiveServer, keys: tuple[str, str]) -> Portal:
    return Portal(str(live_server.url), keys[0])


@pytest.fixture
def portal_proxy(live_server: LiveServer) -> Iterator[HttpProxy]:
    """The proxy in front of the live server: the client's API calls and its PUTs to the local
    backend (whose URLs the portal builds from the proxy's Host) all cross it."""
    proxy = HttpProxy(("127.0.0.1", urlsplit(str(live_server.url)).port or 80))
    yield proxy
    proxy.close()


@pytest.fixture
def s3_proxy(bucket: ServerBucket, monkeypatch: pytest.MonkeyPatch) -> Iterator[HttpProxy]:
    """The proxy in front of the moto server: the portal's boto3 client presigns URLs for it (so
    the client's PUTs cross it) and makes its own S3 calls through it."""
    url = urlsplit(bucket.endpoint)
    proxy = HttpProxy((url.hostname or "127.0.0.1", url.port or 80))
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy.url)
    yield proxy
    proxy.close()


def media_files(tmp_path: Path, audio_size: int) -> tuple[Path, Path]:
    photo = write_random_file(tmp_path / "photo.jpg", PHOTO_SIZE, seed=1)
    return photo, write_random_file(tmp_path / "audio.wav", audio_size, seed=2)


def assert_resumes_after_sigkill(
    upload: Upload,
    proxy: HttpProxy,
    decode: Callable[[Exchange], StoragePut | None],
    portal: Portal,
    read_object: Callable[[str], bytes],
) -> str:
    """Kill the client once 4 parts are stored; rerun it: it sends exactly the parts storage
    lacked, each once, and the object is the file. Returns the audio's mediaId."""
    kill_when(upload.start(), lambda: len(stored_parts(proxy, decode)) >= 4)
    wait_for(lambda: proxy.in_flight() == 0, timeout=30, what="the killed client's requests to end")
    audio_id = upload.media_ids()["audio"]
    progress = portal.get(f"/catalog/uploads/{audio_id}")
    held = sorted(part["partNumber"] for part in progress["completedParts"])
    pending = progress["pendingParts"]
    assert held == sorted(stored_parts(proxy, decode))  # storage holds what it answered 200 for
    assert pending, "the client finished before it was killed: nothing left to resume"
    assert sorted(held + pending) == list(range(1, progress["numParts"] + 1))

    mark = len(proxy.exchanges())
    summary = upload.run()

    assert sorted(stored_parts(proxy, decode, since=mark)) == pending  # each missing part once, nothing else
    audio = summary["files"]["audio"]
    assert audio["mediaId"] == audio_id
    assert (audio["partsTotal"], audio["partsSent"], audio["partsResumed"]) == (
        progress["numParts"],
        len(pending),
        len(held),
    )
    assert [e.upstream_status for e in single_puts(proxy, decode)].count(200) == 1  # the photo, once
    for label, path in (("photo", upload.photo), ("audio", upload.audio)):
        stored = read_object(summary["files"][label]["key"])
        assert hashlib.sha256(stored).hexdigest() == sha256_of(path), label
    assert portal.get(f"/catalog/status/{summary['trackingId']}")["stage"] in FINISHED
    return audio_id


@pytest.mark.slow
@pytest.mark.once
def test_client_killed_mid_upload_resends_only_the_parts_local_storage_lacks(
    tmp_path: Path, portal: Portal, portal_proxy: HttpProxy, keys: tuple[str, str]
) -> None:
    photo, audio = media_files(tmp_path, 100 * MIB)
    upload = Upload(photo, audio, portal_proxy.url, keys[0], tmp_path / "state")
    audio_id = assert_resumes_after_sigkill(upload, portal_proxy, local_storage_put, portal, object_bytes)
    Portal(portal.url, keys[1]).get(f"/catalog/uploads/{audio_id}", status=404)  # the other tenant sees nothing


@pytest.mark.slow
@pytest.mark.once
def test_client_killed_mid_upload_resends_only_the_parts_s3_lacks(
    tmp_path: Path, portal: Portal, s3_proxy: HttpProxy, bucket: ServerBucket, keys: tuple[str, str]
) -> None:
    photo, audio = media_files(tmp_path, 100 * MIB)
    upload = Upload(photo, audio, portal.url, keys[0], tmp_path / "state")
    assert_resumes_after_sigkill(upload, s3_proxy, s3_storage_put, portal, bucket.object_bytes)


@pytest.mark.slow
@pytest.mark.once
def test_client_resends_a_part_and_a_photo_whose_bytes_storage_got_wrong(
    tmp_path: Path, portal: Portal, portal_proxy: HttpProxy, keys: tuple[str, str]
) -> None:
    photo, audio = media_files(tmp_path, 40 * MIB)
    portal_proxy.flip_byte_in(lambda e: (put := local_storage_put(e)) is not None and put.part == 2)
    portal_proxy.flip_byte_in(lambda e: (put := local_storage_put(e)) is not None and put.part is None)

    summary = Upload(photo, audio, portal_proxy.url, keys[0], tmp_path / "state").run()

    sent = [local_storage_put(e) for e in portal_proxy.exchanges() if e.upstream_status == 200]
    parts = sorted(put.part for put in sent if put is not None and put.part is not None)
    assert parts == [1, 2, 2, 3, 4, 5]  # part 2 twice: the spoiled copy and the re-send
    photo_puts = single_puts(portal_proxy, local_storage_put)
    # The spoiled single PUT is not sent again to its create-only URL (a certain 412): its upload
    # is aborted and the photo goes once more, as a new upload of the same submission.
    assert [(e.fault, e.upstream_status) for e in photo_puts] == [("flipped", 200), (None, 200)]
    assert summary["files"]["audio"]["partsSent"] == 5
    assert object_bytes(summary["files"]["audio"]["key"]) == audio.read_bytes()
    assert object_bytes(summary["files"]["photo"]["key"]) == photo.read_bytes()
    # The spoiled photo, which its URL could not overwrite (If-None-Match: *), did not linger.
    keys_stored = sorted(f.removeprefix("objects/") for f in stored_files() if f.startswith("objects/"))
    assert keys_stored == sorted(summary["files"][label]["key"] for label in ("photo", "audio"))
    assert portal.get(f"/catalog/status/{summary['trackingId']}")["stage"] in FINISHED


@pytest.mark.slow
@pytest.mark.once
def test_client_finishes_correctly_through_a_proxy_that_fails_and_drops_requests(
    tmp_path: Path, portal: Portal, portal_proxy: HttpProxy, keys: tuple[str, str]
) -> None:
    photo, audio = media_files(tmp_path, 40 * MIB)
    # The draws are seeded, so the kinds of fault met do not depend on luck: these seeds fail the
    # 3rd and 4th requests, drop the 5th before it is forwarded and the 12th after (and go on).
    portal_proxy.fail_rate(0.15, seed=2)
    portal_proxy.drop_rate(0.10, seed=40)

    summary = Upload(photo, audio, portal_proxy.url, keys[0], tmp_path / "state").run()

    faults = Counter(e.fault for e in portal_proxy.exchanges())
    assert faults["failed"] >= 2 and faults["dropped-before"] >= 1 and faults["dropped-after"] >= 1, faults
    assert object_bytes(summary["files"]["audio"]["key"]) == audio.read_bytes()
    assert object_bytes(summary["files"]["photo"]["key"]) == photo.read_bytes()
    assert portal.get(f"/catalog/status/{summary['trackingId']}")["stage"] in FINISHED
