"""What the transfer's workers share for one multipart upload: part URLs signed in batches
just before use, and the progress notes sent to the portal off the workers' path."""

import logging
import queue
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from uploads.client.errors import CatalogError
from uploads.client.http import Transport

logger = logging.getLogger("uploads.client")

SIGN_BATCH = 100  # the portal's limit per call
URL_MARGIN_SECONDS = 60  # a URL this close to expiring is re-signed before use, not tried


@dataclass(frozen=True)
class SignedUrl:
    url: str
    headers: dict[str, str]
    expires_at: float

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> "SignedUrl":
        expires = datetime.fromisoformat(str(data["expiresAt"]).replace("Z", "+00:00")).timestamp()
        return cls(url=str(data["url"]), headers=dict(data.get("headers") or {}), expires_at=expires)

    @property
    def fresh(self) -> bool:
        return self.expires_at - time.time() > URL_MARGIN_SECONDS


class PartSigner:
    """URLs for pending parts, signed in batches of up to 100 as the workers reach them, so no
    URL is minted long before its use and none is used after it expires."""

    def __init__(self, transport: Transport, media_id: str, order: list[int], urls: dict[int, SignedUrl]) -> None:
        self._transport = transport
        self._media_id = media_id
        self._order = order
        self._position = {n: i for i, n in enumerate(order)}
        self._urls = dict(urls)
        self._lock = threading.Lock()

    def url_for(self, part_number: int) -> SignedUrl:
        with self._lock:
            url = self._urls.get(part_number)
            if url is None or not url.fresh:
                self._sign_from(part_number)
                url = self._urls[part_number]
            return url

    def forget(self, part_number: int) -> None:
        with self._lock:
            self._urls.pop(part_number, None)

    def _sign_from(self, part_number: int) -> None:
        start = self._position.get(part_number, 0)
        batch = [part_number]
        for n in self._order[start + 1 :]:
            if len(batch) == SIGN_BATCH:
                break
            if (url := self._urls.get(n)) is None or not url.fresh:
                batch.append(n)
        signed = self._transport.api("POST", f"/catalog/uploads/{self._media_id}/parts", {"partNumbers": batch})
        for part in signed["parts"]:
            self._urls[int(part["partNumber"])] = SignedUrl.from_api(part)


class ProgressNotes:
    """The portal's progress notes (`PUT …/parts/{n}`: what staff and the status endpoint show
    while bytes move), sent one at a time by a thread of their own, so no worker waits for one
    before its next part: waiting cost a 256 MiB upload about a tenth of its speed. Storage, not
    a note, decides completion, so a lost note costs nothing and is not retried."""

    FLUSH_SECONDS = 10.0  # at the end, notes still queued get this long before they are dropped

    def __init__(self, transport: Transport, media_id: str) -> None:
        self._transport = transport
        self._media_id = media_id
        self._queue: queue.SimpleQueue[tuple[int, str, int] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._send, daemon=True)
        self._thread.start()

    def add(self, part_number: int, md5: str, size: int) -> None:
        self._queue.put((part_number, md5, size))

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(self.FLUSH_SECONDS)

    def _send(self) -> None:
        while (note := self._queue.get()) is not None:
            part_number, md5, size = note
            try:
                self._transport.api(
                    "PUT",
                    f"/catalog/uploads/{self._media_id}/parts/{part_number}",
                    {"etag": f'"{md5}"', "size": size},
                    retry=False,
                )
            except CatalogError as exc:
                logger.debug("progress note for part %s not recorded: %s", part_number, exc)
