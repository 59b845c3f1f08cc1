"""What an upload reports: its outcome, and its progress while it runs."""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class UploadResult:
    media_id: str
    tracking_id: str
    key: str
    size: int
    etag: str
    parts_total: int
    parts_sent: int  # PUTs that storage confirmed in this run (a part sent twice counts twice)
    parts_resumed: int  # parts storage already held, from an earlier run


@dataclass(frozen=True)
class FileProgress:
    """Bytes of one file at storage, by what the client sent or found there. `phase`:
    checking (asking storage, re-reading resumed parts), sending, verifying, done."""

    label: str
    path: Path
    done: int
    total: int
    phase: str


ProgressCallback = Callable[[FileProgress], None]
