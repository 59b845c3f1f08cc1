"""The small JSON file that lets the same command, run again after Ctrl-C, a kill or a
reboot, carry on where it stopped: which submission, which upload per file, and the file's
size and mtime when its upload began. It holds no key and no URL (URLs expire; the portal
signs fresh ones on resume), and it is replaced atomically, so a kill never leaves half of one.

Format (version 1):
    {"version": 1, "baseUrl", "artisanId", "trackingId", "language", "priority", "updatedAt",
     "paths": {"photo": "...", "audio": "..."},
     "files": {"photo": {"path", "size", "mtimeNs", "contentType", "mediaId", "key",
                         "strategy", "partSize", "numParts", "uploaded"}, "audio": {...}}}
"""

import hashlib
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1


def default_state_dir() -> Path:
    """$CATALOG_STATE_DIR, else the XDG state directory (~/.local/state/catalog-uploads)."""
    if configured := os.environ.get("CATALOG_STATE_DIR"):
        return Path(configured)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "catalog-uploads"


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.title() for word in rest)


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


@dataclass
class FileState:
    path: str
    size: int
    mtime_ns: int
    content_type: str
    media_id: str
    tracking_id: str
    key: str
    strategy: str
    part_size: int | None = None
    num_parts: int | None = None
    uploaded: bool = False


@dataclass
class UploadState:
    base_url: str
    artisan_id: str
    tracking_id: str | None = None
    language: str | None = None
    priority: str | None = None
    paths: dict[str, str] = field(default_factory=dict)  # label -> the file the command named
    files: dict[str, FileState] = field(default_factory=dict)
    updated_at: float = 0.0
    version: int = FORMAT_VERSION

    def to_json(self) -> dict[str, Any]:
        data = {_camel(k): v for k, v in asdict(self).items() if k != "files"}
        data["files"] = {label: {_camel(k): v for k, v in asdict(f).items()} for label, f in self.files.items()}
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "UploadState":
        if data.get("version") != FORMAT_VERSION:
            raise ValueError(f"unknown state file version {data.get('version')!r}")
        files = {label: FileState(**{_snake(k): v for k, v in entry.items()}) for label, entry in data["files"].items()}
        return cls(**{_snake(k): v for k, v in data.items() if k != "files"}, files=files)


class StateFile:
    """One upload's state at one path. Saves are atomic (write a temporary file beside it,
    fsync, rename) and private to the user (mode 0600)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def for_command(cls, state_dir: Path, *identity: str) -> "StateFile":
        """The same command (portal, artisan, files, tracking id) finds the same file."""
        digest = hashlib.sha256("\0".join(identity).encode()).hexdigest()[:20]
        return cls(state_dir / f"upload-{digest}.json")

    def load(self) -> UploadState | None:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        return UploadState.from_json(data)

    def save(self, state: UploadState) -> None:
        state.updated_at = time.time()
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w") as out:
                json.dump(state.to_json(), out, indent=1)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself survives a power cut
        finally:
            os.close(directory)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def unfinished(state_dir: Path) -> list[StateFile]:
    """Every saved upload in the directory, oldest first: what `resume` without a file picks up."""
    files = sorted(state_dir.glob("upload-*.json"), key=lambda p: p.stat().st_mtime) if state_dir.is_dir() else []
    return [StateFile(p) for p in files]
