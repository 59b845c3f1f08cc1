"""The embedded storage backend: the portal signs its own short-lived PUT URLs (the tokens are
uploads.storage.local_signing's), receives the bytes itself and behaves like S3 where clients can
tell (ETags, part rules, completion).

Layout under the root:
  objects/<key>                      finished objects
  meta/<key>.json                    their size, ETag and content type (+ .lock: one writer)
  multipart/<uploadId>/              an open multipart upload (+ <uploadId>.lock beside it: one
                                     completion or abort at a time): its parts' bytes, written
                                     where the object will have them, and their records
                                     (<NNNNN>.<md5>); see uploads.storage.local_parts
  tmp/                               single PUTs, form POSTs and objects being published

Finished objects are read back through signed GET URLs too (staff previews), served by
uploads.storage_views.local_get.
"""

import json
import os
import secrets
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

from portal.private_files import make_private_dirs
from uploads.errors import AlreadyStored, InvalidInput, TooLarge, UrlInvalid
from uploads.storage.base import (
    SignedPost,
    SignedRequest,
    StorageError,
    StoredObject,
    StoredPart,
    UploadNotFound,
)
from uploads.storage.files import HashedTempFile, locked, sync_dir, write_json_atomic
from uploads.storage.local_parts import UploadGate, assemble, multipart_etag, parse_record, receive_part
from uploads.storage.local_signing import PostPolicy, sign_get, sign_parts, sign_post, sign_put, verify_put
from uploads.storage.request_body import Readable, body_blocks


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.bucket = ""

    # --- signing ---------------------------------------------------------------------------
    def object_uri(self, key: str) -> str:
        return self._object_path(key).as_uri()

    def presign_put(
        self, *, key: str, content_type: str, size: int | None, expires_in: int, max_bytes: int | None = None
    ) -> SignedRequest:
        """`size` None: any size from 1 to `max_bytes`, which the URL then carries and the
        receiving end enforces before it reads a byte (S3 has no such bound; see presign_post)."""
        if size is None and max_bytes is None:
            raise ValueError("A PUT URL without a size must carry max_bytes.")
        headers = {"Content-Type": content_type, "If-None-Match": "*"}  # as S3 signs it: create only
        claims: dict[str, Any] = {"k": key, "c": content_type, "s": size}
        if size is None:
            claims["m"] = max_bytes
        return sign_put(claims, expires_in, headers)

    def presign_parts(
        self, *, key: str, upload_id: str, parts: Sequence[tuple[int, int | None]], expires_in: int
    ) -> list[SignedRequest]:
        # size None: any part up to 5 GiB, as S3 allows a part URL signed without ContentLength.
        return sign_parts(key=key, upload_id=upload_id, parts=parts, expires_in=expires_in)

    def presign_post(self, *, key: str, content_type: str, max_bytes: int, expires_in: int) -> SignedPost:
        return sign_post(key=key, content_type=content_type, max_bytes=max_bytes, expires_in=expires_in)

    def presign_get(self, *, key: str, expires_in: int, content_type: str | None = None) -> SignedRequest:
        return sign_get(key=key, expires_in=expires_in, content_type=content_type)

    # --- receiving bytes -------------------------------------------------------------------
    def receive_put(
        self,
        *,
        token: str,
        body: Readable,
        content_length: int | None,
        content_type: str = "",
        if_none_match: str | None = None,
    ) -> str:
        """Stores the body a signed URL allows, streaming it to disk; returns its quoted ETag."""
        claims = verify_put(token, content_length)
        assert content_length is not None
        if "u" in claims:
            return self._receive_part(claims, body, content_length)
        # S3 signs these headers into a single-PUT URL; a client that drops one fails there,
        # so it fails here too, before a byte is read.
        if content_type.split(";", 1)[0].strip().lower() != claims["c"]:
            raise UrlInvalid(
                f"This URL is signed for Content-Type {claims['c']}.", details={"contentType": claims["c"]}
            )
        if if_none_match != "*":
            raise UrlInvalid("This URL is signed with If-None-Match: *; send the headers it came with.")
        return self._receive_object(claims, body, content_length)

    def _receive_part(self, claims: dict[str, Any], body: Readable, length: int) -> str:
        md5 = receive_part(self._upload_dir(claims["u"]), part_number=claims["n"], body=body, length=length)
        return f'"{md5}"'

    def _receive_object(self, claims: dict[str, Any], body: Readable, length: int) -> str:
        tmp_dir = self.root / "tmp"
        make_private_dirs(tmp_dir)
        tmp, md5 = self._stream_to_temp(body, length, tmp_dir)
        etag = f'"{md5}"'
        stored = StoredObject(size=length, etag=etag, content_type=claims["c"])
        self._publish(tmp, claims["k"], stored, create_only=True)
        return etag

    def _stream_to_temp(self, body: Readable, length: int, directory: Path) -> tuple[Path, str]:
        incoming = HashedTempFile(directory)
        try:
            for chunk in body_blocks(body, length):
                incoming.write(chunk)
            return incoming.path, incoming.finish()
        except BaseException:
            incoming.discard()
            raise

    # --- receiving a form POST ---------------------------------------------------------------
    def open_incoming(self, policy: PostPolicy) -> "IncomingObject":
        """Somewhere to stream a form's file to, bounded by its policy; publish() stores it."""
        tmp_dir = self.root / "tmp"
        make_private_dirs(tmp_dir)
        return IncomingObject(self, policy, HashedTempFile(tmp_dir))

    # --- multipart -------------------------------------------------------------------------
    def create_multipart(self, *, key: str, content_type: str) -> str:
        upload_id = secrets.token_hex(16)
        directory = self._upload_dir(upload_id)
        make_private_dirs(directory.parent)
        directory.mkdir(mode=0o700)
        write_json_atomic(directory / "upload.json", {"key": key, "contentType": content_type})
        return upload_id

    def list_parts(self, *, key: str, upload_id: str) -> list[StoredPart]:
        """One stat per part (a record is as long as its part): the listing's cost. Each is an
        fstatat of a name in the open directory, with no Path made and no path walked per
        part, which halves a listing of 10,000 parts."""
        directory = self._open_upload(key, upload_id)
        newest: dict[int, tuple[int, StoredPart]] = {}
        try:
            fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:  # completed or aborted since
            raise UploadNotFound(upload_id) from None
        try:
            with os.scandir(fd) as entries:
                for entry in entries:
                    record = parse_record(entry.name)
                    if record is None:
                        continue
                    number, md5 = record
                    try:
                        stat = entry.stat()
                    except FileNotFoundError:  # replaced by a newer copy while we listed
                        continue
                    seen = newest.get(number)
                    if seen is None or stat.st_mtime_ns >= seen[0]:
                        newest[number] = (stat.st_mtime_ns, StoredPart(number, stat.st_size, f'"{md5}"'))
        finally:
            os.close(fd)
        return [newest[n][1] for n in sorted(newest)]

    def complete_multipart(self, *, key: str, upload_id: str, parts: Sequence[StoredPart]) -> None:
        """Atomic: the object appears whole (one rename) or not at all, and the parts go only
        after it is published. While the gate is held no part is written, so the parts checked
        are the parts published."""
        directory = self._open_upload(key, upload_id)
        with locked(directory), UploadGate(directory) as gate, gate.exclusive():
            meta = json.loads((directory / "upload.json").read_text())
            tmp_dir = self.root / "tmp"
            make_private_dirs(tmp_dir)
            tmp = tmp_dir / f".tmp-{secrets.token_hex(8)}"
            try:
                size = assemble(directory, parts, tmp)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            stored = StoredObject(size=size, etag=multipart_etag(parts), content_type=meta["contentType"])
            self._publish(tmp, key, stored)
            _remove_upload(directory)

    def abort_multipart(self, *, key: str, upload_id: str) -> None:
        try:
            directory = self._open_upload(key, upload_id)
        except UploadNotFound:
            return
        with locked(directory):
            try:
                with UploadGate(directory) as gate, gate.exclusive():  # waits for a block being written
                    _remove_upload(directory)
            except UploadNotFound:
                _remove_upload(directory)  # gone meanwhile, or half removed by a crash: finish it

    # --- objects ---------------------------------------------------------------------------
    def head(self, *, key: str) -> StoredObject | None:
        try:
            meta = json.loads(self._meta_path(key).read_text())
            size = self._object_path(key).stat().st_size
        except FileNotFoundError:
            return None
        if size != meta["size"]:  # the object was replaced and its metadata not yet
            return None
        return StoredObject(size=size, etag=meta["etag"], content_type=meta["contentType"])

    def open_object(self, *, key: str) -> tuple[BinaryIO, StoredObject] | None:
        """The object opened for reading, with its metadata; None when it is not (fully) stored.
        The open file keeps its bytes even if the object is replaced meanwhile, so a long read
        is of one version; the caller closes it."""
        try:
            meta = json.loads(self._meta_path(key).read_text())
            file = open(self._object_path(key), "rb")  # noqa: SIM115 -- the caller streams and closes it
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None
        if os.fstat(file.fileno()).st_size != meta["size"]:  # replaced, its metadata not yet: as head()
            file.close()
            return None
        return file, StoredObject(size=meta["size"], etag=meta["etag"], content_type=meta["contentType"])

    def delete(self, *, key: str) -> None:
        self._meta_path(key).unlink(missing_ok=True)
        self._object_path(key).unlink(missing_ok=True)

    # --- paths -----------------------------------------------------------------------------
    def _publish(self, tmp: Path, key: str, obj: StoredObject, *, create_only: bool = False) -> None:
        """Object first, metadata second: head() reports only an object whose metadata matches.
        Under the key's lock, so a create-only PUT (S3's `If-None-Match: *`) finds either a
        finished object, and is refused, or none; a publish that a crash cut short (an object
        without metadata) is simply done again."""
        path = self._object_path(key)
        meta = self._meta_path(key)
        try:
            make_private_dirs(path.parent)
            make_private_dirs(meta.parent)
            with locked(meta):
                if create_only and meta.exists() and path.exists():
                    raise AlreadyStored(
                        "This object is already stored; check the upload's progress and complete it.",
                        details={"key": key},
                    )
                os.replace(tmp, path)
                sync_dir(path.parent)
                write_json_atomic(meta, {"size": obj.size, "etag": obj.etag, "contentType": obj.content_type})
                sync_dir(meta.parent)
        finally:
            tmp.unlink(missing_ok=True)  # refused or failed: the bytes in flight go (published: gone already)

    def _object_path(self, key: str) -> Path:
        return self._inside("objects", key)

    def _meta_path(self, key: str) -> Path:
        return self._inside("meta", key + ".json")

    def _upload_dir(self, upload_id: str) -> Path:
        if not (len(upload_id) == 32 and all(c in "0123456789abcdef" for c in upload_id)):
            raise UploadNotFound(upload_id)
        return self.root / "multipart" / upload_id

    def _open_upload(self, key: str, upload_id: str) -> Path:
        directory = self._upload_dir(upload_id)
        try:
            meta = json.loads((directory / "upload.json").read_text())
        except FileNotFoundError:
            raise UploadNotFound(upload_id) from None
        if meta["key"] != key:
            raise UploadNotFound(upload_id)
        return directory

    def _inside(self, area: str, relative: str) -> Path:
        base = self.root / area
        path = (base / relative).resolve()
        if not path.is_relative_to(base) or ".." in Path(relative).parts or relative.startswith("/"):
            raise StorageError(f"Key {relative!r} escapes the storage root.")
        return path

    # --- readiness -------------------------------------------------------------------------
    def ping(self) -> None:
        """Raises unless a file can be created (and removed) under the root: a full disk, a
        read-only mount or a lost volume fails readiness before an upload does."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        probe = self.root / f".ping-{os.getpid()}-{secrets.token_hex(4)}"
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        probe.unlink()


class IncomingObject:
    """A form POST's file on its way to disk: refused the moment it passes the policy's size
    (S3's EntityTooLarge), published create-only like a single PUT."""

    def __init__(self, storage: LocalStorage, policy: PostPolicy, file: HashedTempFile) -> None:
        self.storage = storage
        self.policy = policy
        self.file = file

    def write(self, chunk: bytes) -> None:
        if self.file.size + len(chunk) > self.policy.max_bytes:
            self.discard()
            raise TooLarge(
                f"This form takes at most {self.policy.max_bytes} bytes.",
                details={"maxBytes": self.policy.max_bytes},
            )
        self.file.write(chunk)

    def publish(self) -> str:
        """Stores the object under the policy's key unless one is stored; returns its quoted ETag."""
        if self.file.size < 1:  # content-length-range starts at 1, as S3's EntityTooSmall
            self.discard()
            raise InvalidInput("The file is empty.", details={"field": "file", "minBytes": 1})
        size = self.file.size
        try:
            etag = f'"{self.file.finish()}"'
        except BaseException:
            self.discard()
            raise
        stored = StoredObject(size=size, etag=etag, content_type=self.policy.content_type)
        self.storage._publish(self.file.path, self.policy.key, stored, create_only=True)
        return etag

    def discard(self) -> None:
        self.file.discard()


def _remove_upload(directory: Path) -> None:
    """Called under the upload's lock; a waiter that gets the lock next finds the upload gone
    (and `locked` removes the lock file itself)."""
    shutil.rmtree(directory, ignore_errors=True)
