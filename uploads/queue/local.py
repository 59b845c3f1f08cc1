"""The embedded queue: one JSON object per line in DATA_DIR/queue/<name>.jsonl, appended under
an exclusive lock and fsynced, so a developer can read (and consume) exactly what SQS would get."""

import fcntl
import json
import os
import secrets
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from portal.private_files import make_private_dirs, open_private
from uploads.queue.base import PublishError, QueueMessage, SendFailure


class LocalQueue:
    def __init__(self, path: Path) -> None:
        self.path = path

    def publish_batch(self, messages: Sequence[QueueMessage]) -> dict[int, SendFailure]:
        lines = "".join(
            json.dumps(
                {
                    "messageId": secrets.token_hex(16),
                    "body": message.body,
                    "attributes": message.attributes,
                    "groupId": message.group_id or None,
                    "deduplicationId": message.deduplication_id or None,
                },
                sort_keys=True,
            )
            + "\n"
            for message in messages
        )
        try:
            make_private_dirs(self.path.parent)  # 0700/0600: messages carry tenants' data
            with os.fdopen(
                open_private(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND), "a", encoding="utf-8"
            ) as out:
                fcntl.flock(out, fcntl.LOCK_EX)
                out.write(lines)
                out.flush()
                os.fsync(out.fileno())
        except OSError as exc:
            raise PublishError(str(exc)) from exc
        return {}

    def messages(self) -> Iterator[dict[str, Any]]:
        try:
            with open(self.path, encoding="utf-8") as lines:
                for line in lines:
                    if line.strip():
                        yield json.loads(line)
        except FileNotFoundError:
            return

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)

    def ping(self) -> None:
        """Raises unless a file can be created (and removed) beside the queue's file."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        probe = self.path.parent / f".ping-{os.getpid()}-{secrets.token_hex(4)}"
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        probe.unlink()
