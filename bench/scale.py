"""Flat at any scale (issue 12): the API costs the same with 1,000,000 submissions as with 1,000,
and the same for part 10,000 of an upload as for part 1.

    .venv/bin/python bench/scale.py [--small 1000] [--large 1000000] [--parts 10000] [--rounds 3]
        [--duration 5] [--concurrency 8] [--only submissions|parts] [--database-url postgres://...]

Submissions (PostgreSQL): two throwaway databases (portal_bench_scale_small and _large, dropped at
the end) on the server of --database-url (default: $BENCH_DATABASE_URL, else the local server),
each served by its own portal under gunicorn and seeded for the bench's tenant with
`manage.py seed_submissions` (COPY), then VACUUM ANALYZE, as after any bulk load. Measured on
both: the status GET of submissions drawn at random from the whole table (up to 10,000 of them,
so the large database is read far beyond PostgreSQL's shared_buffers, not one hot row) and
signing 10 part URLs of uploads in flight.

Parts (the embedded mode, SQLite, as `make bench` runs): one portal, two uploads of 10,000 parts
of 1 KiB (the minimum part size is lowered for the bench), one with part 1 sent and recorded,
the other with all 10,000, each part PUT to storage and recorded through the API. Measured:
signing part 1 of the first vs part 10,000 of the second; recording them (PUT .../parts/{n},
with a new ETag each time, so every request changes the row); the resume GET of each (storage's
list of the parts it holds and of those still missing: 10,000 entries either way). For
information, without a target: the status GET (each file's recorded bytes) and sending the last
part again to storage.

Each pair of figures is measured in turns, A B B A ..., in every round, so a change in the
machine's load falls on both alike; the cost ratio is A's req/s over B's in the same round (B
costs that many times A), the median over the rounds; the issue's target is at most 1.2."""

import argparse
import contextlib
import hashlib
import itertools
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from harness import ROOT, TENANT_ID, BenchError, Client, Portal, machine_summary, path_of

TARGET_COST_RATIO = 1.2  # issue 12: at most 1.2 times the cost at the small end
NO_REFUSALS = {"API_RATE_PER_KEY": "100000000/min", "API_RATE_PER_TENANT": "100000000/min"}
# A tenant with a million submissions has a few thousand uploads open at any time (the seeded
# recent ones): its caps are raised as staff would raise them.
BIG_TENANT_CAPS = {"UPLOADS_DEFAULT_MAX_OPEN_UPLOADS": "1000000", "UPLOADS_DEFAULT_MAX_RESERVED_BYTES": str(1 << 50)}
PART = 1024
PARTS = 10_000
SIGN_BATCH = 100  # the API signs at most 100 parts per call
SLICES = 8  # turns per figure per round

Request = tuple[str, str, bytes | None, dict[str, str]]


@dataclass
class Measure:
    """One figure: requests a thread sends (from `requests(thread)`), to one portal."""

    label: str
    portal: Portal
    requests: Callable[[int], Iterator[Request]]
    rates: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)

    def rate(self) -> float:
        return statistics.median(self.rates)

    def p50_ms(self) -> float:
        return 1000 * statistics.median(self.latencies)


@dataclass(frozen=True)
class Pair:
    """A figure at the small end and at the large end; the issue bounds large's cost by small's."""

    name: str
    small: Measure
    large: Measure
    target: float | None = TARGET_COST_RATIO

    def cost_ratio(self) -> float:
        """The median over rounds of A's rate over B's in the same round: each round's two
        figures saw the same machine, so the ratio is steadier than one of medians."""
        return statistics.median(a / b for a, b in zip(self.small.rates, self.large.rates, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=1_000, help="submissions in the small database")
    parser.add_argument("--large", type=int, default=1_000_000, help="submissions in the large database")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per figure per round (default 5)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8, help="client threads, one connection each")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes per portal (default 2)")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker (default 4)")
    parser.add_argument("--only", choices=("submissions", "parts"), help="run one of the two benchmarks")
    parser.add_argument("--parts", type=int, default=PARTS, help=f"parts of the uploads (default {PARTS:,})")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
        help="a PostgreSQL server to create the two databases on (any database of it; default: the local one)",
    )
    args = parser.parse_args()
    machine = machine_summary()
    lines = []
    if args.only in (None, "submissions"):
        lines += _submissions(args)
    if args.only in (None, "parts"):
        lines += _parts(args)
    print(f"Flat at any scale, {machine}")
    print(
        f"gunicorn gthread {args.workers} workers x {args.threads} threads per portal; {args.concurrency} concurrent "
        f"keep-alive clients; {args.rounds} rounds of {args.duration:g} s per figure, interleaved, median round shown"
    )
    for line in lines:
        print(line)


# --- submissions: 1,000 vs 1,000,000 on PostgreSQL ---------------------------------------------
def _submissions(args: argparse.Namespace) -> list[str]:
    names = {"small": "portal_bench_scale_small", "large": "portal_bench_scale_large"}
    counts = {"small": args.small, "large": args.large}
    admin_url = args.database_url
    with contextlib.ExitStack() as stack:
        for name in names.values():
            _recreate_database(admin_url, name)
            stack.callback(_drop_database, admin_url, name)
        portals: dict[str, Portal] = {}
        seeding: dict[str, float] = {}
        vacuuming: dict[str, float] = {}
        for size, name in names.items():
            url = _with_database(admin_url, name)
            portal = stack.enter_context(
                Portal(
                    workers=args.workers,
                    threads=args.threads,
                    env={"DATABASE_URL": url, **NO_REFUSALS, **BIG_TENANT_CAPS},
                )
            )
            print(f"seeding {counts[size]:,} submissions into {name} ...", file=sys.stderr, flush=True)
            started = time.monotonic()
            _manage(portal, "seed_submissions", "--count", str(counts[size]), "--tenant", TENANT_ID)
            seeding[size] = time.monotonic() - started
            started = time.monotonic()
            _vacuum_analyze(url)
            vacuuming[size] = time.monotonic() - started
            portals[size] = portal
        measures = {
            size: _submission_measures(portal, _with_database(admin_url, names[size]))
            for size, portal in portals.items()
        }
        pairs = [Pair(label, measures["small"][label], measures["large"][label]) for label in measures["small"]]
        _run(pairs, args)
    lines = [
        f"PostgreSQL, {args.small:,} vs {args.large:,} submissions with two files each: seeded (COPY) in "
        f"{seeding['small']:.1f} s and {seeding['large']:.1f} s ({args.large / seeding['large']:,.0f} submissions/s), "
        f"VACUUM ANALYZE {vacuuming['small']:.1f} s and {vacuuming['large']:.1f} s",
        f"{'figure':<46} {'req/s small':>11} {'req/s large':>11} {'p50 ms':>13} {'cost ratio':>10} {'target':>7}",
    ]
    lines += [_pair_line(pair) for pair in pairs]
    return lines


def _submission_measures(portal: Portal, database_url: str) -> dict[str, Measure]:
    """Status GETs over submissions drawn from the whole table; signing over 20 uploads in flight."""
    with psycopg.connect(database_url) as db:
        total = db.execute("SELECT count(*) FROM uploads_submission").fetchone()[0]  # type: ignore[index]
        sample = [
            row[0]
            for row in db.execute(
                "SELECT tracking_id FROM uploads_submission ORDER BY random() LIMIT %s", [min(10_000, total)]
            )
        ]
    api = portal.client()
    uploads = []
    for _ in range(20):
        created = api.json(
            "POST",
            "/v1/catalog/uploads",
            {"artisanId": "artisan_bench", "contentType": "audio/wav", "fileSize": 100 * 1024 * 1024},
            expect=201,
        )
        uploads.append(created["mediaId"])
    api.close()
    sign = json.dumps({"partNumbers": list(range(1, 11))}).encode()
    json_headers = {"Content-Type": "application/json"}

    def statuses(thread: int) -> Iterator[Request]:
        for tracking_id in _cycle_from(sample, thread):
            yield "GET", f"/v1/catalog/status/{tracking_id}", None, {}

    def signing(thread: int) -> Iterator[Request]:
        for media_id in _cycle_from(uploads, thread):
            yield "POST", f"/v1/catalog/uploads/{media_id}/parts", sign, json_headers

    return {
        "GET  /v1/catalog/status/{trackingId}": Measure("status", portal, statuses),
        "POST /v1/catalog/uploads/{mediaId}/parts (10)": Measure("sign 10", portal, signing),
    }


def _cycle_from(items: list[str], thread: int) -> Iterator[str]:
    """All of `items`, over and over, each thread starting at another place (a prime stride)."""
    start = (thread * 7919) % len(items)
    return itertools.cycle(items[start:] + items[:start])


def _recreate_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as db:
        db.execute(f'DROP DATABASE IF EXISTS "{name}"')
        db.execute(f'CREATE DATABASE "{name}"')


def _drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as db:
        db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _vacuum_analyze(database_url: str) -> None:
    """What an operator runs after a bulk load: otherwise autovacuum would do it in the middle
    of the measurement, and index-only scans would still visit the heap."""
    with psycopg.connect(database_url, autocommit=True) as db:
        db.execute("VACUUM (ANALYZE) uploads_submission, uploads_mediaupload")


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _manage(portal: Portal, *args: str) -> None:
    """A management command whose progress (stderr) the reader sees as it goes."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT, env=portal.env, stdout=subprocess.PIPE, text=True
    )
    if result.returncode != 0:
        raise BenchError(f"manage.py {' '.join(args)} failed:\n{result.stdout}")


# --- parts: part 1 vs part 10,000 -----------------------------------------------------------
@dataclass(frozen=True)
class PartUpload:
    media_id: str
    tracking_id: str
    last_signed: dict[str, Any]  # the signed PUT of its highest part sent


def _parts(args: argparse.Namespace) -> list[str]:
    count = args.parts
    env = {**NO_REFUSALS, "UPLOADS_MIN_PART_SIZE": str(PART)}
    with Portal(workers=args.workers, threads=args.threads, env=env) as portal:
        print(f"sending {count:,} parts of {PART} bytes and recording each ...", file=sys.stderr, flush=True)
        first = _upload_parts(portal, count=count, sent=1, concurrency=args.concurrency)
        last = _upload_parts(portal, count=count, sent=count, concurrency=args.concurrency)
        n = f"{count:,}"
        pairs = [
            Pair(
                "sign 1 part URL (POST .../parts)",
                Measure("sign part 1", portal, _signing(first, 1)),
                Measure(f"sign part {n}", portal, _signing(last, count)),
            ),
            Pair(
                "record a part (PUT .../parts/{n})",
                Measure("record part 1", portal, _recording(first, 1)),
                Measure(f"record part {n}", portal, _recording(last, count)),
            ),
            Pair(
                "resume (GET .../uploads/{mediaId})",
                Measure("progress at part 1", portal, _get(f"/v1/catalog/uploads/{first.media_id}")),
                Measure(f"progress at part {n}", portal, _get(f"/v1/catalog/uploads/{last.media_id}")),
            ),
            Pair(
                "status GET (each file's recorded bytes)",
                Measure("status at part 1", portal, _get(f"/v1/catalog/status/{first.tracking_id}")),
                Measure(f"status at part {n}", portal, _get(f"/v1/catalog/status/{last.tracking_id}")),
                target=None,
            ),
            Pair(
                "send a part again (PUT to storage, 1 KiB)",
                Measure("storage PUT part 1", portal, _sending(first)),
                Measure(f"storage PUT part {n}", portal, _sending(last)),
                target=None,
            ),
        ]
        _run(pairs, args)
    lines = [
        f"SQLite, part 1 vs part {n} of {n}-part uploads of {PART} B parts (one with part 1 sent and recorded, "
        f"one with all {n}); rows without a target are for information",
        f"{'figure':<46} {'req/s part 1':>11} {'req/s ' + n:>11} {'p50 ms':>13} {'cost ratio':>10} {'target':>7}",
    ]
    lines += [_pair_line(pair) for pair in pairs]
    return lines


def _upload_parts(portal: Portal, *, count: int, sent: int, concurrency: int) -> PartUpload:
    """A `count`-part upload whose parts 1..sent are at storage and recorded."""
    api = portal.client()
    created = api.json(
        "POST",
        "/v1/catalog/uploads",
        {"artisanId": "artisan_bench", "contentType": "audio/wav", "fileSize": count * PART, "partSize": PART},
        expect=201,
    )
    media_id = created["mediaId"]
    if created["numParts"] != count:
        raise BenchError(f"expected {count} parts, got {created}")
    signed: list[dict[str, Any]] = []
    for start in range(1, sent + 1, SIGN_BATCH):
        numbers = list(range(start, min(start + SIGN_BATCH, sent + 1)))
        signed += api.json("POST", f"/v1/catalog/uploads/{media_id}/parts", {"partNumbers": numbers})["parts"]
    api.close()
    queue = iter(signed)
    lock = threading.Lock()
    failures: list[str] = []

    def send() -> None:
        storage, portal_api = Client(portal.base_url, api_key=""), portal.client()
        try:
            while not failures:
                with lock:
                    part = next(queue, None)
                if part is None:
                    return
                body = os.urandom(part["size"])
                status, answer = storage.request("PUT", path_of(part["url"]), body, part["headers"])
                if status != 200:
                    failures.append(f"PUT part {part['partNumber']} answered {status}: {answer[:300]!r}")
                    return
                record = {"size": part["size"], "etag": f'"{hashlib.md5(body).hexdigest()}"'}  # S3's ETag
                portal_api.json("PUT", f"/v1/catalog/uploads/{media_id}/parts/{part['partNumber']}", record)
        except (OSError, BenchError) as exc:
            failures.append(repr(exc))
        finally:
            storage.close()
            portal_api.close()

    threads = [threading.Thread(target=send) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise BenchError(failures[0])
    return PartUpload(media_id=media_id, tracking_id=created["trackingId"], last_signed=signed[-1])


def _signing(upload: PartUpload, part_number: int) -> Callable[[int], Iterator[Request]]:
    body = json.dumps({"partNumbers": [part_number]}).encode()
    request = ("POST", f"/v1/catalog/uploads/{upload.media_id}/parts", body, {"Content-Type": "application/json"})
    return lambda thread: itertools.repeat(request)


def _recording(upload: PartUpload, part_number: int) -> Callable[[int], Iterator[Request]]:
    path = f"/v1/catalog/uploads/{upload.media_id}/parts/{part_number}"

    def requests(thread: int) -> Iterator[Request]:
        for n in itertools.count():
            # A new ETag each time: every request changes the part's row, none is a no-op repeat.
            body = json.dumps({"size": PART, "etag": f'"{thread:04x}{n:028x}"'}).encode()
            yield "PUT", path, body, {"Content-Type": "application/json"}

    return requests


def _get(path: str) -> Callable[[int], Iterator[Request]]:
    return lambda thread: itertools.repeat(("GET", path, None, {}))


def _sending(upload: PartUpload) -> Callable[[int], Iterator[Request]]:
    """The highest part sent, sent again with the same bytes (safe: S3's last writer wins)."""
    part = upload.last_signed
    body = b"\x00" * part["size"]
    return lambda thread: itertools.repeat(("PUT", path_of(part["url"]), body, part["headers"]))


# --- driving ---------------------------------------------------------------------------------
def _run(pairs: list[Pair], args: argparse.Namespace) -> None:
    """A warm-up of each figure, then rounds. In a round each pair's two figures take turns in
    short slices, A B B A A B B A ..., so a change in the machine's load (other processes, disk
    writeback) falls on both alike; a figure's rate in a round is its requests over its seconds."""
    for pair in pairs:
        for measure in (pair.small, pair.large):
            _drive(measure, duration=1.0, concurrency=args.concurrency)
    for _ in range(args.rounds):
        for pair in pairs:
            requests = {id(pair.small): 0, id(pair.large): 0}
            seconds = {id(pair.small): 0.0, id(pair.large): 0.0}
            for turn in range(SLICES):
                order = (pair.small, pair.large) if turn % 4 in (0, 3) else (pair.large, pair.small)
                for measure in order:
                    done, took, latencies = _drive(
                        measure, duration=args.duration / SLICES, concurrency=args.concurrency
                    )
                    requests[id(measure)] += done
                    seconds[id(measure)] += took
                    measure.latencies.extend(latencies)
            for measure in (pair.small, pair.large):
                measure.rates.append(requests[id(measure)] / seconds[id(measure)])


def _drive(measure: Measure, *, duration: float, concurrency: int) -> tuple[int, float, list[float]]:
    start_line = threading.Barrier(concurrency + 1)
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    failures: list[str] = []

    def work(thread: int, mine: list[float]) -> None:
        client = measure.portal.client()
        requests = measure.requests(thread)
        try:
            start_line.wait()
            deadline = time.perf_counter() + duration
            while time.perf_counter() < deadline and not failures:
                method, path, body, headers = next(requests)
                sent = time.perf_counter()
                status, answer = client.request(method, path, body, headers)
                mine.append(time.perf_counter() - sent)
                if status != 200:
                    failures.append(f"{measure.label}: {method} {path} answered {status}: {answer[:300]!r}")
        except OSError as exc:
            failures.append(f"{measure.label}: {exc!r}")
        finally:
            client.close()

    threads = [threading.Thread(target=work, args=(i, mine)) for i, mine in enumerate(latencies)]
    for thread in threads:
        thread.start()
    start_line.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    if failures:
        raise BenchError(failures[0])
    flat = [t for mine in latencies for t in mine]
    return len(flat), seconds, flat


def _pair_line(pair: Pair) -> str:
    ratio = pair.cost_ratio()
    target, verdict = "", ""
    if pair.target is not None:
        target, verdict = f"<={pair.target:g}", "  ok" if ratio <= pair.target else "  MISSED"
    p50 = f"{pair.small.p50_ms():.1f} / {pair.large.p50_ms():.1f}"
    return (
        f"{pair.name:<46} {pair.small.rate():>11.1f} {pair.large.rate():>11.1f} {p50:>13} {ratio:>10.2f} "
        f"{target:>7}{verdict}"
    )


if __name__ == "__main__":
    main()
