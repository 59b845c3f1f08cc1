"""One range of a file PUT to a signed storage URL, retried until storage confirms the very
bytes that were read: its ETag is their MD5. What the transfer's workers share for that: the
counts of parts sent and of mismatches, and the signal that stops them between parts."""

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import requests

from uploads.client.errors import INTEGRITY, NETWORK, CatalogError
from uploads.client.files import PartReader, bare_etag
from uploads.client.http import Transport, retry_after_seconds, storage_error
from uploads.client.parts import SignedUrl

logger = logging.getLogger("uploads.client")


class Stopped(Exception):
    """Another worker failed; this one stops between parts."""


class StoredOtherBytes(Exception):
    """A create-only object was stored with other bytes than were sent."""


class PartSender:
    """Sends for one file; `advance` is told of every byte sent, and of bytes taken back when a
    PUT fails."""

    def __init__(self, transport: Transport, path: Path, advance: Callable[[int], None]) -> None:
        self.transport = transport
        self.path = path
        self.policy = transport.policy
        self.advance = advance
        self.stop = threading.Event()
        self.sent = 0  # PUTs storage confirmed (a part sent twice counts twice)
        self.mismatches = 0  # PUTs whose ETag showed other bytes than were read: sent again
        self._lock = threading.Lock()

    def put(
        self,
        part_number: int,
        fd: int,
        offset: int,
        length: int,
        url_for: Callable[[], SignedUrl],
        forget: Callable[[], None],
        *,
        create_only: bool = False,
    ) -> str | None:
        """The MD5 of the bytes storage confirmed with a matching ETag; None when a create-only
        URL found its object already there (412). A create-only URL cannot replace the wrong
        bytes it stored, so a mismatch there raises StoredOtherBytes instead of trying again."""
        resigned = 0
        attempt = 0
        while True:
            if self.stop.is_set():
                raise Stopped
            url = url_for()
            reader = PartReader(fd, self.path, offset, length, self.advance)
            retry_after = None
            try:
                response = self.transport.put(url.url, url.headers, reader)
            except requests.RequestException as exc:
                error = CatalogError(f"No answer from storage for part {part_number}: {exc}", code=NETWORK)
            else:
                if response.status_code == 200:
                    md5 = reader.hexdigest()
                    stored = bare_etag(response.headers.get("ETag"))
                    if stored == md5:
                        with self._lock:
                            self.sent += 1
                        return md5
                    with self._lock:
                        self.mismatches += 1
                    logger.warning(
                        "part %s of %s: storage's ETag %s is not the MD5 sent, %s", part_number, self.path, stored, md5
                    )
                    error = CatalogError(
                        f"Storage holds other bytes for part {part_number} than were sent.",
                        code=INTEGRITY,
                        details={"partNumber": part_number, "etag": stored, "md5": md5},
                    )
                    if create_only:
                        self.advance(-reader.sent)
                        raise StoredOtherBytes
                elif response.status_code == 412:
                    self.advance(-reader.sent)
                    return None
                elif response.status_code == 403 and resigned < self.policy.retries:
                    # Expired (a long stall, a sleeping laptop) or refused as signed: a fresh URL.
                    self.advance(-reader.sent)
                    forget()
                    resigned += 1
                    continue
                else:
                    error = storage_error(response)
                    retry_after = retry_after_seconds(response)
                    if not error.retryable:
                        self.advance(-reader.sent)
                        raise error
            self.advance(-reader.sent)
            if attempt >= self.policy.retries:
                raise error
            time.sleep(self.policy.delay(attempt, retry_after))
            attempt += 1
