"""A resumable-upload client for the property tests. It drives the portal only through the HTTP
API and keeps no state between rounds except the mediaId: every resume starts from
GET /v1/catalog/uploads/{mediaId}?urls=N, as an app that crashed and restarted would.

Interruptions are scripted by `Round`s; the client keeps a model of which parts really reached
storage, and every progress report from the portal is checked against that model."""

import hashlib
import time as real_time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rest_framework.test import APIClient

from tests.conftest import put_bytes

ARTISAN_ID = "art_resume"
CONTENT_TYPE = "audio/ogg"


@dataclass(frozen=True)
class Round:
    """One interrupted attempt at sending parts."""

    sends: tuple[int, ...]  # part numbers in the order the client PUTs them; a number twice is a repeat
    lost: frozenset[int]  # positions in `sends` whose PUT never reaches storage (the client believes it did)
    expire_after: int | None  # the URLs in hand expire once this many sends have been made


@dataclass(frozen=True)
class Scenario:
    size: int
    seed: int
    part_size: int | None  # proposed partSize: multipart; None below the threshold: a single PUT
    rounds: tuple[Round, ...]
    urls_per_resume: int  # N in GET ?urls=N


class Clock:
    """Stands in for the `time` module of uploads.storage.local, so URLs really expire."""

    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        return real_time.time() + self.offset


@dataclass
class Backend:
    """What differs between backends, as far as the client can tell."""

    name: str
    read_object: Callable[[str], bytes]
    clock: Clock | None = None  # local: URLs expire by the clock; S3 (moto checks no expiry): the client drops them
    url_lifetime: int = 0

    def expire_urls(self) -> None:
        if self.clock is not None:
            self.clock.offset += self.url_lifetime + 1


def file_bytes(size: int, seed: int) -> bytes:
    return hashlib.shake_256(seed.to_bytes(8, "big")).digest(size)


def quoted_md5(data: bytes) -> str:
    return f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'


def s3_etag(parts: list[bytes], multipart: bool) -> str:
    """S3's rule: md5 of the object for a single PUT; md5 of the parts' md5 digests, '-', count."""
    if not multipart:
        return quoted_md5(b"".join(parts))
    digests = b"".join(hashlib.md5(p, usedforsecurity=False).digest() for p in parts)
    return f'"{hashlib.md5(digests, usedforsecurity=False).hexdigest()}-{len(parts)}"'


def _json(response: Any, status: int) -> Any:
    assert response.status_code == status, (response.status_code, response.content)
    return response.json()


@dataclass
class ResumingClient:
    api: APIClient
    other_api: APIClient
    backend: Backend
    scenario: Scenario
    data: bytes = b""
    media_id: str = ""
    key: str = ""
    parts: dict[int, bytes] = field(default_factory=dict)
    stored: set[int] = field(default_factory=set)  # the model: parts storage holds

    @property
    def multipart(self) -> bool:
        return self.scenario.part_size is not None

    def run(self) -> dict[str, Any]:
        """Uploads through every scripted interruption, resumes until done, completes."""
        self.data = file_bytes(self.scenario.size, self.scenario.seed)
        urls = self._create()
        for number, round_ in enumerate(self.scenario.rounds):
            if number:
                urls = self._resume_urls()
            self._send_round(round_, urls)
            self._check_progress()
            self._check_premature_complete()
        self._finish()
        return self._complete()

    # --- steps -----------------------------------------------------------------------------
    def _create(self) -> dict[int, dict[str, Any]]:
        body: dict[str, Any] = {"artisanId": ARTISAN_ID, "contentType": CONTENT_TYPE, "fileSize": len(self.data)}
        if self.scenario.part_size is not None:
            body["partSize"] = self.scenario.part_size
        created = _json(self.api.post("/v1/catalog/uploads", body, format="json"), 201)
        self.media_id, self.key = created["mediaId"], created["key"]
        if not self.multipart:
            assert created["strategy"] == "single"
            self.parts = {1: self.data}
            return {1: {"url": created["uploadUrl"], "headers": created["headers"]}}
        part_size = self.scenario.part_size
        assert part_size is not None
        assert created["strategy"] == "multipart" and created["partSize"] == part_size
        count = created["numParts"]
        assert count == max(1, -(-len(self.data) // part_size))
        self.parts = {n: self.data[(n - 1) * part_size : n * part_size] for n in range(1, count + 1)}
        signed = _json(
            self.api.post(
                f"/v1/catalog/uploads/{self.media_id}/parts", {"partNumbers": list(self.parts)}, format="json"
            ),
            200,
        )
        assert [p["partNumber"] for p in signed["parts"]] == list(self.parts)
        assert all(p["size"] == len(self.parts[p["partNumber"]]) for p in signed["parts"])
        return {p["partNumber"]: p for p in signed["parts"]}

    def _send_round(self, round_: Round, urls: dict[int, dict[str, Any]]) -> None:
        expired = False
        for sent, number in enumerate(round_.sends):
            if round_.expire_after == sent and not expired:
                self.backend.expire_urls()
                expired = True
            if number not in urls:
                continue  # this round the client holds no URL for it
            if sent in round_.lost:
                self._record(number, etag=quoted_md5(b"never arrived"))  # a client that believes it sent it
                continue
            if expired:
                if self.backend.clock is None:
                    continue  # S3: the client drops URLs it knows to be stale and asks for fresh ones
                response = put_bytes(urls[number]["url"], self.parts[number], urls[number]["headers"])
                assert _json(response, 403)["error"]["code"] == "url_expired"
                continue
            response = put_bytes(urls[number]["url"], self.parts[number], urls[number]["headers"])
            if not self.multipart and number in self.stored:
                # A single PUT creates its object once (If-None-Match: *): the repeat is refused
                # and the first copy stands, on both backends.
                assert response.status_code == 412, (response.status_code, response.content)
                continue
            assert response.status_code == 200, (response.status_code, response.content)
            assert response.headers["ETag"] == quoted_md5(self.parts[number])
            self.stored.add(number)
            self._record(number, etag=response.headers["ETag"])
        if round_.expire_after is not None and not expired:
            self.backend.expire_urls()

    def _record(self, number: int, etag: str) -> None:
        """Bookkeeping a client may send; it must never sway what the portal believes is stored."""
        if self.multipart:
            body = {"etag": etag, "size": len(self.parts[number])}
            _json(self.api.put(f"/v1/catalog/uploads/{self.media_id}/parts/{number}", body, format="json"), 200)

    def _progress(self) -> dict[str, Any]:
        return _json(self.api.get(f"/v1/catalog/uploads/{self.media_id}?urls={self.scenario.urls_per_resume}"), 200)

    def _resume_urls(self) -> dict[int, dict[str, Any]]:
        assert self.other_api.get(f"/v1/catalog/uploads/{self.media_id}?urls=1").status_code == 404
        progress = self._progress()
        pending = progress["pendingParts"]
        urls = progress["pendingPartUrls"]
        assert [u["partNumber"] for u in urls] == pending[: self.scenario.urls_per_resume]
        assert all(u["size"] == len(self.parts[u["partNumber"]]) for u in urls)
        return {u["partNumber"]: u for u in urls}

    def _check_progress(self) -> None:
        """The portal's account, from storage, is exactly what reached storage: lost, expired and
        misreported parts are pending; repeats count once."""
        progress = _json(self.api.get(f"/v1/catalog/uploads/{self.media_id}"), 200)
        expected_pending = [n for n in self.parts if n not in self.stored]
        assert progress["status"] == "pending"
        assert progress["pendingParts"] == expected_pending
        assert progress["completedParts"] == [
            {"partNumber": n, "size": len(self.parts[n]), "etag": quoted_md5(self.parts[n])}
            for n in sorted(self.stored)
        ]
        assert progress["bytesUploaded"] == sum(len(self.parts[n]) for n in self.stored)
        assert progress["pendingPartUrls"] == []

    def _check_premature_complete(self) -> None:
        if not self.stored.issuperset(self.parts):
            error = _json(self.api.post(f"/v1/catalog/uploads/{self.media_id}/complete"), 409)["error"]
            if self.multipart:
                assert error["code"] == "parts_mismatch"
                assert error["details"]["missingParts"] == [n for n in self.parts if n not in self.stored]
            else:
                assert error["code"] == "object_missing"

    def _finish(self) -> None:
        """Resumes from the progress endpoint alone until storage holds every part."""
        for _ in range(len(self.parts) + 1):
            urls = self._resume_urls()
            if not urls:
                break
            for number in reversed(urls):  # any order will do
                response = put_bytes(urls[number]["url"], self.parts[number], urls[number]["headers"])
                assert response.status_code == 200, (response.status_code, response.content)
                self.stored.add(number)
                self._record(number, etag=response.headers["ETag"])
        self._check_progress()
        assert self.stored == set(self.parts)

    def _complete(self) -> dict[str, Any]:
        assert self.other_api.post(f"/v1/catalog/uploads/{self.media_id}/complete").status_code == 404
        completed = _json(self.api.post(f"/v1/catalog/uploads/{self.media_id}/complete"), 200)
        assert completed == {
            "mediaId": self.media_id,
            "key": self.key,
            "status": "uploaded",
            "size": len(self.data),
            "etag": s3_etag([self.parts[n] for n in sorted(self.parts)], self.multipart),
        }
        again = _json(self.api.post(f"/v1/catalog/uploads/{self.media_id}/complete"), 200)
        assert again == completed
        return completed
