"""Local-backend upload throughput of one large file sent in parallel parts through the real API
(create the upload, sign part URLs, PUT the parts, complete), as a ratio to `md5sum` of the same
file in the same run; the gunicorn processes' memory; and a check that the assembled object is
byte-identical to the file and carries S3's multipart ETag.

    .venv/bin/python bench/local_upload.py [--size-mib 512] [--part-size-mib 8] [--concurrency 4]

The file is generated in a temporary directory and every part is streamed from it with
positioned reads (os.pread) in 1 MiB blocks: neither side ever holds a part in memory."""

import argparse
import hashlib
import os
import queue
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from harness import BenchError, Client, Portal, cpu_seconds, machine_summary, memory_kib, path_of

MIB = 1024 * 1024
BLOCK = MIB


class PartReader:
    """The bytes [offset, offset + length) of an open file, read on demand."""

    def __init__(self, fd: int, offset: int, length: int) -> None:
        self.fd, self.offset, self.remaining = fd, offset, length

    def read(self, size: int = -1) -> bytes:
        if self.remaining <= 0:
            return b""
        want = self.remaining if size < 0 else min(size, self.remaining)
        chunk = os.pread(self.fd, want, self.offset)
        if not chunk:
            raise BenchError("the source file ended early")
        self.offset += len(chunk)
        self.remaining -= len(chunk)
        return chunk


@dataclass
class Upload:
    key: str
    part_size: int
    num_parts: int
    etag: str
    created_at: float  # perf_counter marks, from the first API call
    put_started: float
    put_done: float
    completed: float


class MemorySampler(threading.Thread):
    """Samples the summed resident memory (VmRSS) of the gunicorn master and workers."""

    def __init__(self, portal: Portal, interval: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.portal, self.interval = portal, interval
        self.peak_total_kib = 0
        self.samples = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            total = sum(memory_kib(pid, "VmRSS") for pid in self.portal.server_pids())
            self.peak_total_kib = max(self.peak_total_kib, total)
            self.samples += 1
            self.done.wait(self.interval)

    def stop(self) -> None:
        self.done.set()
        self.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=512, help="file size in MiB (default 512)")
    parser.add_argument("--part-size-mib", type=int, default=8, help="part size in MiB, at least 5 (default 8)")
    parser.add_argument("--concurrency", type=int, default=4, help="parallel part PUTs (default 4)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (default 2)")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker (default 4)")
    args = parser.parse_args()
    size, part_size = args.size_mib * MIB, args.part_size_mib * MIB
    machine = machine_summary()

    with Portal(workers=args.workers, threads=args.threads) as portal:
        source = portal.tmp_dir / "source.bin"
        _generate(source, size)
        source_md5, md5sum_seconds = _md5sum(source)

        _warm_up(portal, requests=4 * args.workers)
        pids = portal.server_pids()
        rss_before = {pid: memory_kib(pid, "VmRSS") for pid in pids}
        cpu_before = sum(cpu_seconds(pid) for pid in pids)
        sampler = MemorySampler(portal)
        sampler.start()
        try:
            upload = _upload(portal, source, size=size, part_size=part_size, concurrency=args.concurrency)
        finally:
            sampler.stop()
        hwm = {pid: memory_kib(pid, "VmHWM") for pid in pids}
        server_cpu = sum(cpu_seconds(pid) for pid in pids) - cpu_before

        stored = _stored_path(portal, upload.key)
        stored_md5, _ = _md5sum(stored)
        expected_etag = _multipart_etag(source, part_size)
        stored_size = stored.stat().st_size

    seconds = upload.completed - upload.created_at
    put_seconds = upload.put_done - upload.put_started
    md5sum_rate = size / md5sum_seconds / 1e6
    rate = size / seconds / 1e6
    master, workers = pids[0], pids[1:]
    identical = stored_md5 == source_md5 and stored_size == size

    print(f"Local-backend upload, {machine}")
    print(
        f"gunicorn gthread {args.workers} workers x {args.threads} threads; file {args.size_mib} MiB in "
        f"{upload.num_parts} parts of {upload.part_size // MIB} MiB, {args.concurrency} concurrent PUTs"
    )
    print(f"  md5sum of the file            {md5sum_seconds:7.2f} s  {md5sum_rate:8.1f} MB/s")
    print(
        f"  upload, end to end            {seconds:7.2f} s  {rate:8.1f} MB/s  ratio to md5sum {rate / md5sum_rate:.2f}"
    )
    print(f"    create + sign URLs          {upload.put_started - upload.created_at:7.2f} s")
    print(f"    PUT parts                   {put_seconds:7.2f} s  {size / put_seconds / 1e6:8.1f} MB/s")
    print(f"    complete (assemble, HEAD)   {upload.completed - upload.put_done:7.2f} s")
    print(f"    server CPU time             {server_cpu:7.2f} s  (the rest is waiting on the disk and the client)")
    print(
        f"  server memory: RSS before the upload {_mib(sum(rss_before.values()))} "
        f"(master {_mib(rss_before[master])}, workers {', '.join(_mib(rss_before[p]) for p in workers)})"
    )
    print(
        f"                 peak RSS (VmHWM)      master {_mib(hwm[master])}, "
        f"workers {', '.join(_mib(hwm[p]) for p in workers)}"
    )
    print(f"                 peak summed RSS       {_mib(sampler.peak_total_kib)} ({sampler.samples} samples)")
    print(f"  object md5 {stored_md5} vs file md5 {source_md5}: {'identical' if identical else 'DIFFERENT'}")
    print(
        f"  object ETag {upload.etag} vs S3 multipart rule {expected_etag}: "
        f"{'match' if upload.etag == expected_etag else 'MISMATCH'}"
    )
    if not identical or upload.etag != expected_etag:
        raise SystemExit(1)


def _warm_up(portal: Portal, *, requests: int) -> None:
    """Creates and signs a few small uploads, so imports and first connections happen in every
    worker before the measured upload and its memory baseline."""
    api = portal.client()
    for _ in range(requests):
        created = api.json(
            "POST",
            "/v1/catalog/uploads",
            {"artisanId": "artisan_warm_up", "contentType": "audio/wav", "fileSize": 10 * MIB, "partSize": 5 * MIB},
            expect=201,
        )
        api.json("POST", f"/v1/catalog/uploads/{created['mediaId']}/parts", {"partNumbers": [1, 2]})
    api.close()


def _upload(portal: Portal, source: Path, *, size: int, part_size: int, concurrency: int) -> Upload:
    api = portal.client()
    created_at = time.perf_counter()
    created = api.json(
        "POST",
        "/v1/catalog/uploads",
        {"artisanId": "artisan_bench", "contentType": "audio/wav", "fileSize": size, "partSize": part_size},
        expect=201,
    )
    if created["strategy"] != "multipart":
        raise BenchError(f"expected a multipart upload, got {created}")
    media_id, num_parts = created["mediaId"], created["numParts"]
    waiting: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
    for first in range(1, num_parts + 1, 100):  # the API signs at most 100 parts per call
        numbers = list(range(first, min(first + 100, num_parts + 1)))
        for part in api.json("POST", f"/v1/catalog/uploads/{media_id}/parts", {"partNumbers": numbers})["parts"]:
            waiting.put(part)

    failures: list[str] = []
    fd = os.open(source, os.O_RDONLY)

    def put_parts() -> None:
        storage = Client(portal.base_url, api_key="", blocksize=BLOCK)  # the signed URL is the credential
        try:
            while not failures:
                try:
                    part = waiting.get_nowait()
                except queue.Empty:
                    return
                offset = (part["partNumber"] - 1) * created["partSize"]
                body = PartReader(fd, offset, part["size"])
                headers = {**part["headers"], "Content-Length": str(part["size"])}
                status, answer = storage.request("PUT", path_of(part["url"]), body, headers)
                if status != 200:
                    failures.append(f"PUT part {part['partNumber']} answered {status}: {answer[:300]!r}")
        except OSError as exc:
            failures.append(f"PUT failed: {exc!r}")
        finally:
            storage.close()

    put_started = time.perf_counter()
    threads = [threading.Thread(target=put_parts) for _ in range(concurrency)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        os.close(fd)
    put_done = time.perf_counter()
    if failures:
        raise BenchError(failures[0])
    done = api.json("POST", f"/v1/catalog/uploads/{media_id}/complete")
    completed = time.perf_counter()
    api.close()
    if done["status"] != "uploaded" or done["size"] != size:
        raise BenchError(f"completion answered {done}")
    return Upload(
        key=done["key"],
        part_size=created["partSize"],
        num_parts=num_parts,
        etag=done["etag"],
        created_at=created_at,
        put_started=put_started,
        put_done=put_done,
        completed=completed,
    )


def _generate(path: Path, size: int) -> None:
    """Random bytes, written block by block and flushed to disk, so writeback of the source
    does not compete with the upload's own writes."""
    with open(path, "wb") as out:
        remaining = size
        while remaining:
            block = os.urandom(min(BLOCK, remaining))
            out.write(block)
            remaining -= len(block)
        out.flush()
        os.fsync(out.fileno())


def _md5sum(path: Path) -> tuple[str, float]:
    started = time.perf_counter()
    result = subprocess.run(["md5sum", str(path)], capture_output=True, text=True, check=True)
    return result.stdout.split()[0], time.perf_counter() - started


def _stored_path(portal: Portal, key: str) -> Path:
    """Where the local backend keeps the object, as the storage itself says (its object URI)."""
    code = f"from uploads.storage import get_storage; print(get_storage().object_uri({key!r}))"
    uri = portal.manage("shell", "-c", code).strip().splitlines()[-1]
    parts = urlsplit(uri)
    if parts.scheme != "file":
        raise BenchError(f"expected a file:// object URI from the local backend, got {uri}")
    return Path(unquote(parts.path))


def _multipart_etag(path: Path, part_size: int) -> str:
    """S3's multipart ETag: the md5 of the parts' md5 digests, a dash, the part count."""
    digests = hashlib.md5(usedforsecurity=False)
    count = 0
    with open(path, "rb") as source:
        while True:
            part = hashlib.md5(usedforsecurity=False)
            remaining = part_size
            while remaining and (block := source.read(min(BLOCK, remaining))):
                part.update(block)
                remaining -= len(block)
            if remaining == part_size:
                break
            digests.update(part.digest())
            count += 1
    return f'"{digests.hexdigest()}-{count}"'


def _mib(kib: int) -> str:
    return f"{kib / 1024:.0f} MiB"


if __name__ == "__main__":
    main()
