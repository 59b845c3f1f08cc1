"""Sending one file by the portal's plan, resumably, and proving storage holds its bytes.

Storage is the authority on what it holds: a resumed upload asks the portal
(`GET /v1/catalog/uploads/{mediaId}`, storage's own ListParts) and sends only what is missing;
parts an earlier run sent are checked against the file as it is now. Every part sent is
checked against the ETag storage answers (its MD5) and sent again on a mismatch, and before
the file is completed every part storage lists is checked once more, so a wrong byte can be
stored for a moment, but never completed."""

import logging
import os
import threading
from collections import deque
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from uploads.client.errors import INTEGRITY, UNEXPECTED_RESPONSE, CatalogError
from uploads.client.files import Fingerprint, bare_etag, file_changed, md5_of_range, multipart_etag
from uploads.client.http import Transport
from uploads.client.parts import SIGN_BATCH, PartSigner, ProgressNotes, SignedUrl
from uploads.client.results import FileProgress, ProgressCallback, UploadResult
from uploads.client.sending import PartSender, Stopped, StoredOtherBytes
from uploads.client.state import FileState

logger = logging.getLogger("uploads.client")


class AlreadyStored(Exception):
    """A create-only object is at storage already (an earlier attempt's answer was lost)."""


class FileUpload:
    """One file, from a fresh or a saved state to completed at the portal."""

    def __init__(
        self,
        transport: Transport,
        *,
        label: str,
        path: Path,
        concurrency: int,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        self.transport = transport
        self.label = label
        self.path = path
        self.concurrency = max(1, concurrency)
        self.policy = transport.policy
        self.on_progress = on_progress
        self.parts_resumed = 0
        self._done = 0
        self._total = 0
        self._lock = threading.Lock()
        self.sender = PartSender(transport, path, self._advance)
        self._plan: dict[str, Any] = {}
        self._foreign = False

    # --- the whole file ---------------------------------------------------------------------
    def run(
        self,
        *,
        artisan_id: str,
        tracking_id: str | None,
        content_type: str,
        part_size: int | None,
        saved: FileState | None,
        save: Callable[[FileState], None],
    ) -> UploadResult:
        """`save` is called with the file's state as soon as its upload exists, so a run killed
        from then on resumes it."""
        fingerprint = Fingerprint.of(self.path)
        self._total = fingerprint.size
        fd = os.open(self.path, os.O_RDONLY)
        try:
            state = self._usable(saved, fingerprint)
            for _ in range(self.policy.retries + 1):
                if state is None:
                    state = self._initiate(artisan_id, tracking_id, content_type, part_size, fingerprint)
                    save(state)
                    result = self._send_new(state, fd)
                else:
                    result = self._resume(state, fd)
                if result is not None:
                    state.uploaded = True
                    save(state)
                    self._report("done")
                    return result
                # Storage kept other bytes in a create-only object, or the upload is gone: a new
                # upload in the same submission.
                # An upload this key cannot see says nothing about the submission: the caller's.
                tracking_id = tracking_id if self._foreign else tracking_id or state.tracking_id
                state = None
                with self._lock:
                    self._done = 0
            raise CatalogError(
                f"Storage did not keep the bytes of {self.path} after {self.policy.retries + 1} attempts.",
                code=INTEGRITY,
                details={"path": str(self.path), "mismatches": self.sender.mismatches},
            )
        finally:
            os.close(fd)

    def _usable(self, saved: FileState | None, fingerprint: Fingerprint) -> FileState | None:
        if saved is None:
            return None
        if (saved.size, saved.mtime_ns) == (fingerprint.size, fingerprint.mtime_ns):
            return saved
        logger.info("%s changed since its upload %s began; starting over", self.path, saved.media_id)
        self._abort_quietly(saved.media_id)
        return None

    def _initiate(
        self,
        artisan_id: str,
        tracking_id: str | None,
        content_type: str,
        part_size: int | None,
        fingerprint: Fingerprint,
    ) -> FileState:
        body: dict[str, Any] = {"artisanId": artisan_id, "contentType": content_type, "fileSize": fingerprint.size}
        if tracking_id:
            body["trackingId"] = tracking_id
        if part_size and fingerprint.size > part_size:  # a smaller file is one PUT, as the portal plans it
            body["partSize"] = part_size
        plan = self.transport.api("POST", "/catalog/uploads", body)
        self._plan = plan
        return FileState(
            path=str(self.path),
            size=fingerprint.size,
            mtime_ns=fingerprint.mtime_ns,
            content_type=content_type,
            media_id=str(plan["mediaId"]),
            tracking_id=str(plan["trackingId"]),
            key=str(plan["key"]),
            strategy=str(plan["strategy"]),
            part_size=plan.get("partSize"),
            num_parts=plan.get("numParts"),
        )

    def _send_new(self, state: FileState, fd: int) -> UploadResult | None:
        if state.strategy == "multipart":
            assert state.num_parts is not None
            return self._multipart(state, fd, pending=list(range(1, state.num_parts + 1)), known={}, urls={})
        return self._single(state, fd, SignedUrl.from_api({**self._plan, "url": self._plan["uploadUrl"]}))

    def _resume(self, state: FileState, fd: int) -> UploadResult | None:
        self._report("checking")
        try:
            progress = self.transport.api("GET", f"/catalog/uploads/{state.media_id}?urls={SIGN_BATCH}")
        except CatalogError as exc:
            if exc.status == 404:  # unknown to this key (removed, or another tenant's): start over
                self._foreign = True
                return None
            raise
        status = progress["status"]
        if status in ("aborted", "expired"):
            return None
        if state.strategy == "single" or progress["strategy"] == "single":
            return self._resume_single(state, fd, progress)
        state.part_size, state.num_parts = int(progress["partSize"]), int(progress["numParts"])
        known: dict[int, str] = {}
        if status == "uploaded":
            return self._complete(state, fd, known)
        for part in progress["completedParts"]:
            n, size = int(part["partNumber"]), int(part["size"])
            offset = (n - 1) * state.part_size
            md5 = md5_of_range(fd, self.path, offset, size)
            if md5 == bare_etag(part["etag"]):
                known[n] = md5
                self._advance(size)
        self.parts_resumed = len(known)
        pending = [n for n in range(1, state.num_parts + 1) if n not in known]
        urls = {int(p["partNumber"]): SignedUrl.from_api(p) for p in progress.get("pendingPartUrls", [])}
        return self._multipart(state, fd, pending=pending, known=known, urls=urls)

    # --- a single PUT -----------------------------------------------------------------------
    def _resume_single(self, state: FileState, fd: int, progress: dict[str, Any]) -> UploadResult | None:
        md5 = md5_of_range(fd, self.path, 0, state.size)
        if progress["status"] == "uploaded" or progress["completedParts"]:
            stored = progress["completedParts"][0]["etag"] if progress["completedParts"] else None
            if progress["status"] == "uploaded" or bare_etag(stored) == md5:
                self.parts_resumed = 1
                self._advance(state.size)
                return self._complete(state, fd, {1: md5})
            self.sender.mismatches += 1
            self._abort_quietly(state.media_id)  # its URL is create-only: a new upload takes the bytes
            return None
        url = SignedUrl.from_api(progress["pendingPartUrls"][0])
        return self._single(state, fd, url)

    def _single(self, state: FileState, fd: int, url: SignedUrl) -> UploadResult | None:
        self._report("sending")
        current: list[SignedUrl | None] = [url]

        def url_for() -> SignedUrl:
            if (signed := current[0]) is None or not signed.fresh:
                progress = self.transport.api("GET", f"/catalog/uploads/{state.media_id}?urls=1")
                if not progress["pendingPartUrls"]:
                    raise AlreadyStored
                signed = current[0] = SignedUrl.from_api(progress["pendingPartUrls"][0])
            return signed

        def forget() -> None:
            current[0] = None

        try:
            md5 = self.sender.put(1, fd, 0, state.size, url_for, forget, create_only=True)
        except AlreadyStored:
            md5 = None
        except StoredOtherBytes:
            self._abort_quietly(state.media_id)  # the URL is create-only: a new upload takes the bytes
            return None
        if md5 is None:
            # 412: the object exists already (an earlier attempt's answer was lost): check it.
            return self._resume(state, fd)
        return self._complete(state, fd, {1: md5})

    # --- multipart --------------------------------------------------------------------------
    def _multipart(
        self, state: FileState, fd: int, *, pending: list[int], known: dict[int, str], urls: dict[int, SignedUrl]
    ) -> UploadResult | None:
        assert state.part_size is not None and state.num_parts is not None
        for _ in range(self.policy.retries + 1):
            if pending:
                self._report("sending")
                known.update(self._send_parts(state, fd, pending, urls))
                urls = {}
            self._report("verifying")
            pending = self._not_held(state, known)
            if not pending:
                return self._complete(state, fd, known)
            logger.warning("storage does not hold parts %s of %s as sent; sending them again", pending, self.path)
        raise CatalogError(
            f"Storage did not keep the bytes of {self.path} after {self.policy.retries + 1} attempts.",
            code=INTEGRITY,
            details={"path": str(self.path), "parts": pending, "mismatches": self.sender.mismatches},
        )

    def _send_parts(self, state: FileState, fd: int, pending: list[int], urls: dict[int, SignedUrl]) -> dict[int, str]:
        signer = PartSigner(self.transport, state.media_id, pending, urls)
        notes = ProgressNotes(self.transport, state.media_id)
        remaining = deque(pending)
        sent: dict[int, str] = {}
        errors: list[BaseException] = []
        self.sender.stop.clear()

        def work() -> None:
            while not self.sender.stop.is_set():
                with self._lock:
                    if not remaining:
                        return
                    n = remaining.popleft()
                try:
                    sent[n] = self._send_part(state, fd, signer, n, notes)
                except Stopped:
                    return
                except BaseException as exc:  # handed to the main thread, which raises it
                    errors.append(exc)
                    self.sender.stop.set()
                    return

        workers = [threading.Thread(target=work, daemon=True) for _ in range(min(self.concurrency, len(pending)))]
        for worker in workers:
            worker.start()
        try:
            for worker in workers:
                while worker.is_alive():
                    worker.join(0.2)  # short waits, so Ctrl-C reaches this thread at once
        except BaseException:
            self.sender.stop.set()  # the daemon workers end with the process; storage keeps their parts
            raise
        finally:
            notes.close()
        if errors:
            raise errors[0]
        return sent

    def _send_part(self, state: FileState, fd: int, signer: PartSigner, n: int, notes: ProgressNotes) -> str:
        assert state.part_size is not None
        offset = (n - 1) * state.part_size
        size = min(state.part_size, state.size - offset)
        md5 = self.sender.put(n, fd, offset, size, partial(signer.url_for, n), partial(signer.forget, n))
        if md5 is None:  # part URLs are not create-only: storage never answers them 412
            raise CatalogError(f"Storage refused part {n} as already there.", code=UNEXPECTED_RESPONSE, status=412)
        notes.add(n, md5, size)
        return md5

    def _not_held(self, state: FileState, known: dict[int, str]) -> list[int]:
        """Storage's own account, part by part, against the MD5 of what was sent or found."""
        assert state.num_parts is not None
        progress = self.transport.api("GET", f"/catalog/uploads/{state.media_id}")
        if progress["status"] == "uploaded":
            return []
        stored = {int(p["partNumber"]): bare_etag(p["etag"]) for p in progress["completedParts"]}
        wrong = [n for n in range(1, state.num_parts + 1) if stored.get(n) != known.get(n)]
        for n in wrong:
            known.pop(n, None)
        return wrong

    # --- completing -----------------------------------------------------------------------------
    def _complete(self, state: FileState, fd: int, known: dict[int, str]) -> UploadResult:
        if Fingerprint.of(self.path) != Fingerprint(state.size, state.mtime_ns):
            raise file_changed(self.path)
        if state.strategy == "multipart":
            assert state.part_size is not None and state.num_parts is not None
            for n in range(1, state.num_parts + 1):
                if n not in known:  # completed by an earlier run: the file decides what it must be
                    offset = (n - 1) * state.part_size
                    known[n] = md5_of_range(fd, self.path, offset, min(state.part_size, state.size - offset))
            expected = multipart_etag([known[n] for n in range(1, state.num_parts + 1)])
        else:
            expected = known[1]
        self._report("verifying")
        done = self.transport.api("POST", f"/catalog/uploads/{state.media_id}/complete")
        if bare_etag(done["etag"]) != expected or int(done["size"]) != state.size:
            raise CatalogError(
                f"The portal completed {self.path} as other bytes than the file's.",
                code=INTEGRITY,
                details={"expected": expected, "etag": done["etag"], "size": done["size"]},
            )
        return UploadResult(
            media_id=state.media_id,
            tracking_id=state.tracking_id,
            key=state.key,
            size=state.size,
            etag=str(done["etag"]),  # as the portal and S3 give it, quoted
            parts_total=state.num_parts or 1,
            parts_sent=self.sender.sent,
            parts_resumed=self.parts_resumed,
        )

    # --- helpers --------------------------------------------------------------------------------
    def _abort_quietly(self, media_id: str) -> None:
        try:
            self.transport.api("DELETE", f"/catalog/uploads/{media_id}")
        except CatalogError as exc:  # the sweep frees it at its expiry anyway
            logger.info("could not abort upload %s: %s", media_id, exc)

    def _advance(self, count: int) -> None:
        with self._lock:
            self._done += count
        self._report("sending")

    def _report(self, phase: str) -> None:
        if self.on_progress is not None:
            self.on_progress(FileProgress(self.label, self.path, self._done, self._total, phase))
