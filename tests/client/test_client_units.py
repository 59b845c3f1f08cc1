"""The client's own logic, without a portal: retries and backoff over a scripted HTTP server,
part reading and hashing, S3's multipart ETag, state files, error mapping and its isolation
from Django."""

import ast
import hashlib
import json
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.integration.resume_client import s3_etag
from uploads.client import CatalogError
from uploads.client.errors import EXIT_AUTH, EXIT_INTEGRITY, EXIT_REFUSED, EXIT_UNREACHABLE, INTEGRITY
from uploads.client.files import FILE_CHANGED, PartReader, bare_etag, content_type_of, md5_of_range, multipart_etag
from uploads.client.http import RetryPolicy, Transport, retry_after_seconds
from uploads.client.state import FileState, StateFile, UploadState

pytestmark = pytest.mark.once  # no database involved: CI runs these once

ROOT = Path(__file__).resolve().parents[2]
CLIENT_DIR = ROOT / "uploads" / "client"


# --- a scripted server -----------------------------------------------------------------------
class Script:
    """Answers requests in order from a list of (status, headers, body); records what came."""

    def __init__(self, answers: list[tuple[int, dict[str, str], Any]]) -> None:
        self.answers = answers
        self.requests: list[tuple[str, str, dict[str, str]]] = []


@pytest.fixture
def scripted() -> Iterator[tuple[str, Script]]:
    script = Script([])

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            script.requests.append((self.command, self.path, dict(self.headers)))
            status, headers, body = script.answers.pop(0)
            payload = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = _answer

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", script
    server.shutdown()
    server.server_close()


def transport(base: str, retries: int = 3) -> Transport:
    return Transport(
        base, "cpk_test", pool_size=2, timeout=5, policy=RetryPolicy(retries=retries, base=0.001, cap=0.01)
    )


def error_body(code: str, status_details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": f"{code} happened", "details": status_details or {}}}


# --- retries ----------------------------------------------------------------------------------
def test_api_call_is_retried_on_5xx_and_throttling_until_it_succeeds(scripted: tuple[str, Script]) -> None:
    base, script = scripted
    script.answers += [
        (503, {}, error_body("storage_unavailable")),
        (429, {"Retry-After": "0"}, error_body("throttled")),
        (502, {}, b"<html>bad gateway</html>"),
        (200, {}, {"stage": "queued"}),
    ]
    assert transport(base).api("GET", "/catalog/status/trk_1") == {"stage": "queued"}
    assert [r[1] for r in script.requests] == ["/v1/catalog/status/trk_1"] * 4
    assert all(r[2]["Authorization"] == "Bearer cpk_test" for r in script.requests)


def test_api_call_gives_up_after_its_retries_with_the_last_error(scripted: tuple[str, Script]) -> None:
    base, script = scripted
    script.answers += [(503, {}, error_body("storage_unavailable"))] * 3
    with pytest.raises(CatalogError) as caught:
        transport(base, retries=2).api("GET", "/catalog/status/trk_1")
    assert (caught.value.code, caught.value.status, caught.value.exit_code) == (
        "storage_unavailable",
        503,
        EXIT_UNREACHABLE,
    )
    assert len(script.requests) == 3


def test_a_client_error_is_not_retried_and_keeps_the_portals_code_and_details(scripted: tuple[str, Script]) -> None:
    base, script = scripted
    script.answers += [(409, {}, error_body("quota_exceeded", {"cap": "maxOpenUploads"}))]
    with pytest.raises(CatalogError) as caught:
        transport(base).api("POST", "/catalog/uploads", {"artisanId": "a"})
    error = caught.value
    assert (error.code, error.status, error.details, error.exit_code) == (
        "quota_exceeded",
        409,
        {"cap": "maxOpenUploads"},
        EXIT_REFUSED,
    )
    assert len(script.requests) == 1


def test_no_answer_at_all_is_a_network_error_after_the_retries() -> None:
    with pytest.raises(CatalogError) as caught:
        transport("http://127.0.0.1:9", retries=1).api("GET", "/catalog/status/trk_1")  # discard port: refused
    assert (caught.value.code, caught.value.status, caught.value.exit_code) == ("network", 0, EXIT_UNREACHABLE)


def test_backoff_is_jittered_below_its_exponential_cap_and_respects_retry_after() -> None:
    policy = RetryPolicy(retries=8, base=0.5, cap=30.0)
    delays = [policy.delay(3) for _ in range(200)]
    assert all(0 <= d <= 4.0 for d in delays) and len(set(delays)) > 100
    assert all(policy.delay(20) <= 30.0 for _ in range(50))
    assert all(policy.delay(0, retry_after=7.0) >= 7.0 for _ in range(50))


def test_retry_after_is_read_as_seconds_or_as_an_http_date(scripted: tuple[str, Script]) -> None:
    base, script = scripted
    future = formatdate(time.time() + 30, usegmt=True)
    script.answers += [(429, {"Retry-After": "12"}, {}), (429, {"Retry-After": future}, {}), (429, {}, {})]
    session = transport(base).session
    seconds = [retry_after_seconds(session.get(base)) for _ in range(3)]
    assert seconds[0] == 12.0 and 25 < (seconds[1] or 0) <= 30 and seconds[2] is None


def test_error_exit_codes_tell_auth_refusal_outage_and_integrity_apart() -> None:
    assert CatalogError("x", code="unauthorized", status=401).exit_code == EXIT_AUTH
    assert CatalogError("x", code="forbidden", status=403).exit_code == EXIT_AUTH
    assert CatalogError("x", code="invalid_input", status=400).exit_code == EXIT_REFUSED
    assert CatalogError("x", code="network").exit_code == EXIT_UNREACHABLE
    assert CatalogError("x", code=INTEGRITY).exit_code == EXIT_INTEGRITY
    assert CatalogError("x", code=FILE_CHANGED).exit_code == EXIT_INTEGRITY


# --- reading and hashing ----------------------------------------------------------------------
def test_part_reader_reads_its_range_in_blocks_and_hashes_what_it_handed_out(tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    path = tmp_path / "f.wav"
    path.write_bytes(data)
    heard: list[int] = []
    fd = os.open(path, os.O_RDONLY)
    try:
        reader = PartReader(fd, path, 1000, 2 * 1024 * 1024, heard.append)
        assert len(reader) == 2 * 1024 * 1024
        chunks = iter(lambda: reader.read(1024 * 1024), b"")
        assert b"".join(chunks) == data[1000 : 1000 + 2 * 1024 * 1024]
        assert reader.hexdigest() == hashlib.md5(data[1000 : 1000 + 2 * 1024 * 1024]).hexdigest()
        assert heard == [1024 * 1024, 1024 * 1024]
        assert md5_of_range(fd, path, 5, 100) == hashlib.md5(data[5:105]).hexdigest()
    finally:
        os.close(fd)


def test_a_file_that_shrinks_while_read_is_reported_as_changed(tmp_path: Path) -> None:
    path = tmp_path / "f.wav"
    path.write_bytes(b"x" * 1000)
    fd = os.open(path, os.O_RDONLY)
    try:
        reader = PartReader(fd, path, 0, 1000)
        reader.read(400)
        os.truncate(path, 500)
        with pytest.raises(CatalogError) as caught:
            reader.read(400)
        assert caught.value.code == FILE_CHANGED
    finally:
        os.close(fd)


def test_multipart_etag_follows_s3s_rule() -> None:
    parts = [os.urandom(1000), os.urandom(1000), os.urandom(10)]
    md5s = [hashlib.md5(p).hexdigest() for p in parts]
    assert f'"{multipart_etag(md5s)}"' == s3_etag(parts, multipart=True)
    assert bare_etag('"ABCdef"') == "abcdef"


def test_content_types_are_the_portals_for_common_extensions() -> None:
    assert content_type_of(Path("a.JPG")) == "image/jpeg"
    assert content_type_of(Path("a.m4a")) == "audio/mp4"
    assert content_type_of(Path("a.opus")) == "audio/opus"
    assert content_type_of(Path("a.unknown")) == "application/octet-stream"


# --- state files ------------------------------------------------------------------------------
def state_with_one_file() -> UploadState:
    return UploadState(
        base_url="http://portal",
        artisan_id="art_1",
        tracking_id="trk_1",
        language="hi",
        paths={"photo": "/p.jpg", "audio": "/a.wav"},
        files={
            "audio": FileState(
                path="/a.wav",
                size=10,
                mtime_ns=5,
                content_type="audio/wav",
                media_id="med_1",
                tracking_id="trk_1",
                key="k",
                strategy="multipart",
                part_size=8,
                num_parts=2,
            )
        },
    )


def test_state_file_round_trips_in_camel_case_and_is_private(tmp_path: Path) -> None:
    state_file = StateFile(tmp_path / "state" / "upload-x.json")
    state_file.save(state_with_one_file())
    raw = json.loads(state_file.path.read_text())
    assert raw["trackingId"] == "trk_1" and raw["files"]["audio"]["mediaId"] == "med_1"
    assert raw["files"]["audio"]["numParts"] == 2 and "key" not in raw  # no API key is ever written
    assert stat.S_IMODE(state_file.path.stat().st_mode) == 0o600
    loaded = state_file.load()
    assert loaded is not None and loaded.files == state_with_one_file().files
    assert [p.name for p in state_file.path.parent.iterdir()] == ["upload-x.json"]  # no temporary left behind


def test_state_file_of_an_unknown_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "upload-x.json"
    path.write_text(json.dumps({"version": 99, "files": {}}))
    with pytest.raises(ValueError, match="version"):
        StateFile(path).load()


def test_the_same_command_finds_the_same_state_file_and_another_does_not(tmp_path: Path) -> None:
    one = StateFile.for_command(tmp_path, "http://portal", "art_1", "/a.jpg", "/a.wav", "")
    assert one.path == StateFile.for_command(tmp_path, "http://portal", "art_1", "/a.jpg", "/a.wav", "").path
    assert one.path != StateFile.for_command(tmp_path, "http://portal", "art_2", "/a.jpg", "/a.wav", "").path


# --- isolation and the command line -------------------------------------------------------------
def test_the_client_imports_only_the_standard_library_requests_and_tqdm() -> None:
    allowed = {"requests", "tqdm", "uploads"}
    for module in CLIENT_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for name in names:
                top = name.split(".")[0]
                assert top in sys.stdlib_module_names or top in allowed, f"{module.name} imports {name}"
                assert top != "uploads" or name.startswith("uploads.client"), f"{module.name} imports {name}"
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, uploads.client.cli\n"
            "print(sorted(m for m in sys.modules if m.startswith(('django', 'rest_framework'))))",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "[]"


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CATALOG_")}
    return subprocess.run(
        [sys.executable, "-m", "uploads.client", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**clean, **(env or {})},
    )


def test_help_teaches_commands_examples_and_exit_codes() -> None:
    shown = run_cli("--help")
    assert shown.returncode == 0
    for text in ("upload", "status", "resume", "abort", "examples:", "exit status:", "130", "CATALOG_API_KEY"):
        assert text in shown.stdout
    upload_help = run_cli("upload", "--help").stdout
    assert "--artisan" in upload_help and "--language" in upload_help and "resume" in upload_help


def test_without_url_or_key_the_cli_says_so_and_exits_2(tmp_path: Path) -> None:
    done = run_cli("status", "trk_1")
    assert done.returncode == 2 and "--url" in done.stderr


def test_an_unreachable_portal_exits_5_with_a_json_error(tmp_path: Path) -> None:
    done = run_cli("status", "trk_1", "--url", "http://127.0.0.1:9", "--key", "k", "--retries", "0", "--json")
    assert done.returncode == EXIT_UNREACHABLE
    assert json.loads(done.stdout)["error"]["code"] == "network"


def test_a_missing_file_exits_2_before_anything_is_sent(tmp_path: Path) -> None:
    done = run_cli(
        "upload",
        str(tmp_path / "none.jpg"),
        str(tmp_path / "none.wav"),
        "--artisan",
        "a",
        "--language",
        "hi",
        "--url",
        "http://127.0.0.1:9",
        "--key",
        "k",
        "--state-dir",
        str(tmp_path),
    )
    assert done.returncode == 2 and "none.jpg" in done.stderr
