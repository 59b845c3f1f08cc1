"""The library's front door: `CatalogClient` speaks the public v1 API and nothing else."""

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from uploads.client.errors import CatalogError
from uploads.client.files import content_type_of
from uploads.client.http import RetryPolicy, Transport
from uploads.client.results import ProgressCallback, UploadResult
from uploads.client.state import FileState, StateFile, UploadState, default_state_dir
from uploads.client.transfer import FileUpload

logger = logging.getLogger("uploads.client")

UPLOAD_CLOSED = "upload_closed"  # the portal's code for a file or submission that takes nothing more
STAGES = ("initiated", "uploading", "uploaded", "queued", "processing", "completed")
FINAL_STAGES = frozenset({"completed", "failed", "aborted", "expired"})


@dataclass(frozen=True)
class SubmitResult:
    tracking_id: str
    photo: UploadResult
    audio: UploadResult
    status: dict[str, Any]  # the portal's answer to the completion: {status, trackingId, message}


class CatalogClient:
    """Uploads to a catalog portal with an API key.

    `concurrency` parts of a file are sent at once over pooled connections; every call is
    retried `retries` times with exponential backoff and jitter on no answer, throttling and
    5xx; `timeout` bounds each wait for an answer (seconds). Uploads resume from state files
    under `state_dir` (default: `$CATALOG_STATE_DIR`, else ~/.local/state/catalog-uploads).
    `part_size` proposes a part size to the portal, whose plan decides."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        concurrency: int = 4,
        timeout: float = 60.0,
        retries: int = 8,
        state_dir: Path | str | None = None,
        part_size: int | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.base_url = base_url.rstrip("/")
        self.concurrency = concurrency
        self.part_size = part_size
        self.state_dir = Path(state_dir) if state_dir is not None else default_state_dir()
        self.transport = Transport(
            self.base_url, api_key, pool_size=concurrency, timeout=timeout, policy=RetryPolicy(retries=retries)
        )

    def __enter__(self) -> "CatalogClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.transport.close()

    # --- single calls -------------------------------------------------------------------------
    def initiate(
        self,
        *,
        artisan_id: str,
        content_type: str,
        file_size: int,
        tracking_id: str | None = None,
        part_size: int | None = None,
    ) -> dict[str, Any]:
        """`POST /v1/catalog/uploads`: the portal's plan for one file (a single PUT URL, or
        `partSize` and `numParts` for a multipart upload). `upload_file` does this for you."""
        body: dict[str, Any] = {"artisanId": artisan_id, "contentType": content_type, "fileSize": file_size}
        if tracking_id:
            body["trackingId"] = tracking_id
        if part_size:
            body["partSize"] = part_size
        plan: dict[str, Any] = self.transport.api("POST", "/catalog/uploads", body)
        return plan

    def complete(
        self, tracking_id: str, photo_key: str, audio_key: str, language: str, priority: str = "normal"
    ) -> dict[str, Any]:
        """Hands the submission to processing; safe to repeat."""
        body = {
            "trackingId": tracking_id,
            "photoKey": photo_key,
            "audioKey": audio_key,
            "language": language,
            "priority": priority,
        }
        answer: dict[str, Any] = self.transport.api("POST", "/catalog/upload/complete", body)
        return answer

    def status(self, tracking_id: str) -> dict[str, Any]:
        answer: dict[str, Any] = self.transport.api("GET", f"/catalog/status/{quote(tracking_id, safe='')}")
        return answer

    def progress(self, media_id: str) -> dict[str, Any]:
        """Storage's own account of one upload: completed parts, pending parts, bytes."""
        answer: dict[str, Any] = self.transport.api("GET", f"/catalog/uploads/{quote(media_id, safe='')}")
        return answer

    def abort(self, media_id: str) -> dict[str, Any]:
        """Aborts an unfinished upload and frees its storage; safe to repeat."""
        answer: dict[str, Any] = self.transport.api("DELETE", f"/catalog/uploads/{quote(media_id, safe='')}")
        return answer

    def wait(
        self, tracking_id: str, until: Iterable[str] = ("queued",), timeout: float = 600.0, interval: float = 2.0
    ) -> dict[str, Any]:
        """Polls the status until the stage reaches (or passes) one of `until`, or is final
        (failed, aborted, expired); returns the last status. CatalogError `timeout` otherwise."""
        targets = set(until)
        rank = {stage: i for i, stage in enumerate(STAGES)}
        floor = min((rank[s] for s in targets if s in rank), default=len(STAGES))
        deadline = time.monotonic() + timeout
        while True:
            status = self.status(tracking_id)
            stage = status["stage"]
            if stage in targets or stage in FINAL_STAGES or rank.get(stage, -1) >= floor:
                return status
            if time.monotonic() >= deadline:
                raise CatalogError(
                    f"{tracking_id} is still {stage} after {timeout:.0f} s.",
                    code="timeout",
                    details={"stage": stage, "until": sorted(targets)},
                )
            time.sleep(interval)

    # --- whole uploads ------------------------------------------------------------------------
    def upload_file(
        self,
        path: Path | str,
        artisan_id: str,
        tracking_id: str | None = None,
        on_progress: ProgressCallback | None = None,
        content_type: str | None = None,
        state_file: StateFile | None = None,
    ) -> UploadResult:
        """Uploads one file by the portal's plan and completes it at storage (not the
        submission: see `complete`). Rerun after any interruption to resume."""
        path = Path(path)
        state_file = state_file or StateFile.for_command(
            self.state_dir, self.base_url, artisan_id, str(path.resolve()), tracking_id or ""
        )
        state = self._load(state_file) or UploadState(
            base_url=self.base_url, artisan_id=artisan_id, tracking_id=tracking_id, paths={"file": str(path.resolve())}
        )
        result = self._upload(state, state_file, "file", path, content_type, on_progress)
        state_file.remove()
        return result

    def submit(
        self,
        photo: Path | str,
        audio: Path | str,
        artisan_id: str,
        language: str,
        priority: str = "normal",
        tracking_id: str | None = None,
        on_progress: ProgressCallback | None = None,
        state_file: StateFile | None = None,
    ) -> SubmitResult:
        """Uploads the photo and the audio into one submission and hands it to processing.
        Run again with the same arguments after any interruption: the state file says where
        it stopped and storage says what it holds, so only missing parts are sent."""
        photo, audio = Path(photo), Path(audio)
        state_file = state_file or self.state_file_for(photo, audio, artisan_id, tracking_id)
        state = self._load(state_file) or UploadState(
            base_url=self.base_url,
            artisan_id=artisan_id,
            tracking_id=tracking_id,
            language=language,
            priority=priority,
            paths={"photo": str(photo.resolve()), "audio": str(audio.resolve())},
        )
        state.language, state.priority = language, priority
        state_file.save(state)  # from now on `resume` knows this command, even before any upload exists
        try:
            photo_result = self._upload(state, state_file, "photo", photo, None, on_progress)
            audio_result = self._upload(state, state_file, "audio", audio, None, on_progress)
        except CatalogError as exc:
            if exc.code != UPLOAD_CLOSED or tracking_id or not state.files:
                raise
            # The submission an earlier run began was closed meanwhile (expired, or aborted by
            # staff): rerunning the command means a new one, not the same refusal forever.
            logger.warning("submission %s is closed (%s); starting a new one", state.tracking_id, exc.message)
            state.tracking_id, state.files = None, {}
            state_file.save(state)
            photo_result = self._upload(state, state_file, "photo", photo, None, on_progress)
            audio_result = self._upload(state, state_file, "audio", audio, None, on_progress)
        assert state.tracking_id is not None
        answer = self.complete(state.tracking_id, photo_result.key, audio_result.key, language, priority)
        state_file.remove()
        return SubmitResult(tracking_id=state.tracking_id, photo=photo_result, audio=audio_result, status=answer)

    def state_file_for(self, photo: Path, audio: Path, artisan_id: str, tracking_id: str | None) -> StateFile:
        """Where `submit` with these arguments keeps its state."""
        return StateFile.for_command(
            self.state_dir, self.base_url, artisan_id, str(photo.resolve()), str(audio.resolve()), tracking_id or ""
        )

    def _load(self, state_file: StateFile) -> UploadState | None:
        state = state_file.load()
        if state is not None and state.base_url != self.base_url:
            return None
        return state

    def _upload(
        self,
        state: UploadState,
        state_file: StateFile,
        label: str,
        path: Path,
        content_type: str | None,
        on_progress: ProgressCallback | None,
    ) -> UploadResult:
        def save(file_state: FileState) -> None:
            state.files[label] = file_state
            state.tracking_id = file_state.tracking_id
            state_file.save(state)

        upload = FileUpload(
            self.transport, label=label, path=path, concurrency=self.concurrency, on_progress=on_progress
        )
        return upload.run(
            artisan_id=state.artisan_id,
            tracking_id=state.tracking_id,
            content_type=content_type or content_type_of(path),
            part_size=self.part_size,
            saved=state.files.get(label),
            save=save,
        )
