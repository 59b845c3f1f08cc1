"""Load test: concurrent clients doing whole upload flows against the production processes
(`make serve`'s gunicorn, Celery workers and beat: bench/load_deploy.py) on PostgreSQL and Redis.

    .venv/bin/python bench/load_test.py [--duration 120] [--clients 50] [--faults]

Each flow, as the upload page does it: initiate a photo (single PUT) and a multipart audio for
one trackingId, PUT the bytes to the signed URLs, record each part, complete the audio upload,
complete the submission, poll its status until `queued`. Then it checks: zero errors (every
response as expected), every flow finished (none stuck: no deadlock) and PostgreSQL detected no
deadlock, the outbox drained, and the processing queue (the local queue file) holds exactly one
message per completed submission. `--faults` also SIGKILLs a Celery worker (and restarts it) and
restarts Redis mid-run. Prints progress, then README-ready tables: flows/s and p50/p95/p99 per
route (a route is the URL pattern: every mediaId's parts count as one)."""

import argparse
import datetime
import json
import os
import platform
import random
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests
from load_deploy import Deployment, LoadTestError

MIB = 1024 * 1024
QUEUED_OR_LATER = {"queued", "processing", "completed"}


class FlowError(Exception):
    pass


@dataclass
class Stats:
    """Shared by the client threads (under `lock`): latencies per route, flows, errors."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    flows: list[tuple[str, float]] = field(default_factory=list)  # (trackingId, seconds)
    errors: list[str] = field(default_factory=list)
    retried: Counter[str] = field(default_factory=Counter)
    started: int = 0

    def record(self, route: str, seconds: float) -> None:
        with self.lock:
            self.latencies[route].append(seconds)


class Client:
    """One artisan's app: a keep-alive session doing flows back to back until the deadline."""

    def __init__(self, n: int, *, base_url: str, key: str, stats: Stats, args: argparse.Namespace) -> None:
        self.n = n
        self.base_url = base_url
        self.stats = stats
        self.args = args
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {key}"
        self.photo = b"\xff\xd8\xff" + random.Random(n).randbytes(args.photo_bytes - 3)
        self.audio = b"OggS" + random.Random(-n).randbytes(args.audio_bytes - 4)

    def run(self, deadline: float) -> None:
        # Clients arrive over the ramp-up rather than all at once, so their flows do not march in
        # step (all completing together, then all uploading) and a fault meets every stage.
        time.sleep(random.Random(self.n).uniform(0, self.args.ramp_up))
        while time.monotonic() < deadline:
            with self.stats.lock:
                self.stats.started += 1
            began = time.monotonic()
            try:
                tracking_id = self.flow()
            except Exception as exc:  # FlowError, or a response not shaped as the API promises
                with self.stats.lock:
                    self.stats.errors.append(f"client {self.n}: {type(exc).__name__}: {exc}")
                continue
            with self.stats.lock:
                self.stats.flows.append((tracking_id, time.monotonic() - began))

    def flow(self) -> str:
        artisan = f"artisan_{self.n}"
        photo = self.call(
            "POST",
            "/v1/catalog/upload/initiate",
            201,
            json={"artisanId": artisan, "contentType": "image/jpeg", "fileSize": len(self.photo)},
        )
        tracking_id = photo["trackingId"]
        self.call(
            "PUT",
            photo["uploadUrl"],
            200,
            route="PUT /storage/put/{token} (photo)",
            data=self.photo,
            headers=photo["headers"],
            raw=True,
        )
        audio = self.call(
            "POST",
            "/v1/catalog/uploads",
            201,
            json={
                "artisanId": artisan,
                "contentType": "audio/ogg",
                "fileSize": len(self.audio),
                "trackingId": tracking_id,
                "partSize": self.args.part_bytes,
            },
        )
        if audio["strategy"] != "multipart":
            raise FlowError(f"audio of {len(self.audio)} bytes got strategy {audio['strategy']}")
        media = audio["mediaId"]
        numbers = list(range(1, audio["numParts"] + 1))
        signed = self.call(
            "POST",
            f"/v1/catalog/uploads/{media}/parts",
            200,
            route="POST /v1/catalog/uploads/{mediaId}/parts",
            json={"partNumbers": numbers},
        )["parts"]
        size = audio["partSize"]
        for part in signed:
            number = part["partNumber"]
            chunk = self.audio[(number - 1) * size : number * size]
            response = self.call(
                "PUT",
                part["url"],
                200,
                route="PUT /storage/put/{token} (part)",
                data=chunk,
                headers=part["headers"],
                raw=True,
            )
            self.call(
                "PUT",
                f"/v1/catalog/uploads/{media}/parts/{number}",
                200,
                route="PUT /v1/catalog/uploads/{mediaId}/parts/{n}",
                json={"etag": response.headers["ETag"], "size": len(chunk)},
            )
        self.call(
            "POST", f"/v1/catalog/uploads/{media}/complete", 200, route="POST /v1/catalog/uploads/{mediaId}/complete"
        )
        accepted = self.call(
            "POST",
            "/v1/catalog/upload/complete",
            202,
            json={"trackingId": tracking_id, "photoKey": photo["key"], "audioKey": audio["key"], "language": "hi"},
        )
        if accepted.get("status") != "accepted":
            raise FlowError(f"complete of {tracking_id} answered {accepted}")
        give_up = time.monotonic() + self.args.queued_timeout
        while True:
            status = self.call(
                "GET", f"/v1/catalog/status/{tracking_id}", 200, route="GET /v1/catalog/status/{trackingId}"
            )
            if status["stage"] in QUEUED_OR_LATER:
                return str(tracking_id)
            if status["stage"] != "uploaded" or time.monotonic() > give_up:
                raise FlowError(f"{tracking_id} stage {status['stage']} after {self.args.queued_timeout:g} s")
            time.sleep(self.args.poll_interval)

    def call(self, method: str, url: str, expect: int, *, route: str = "", raw: bool = False, **kwargs: Any) -> Any:
        """One request: its JSON body, or with `raw` the response. Under --faults a 5xx, 429 or a
        lost connection is retried with backoff, as the upload page retries; anything else
        unexpected fails the flow."""
        route = route or f"{method} {url}"
        full = url if url.startswith("http") else self.base_url + url
        for attempt in range(self.args.retries + 1):
            began = time.monotonic()
            try:
                response = self.session.request(method, full, timeout=self.args.request_timeout, **kwargs)
            except requests.RequestException as exc:
                problem = f"{route}: {type(exc).__name__}: {exc}"
            else:
                self.stats.record(route, time.monotonic() - began)
                if response.status_code == expect:
                    return response if raw else response.json()
                problem = f"{route}: {response.status_code} {response.text[:300]}"
                if response.status_code < 500 and response.status_code != 429:
                    break
            if attempt < self.args.retries:
                with self.stats.lock:
                    self.stats.retried[route] += 1
                time.sleep(min(8.0, 0.5 * 2**attempt))
        raise FlowError(problem)


def main() -> int:
    args = _arguments()
    stats = Stats()
    extra_env = {
        # The load is one tenant's: its rate limits and caps must not be what is measured.
        "API_RATE_PER_TENANT": "1000000/min",
        "API_RATE_PER_KEY": "1000000/min",
        "UPLOADS_DEFAULT_MAX_OPEN_UPLOADS": "1000000",
        "UPLOADS_DEFAULT_MAX_RESERVED_BYTES": str(10**15),
        "GUNICORN_THREADS": str(args.threads),
        "CELERY_WORKER_CONCURRENCY": str(args.worker_concurrency),
    }
    if args.faults:
        # A row the killed worker held "sending" is sent again after this (default 300 s, longer
        # than the run); a local queue append takes milliseconds, so 20 s is still safe.
        extra_env["OUTBOX_STALE_CLAIM_SECONDS"] = "20"
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(
        f"load test {when}: {args.clients} clients, {args.duration:g} s, {'with' if args.faults else 'no'} faults; "
        f"{_machine()}",
        flush=True,
    )
    try:
        with Deployment(
            admin_url=args.admin_url,
            database=args.database,
            web_workers=args.web_workers,
            celery_workers=args.celery_workers,
            keys=args.keys,
            extra_env=extra_env,
            keep=args.keep,
            ready_path=args.ready_path,
        ) as deployment:
            elapsed, faults = _drive(deployment, stats, args)
            ok = _check(deployment, stats, args, elapsed, faults)
            _report(stats, args, elapsed, when)
            if not ok:
                deployment.keep = True
    except LoadTestError as exc:
        print(f"load test could not run: {exc}", file=sys.stderr)
        return 2
    return 0 if ok else 1


def _drive(deployment: Deployment, stats: Stats, args: argparse.Namespace) -> tuple[float, list[str]]:
    clients = [
        Client(
            n,
            base_url=deployment.base_url,
            key=deployment.api_keys[n % len(deployment.api_keys)],
            stats=stats,
            args=args,
        )
        for n in range(args.clients)
    ]
    began = time.monotonic()
    deadline = began + args.duration
    threads = [threading.Thread(target=c.run, args=(deadline,), daemon=True) for c in clients]
    for thread in threads:
        thread.start()
    faults = _fault_schedule(args)
    done: list[str] = []
    next_progress = began + args.progress
    last_flows = 0
    while any(t.is_alive() for t in threads):
        now = time.monotonic()
        if faults and now - began >= faults[0][0]:
            _, name, action = faults.pop(0)
            done.append(f"{now - began:5.1f} s  {name}: {action(deployment)}")
            print(f"  fault at {done[-1]}", flush=True)
        if now >= next_progress:
            with stats.lock:
                flows, errors, started = len(stats.flows), len(stats.errors), stats.started
            print(
                f"  {now - began:5.0f} s  flows {flows:5d} ({(flows - last_flows) / args.progress:5.2f}/s)  "
                f"in flight {started - flows - errors:3d}  errors {errors}",
                flush=True,
            )
            last_flows = flows
            next_progress += args.progress
        if exited := deployment.exited():
            print(f"  process exited: {', '.join(exited)}", flush=True)
        time.sleep(0.2)
    return time.monotonic() - began, done


def _fault_schedule(args: argparse.Namespace) -> list[tuple[float, str, Callable[[Deployment], str]]]:
    if not args.faults:
        return []

    def kill_worker(d: Deployment) -> str:
        d.kill("worker1")
        time.sleep(3)
        d.start("worker1")
        return "SIGKILLed, restarted 3 s later (ready again)"

    def restart_redis(d: Deployment) -> str:
        down = d.restart_redis(args.redis_down)
        return f"shutdown nosave, answering again after {down:.1f} s"

    return [(args.duration * 0.3, "celery worker1", kill_worker), (args.duration * 0.55, "redis", restart_redis)]


def _check(deployment: Deployment, stats: Stats, args: argparse.Namespace, elapsed: float, faults: list[str]) -> bool:
    print("checking", flush=True)
    drained = _wait_outbox_drained(deployment, args.drain_timeout)
    tracking_ids = [t for t, _ in stats.flows]
    messages = list(_read_queue(deployment))
    per_tracking: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for message in messages:
        per_tracking[message["body"]["trackingId"]].append(message)
    lost = [t for t in tracking_ids if t not in per_tracking]
    stray = set(per_tracking) - set(tracking_ids)
    repeated = {t: ms for t, ms in per_tracking.items() if len(ms) > 1}
    # A repeat that carries its first copy's deduplication id is dropped by a FIFO queue (and by
    # any consumer keyed on it): processed once in effect. One with another id would be processed twice.
    distinct = {t for t, ms in repeated.items() if len({m["deduplicationId"] for m in ms}) > 1}
    stuck = stats.started - len(stats.flows) - len(stats.errors)
    stages = dict(deployment.query("SELECT stage, count(*) FROM uploads_submission GROUP BY stage"))
    late, slowest = deployment.query(
        "SELECT count(*) FILTER (WHERE sent_at - created_at > interval '5 seconds'), "
        "coalesce(extract(epoch FROM max(sent_at - created_at)), 0) "
        "FROM uploads_outboxmessage WHERE topic = 'processing'"
    )[0]
    deadlocks = deployment.deadlocks()
    deadlock_lines = [line for line in deployment.logs().splitlines() if "deadlock" in line.lower()]
    rows = [
        ("flows completed", len(stats.flows), True),
        ("errors (unexpected responses, flows failed)", len(stats.errors), not stats.errors),
        ("flows unfinished", stuck, stuck == 0),
        ("outbox drained (no pending, sending or failed row)", drained, drained),
        ("processing messages", len(messages), True),
        ("  of which sent over 5 s after completion (a lost or late task; the relay sent it)", late, True),
        ("  longest from completion to sent, s", round(float(slowest), 1), True),
        ("completed submissions without a message (lost)", len(lost), not lost),
        ("messages for no completed flow", len(stray), not stray if not stats.errors else True),
        ("trackingIds with more than one message", len(repeated), not repeated or (args.faults and not distinct)),
        ("  of which with different deduplication ids", len(distinct), not distinct),
        ("PostgreSQL deadlocks (pg_stat_database)", deadlocks, deadlocks == 0),
        ("log lines mentioning a deadlock", len(deadlock_lines), not deadlock_lines),
        ("submissions per stage", stages, True),
        ("retried requests (faults only)", sum(stats.retried.values()), True),
    ]
    for label, value, good in rows:
        print(f"  {'ok ' if good else 'BAD'} {label}: {value}")
    for line in faults:
        print(f"  fault: {line}")
    for error in stats.errors[:10]:
        print(f"  error: {error}")
    for t, ms in list(repeated.items())[:5]:
        print(f"  repeated: {t}: {[m['deduplicationId'] for m in ms]}")
    return all(good for _, _, good in rows)


def _wait_outbox_drained(deployment: Deployment, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        left = deployment.query("SELECT count(*) FROM uploads_outboxmessage WHERE status <> 'sent'")[0][0]
        if left == 0:
            return True
        if time.monotonic() > deadline:
            print(f"  outbox: {left} rows still not sent after {timeout:g} s", flush=True)
            return False
        time.sleep(1)


def _read_queue(deployment: Deployment) -> list[dict[str, Any]]:
    if not deployment.processing_queue.exists():
        return []
    with open(deployment.processing_queue, encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def _report(stats: Stats, args: argparse.Namespace, elapsed: float, when: str) -> None:
    flows = len(stats.flows)
    flow_seconds = sorted(s for _, s in stats.flows)
    print()
    print(f"Load test, {when}, {_machine()}")
    print(
        f"{args.clients} clients for {args.duration:g} s ({elapsed:.0f} s until the last flow finished); "
        f"{args.web_workers} gunicorn workers x {args.threads} threads, {args.celery_workers} Celery workers "
        f"(concurrency {args.worker_concurrency}) and beat, PostgreSQL, Redis, local storage and queue; "
        f"photo {args.photo_bytes // 1024} KiB single PUT, audio {args.audio_bytes / MIB:g} MiB in "
        f"{args.part_bytes / MIB:g} MiB parts{'; faults: worker SIGKILL, Redis restart' if args.faults else ''}"
    )
    print()
    print(
        f"**{flows / elapsed:.2f} flows/s** ({flows} flows, {len(stats.errors)} errors); a flow took "
        f"p50 {_quantile(flow_seconds, 0.5):.2f} s, p95 {_quantile(flow_seconds, 0.95):.2f} s, "
        f"p99 {_quantile(flow_seconds, 0.99):.2f} s"
    )
    print()
    print("| route | requests | p50 ms | p95 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|")
    for route in ROUTE_ORDER + sorted(set(stats.latencies) - set(ROUTE_ORDER)):
        values = sorted(stats.latencies.get(route, []))
        if values:
            cells = " | ".join(f"{1000 * _quantile(values, q):.0f}" for q in (0.5, 0.95, 0.99))
            print(f"| `{route}` | {len(values)} | {cells} |")


ROUTE_ORDER = [
    "POST /v1/catalog/upload/initiate",
    "PUT /storage/put/{token} (photo)",
    "POST /v1/catalog/uploads",
    "POST /v1/catalog/uploads/{mediaId}/parts",
    "PUT /storage/put/{token} (part)",
    "PUT /v1/catalog/uploads/{mediaId}/parts/{n}",
    "POST /v1/catalog/uploads/{mediaId}/complete",
    "POST /v1/catalog/upload/complete",
    "GET /v1/catalog/status/{trackingId}",
]


def _quantile(ordered: list[float], q: float) -> float:
    """Nearest rank."""
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.5) - 1))]


def _machine() -> str:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{os.cpu_count()} cores, load average before {load}, Python {platform.python_version()}"


def _arguments() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=120, help="seconds during which clients start flows (120)")
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--faults", action="store_true", help="SIGKILL a Celery worker and restart Redis mid-run")
    p.add_argument("--web-workers", type=int, default=2, help="gunicorn worker processes (2)")
    p.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker (4)")
    p.add_argument("--celery-workers", type=int, default=2)
    p.add_argument("--worker-concurrency", type=int, default=2, help="tasks at once per Celery worker (2)")
    p.add_argument("--keys", type=int, default=5, help="API keys of the tenant, shared round-robin by the clients")
    p.add_argument("--photo-bytes", type=int, default=64 * 1024)
    p.add_argument("--audio-bytes", type=int, default=20 * MIB)
    p.add_argument("--part-bytes", type=int, default=5 * MIB, help="S3's minimum, the portal's default minimum")
    p.add_argument("--ramp-up", type=float, default=10, help="clients start at random within this many seconds")
    p.add_argument("--poll-interval", type=float, default=0.25)
    p.add_argument(
        "--queued-timeout", type=float, default=60, help="a flow fails if not queued this long after complete"
    )
    p.add_argument("--request-timeout", type=float, default=60)
    p.add_argument("--drain-timeout", type=float, default=120, help="bounded wait for the outbox to drain at the end")
    p.add_argument("--redis-down", type=float, default=3, help="seconds Redis stays down (--faults)")
    p.add_argument("--progress", type=float, default=10, help="seconds between progress lines")
    p.add_argument("--database", default="portal_load", help="created afresh (dropped first if it exists)")
    p.add_argument(
        "--admin-url",
        default=os.environ.get("LOAD_TEST_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
        help="a PostgreSQL URL allowed to create databases",
    )
    p.add_argument("--ready-path", default="/healthz", help="polled until it answers 200 before the load starts")
    p.add_argument("--keep", action="store_true", help="keep the database, data and logs (kept anyway on failure)")
    args = p.parse_args()
    args.retries = 6 if args.faults else 0
    if args.faults:
        args.queued_timeout = max(args.queued_timeout, 120)
    return args


if __name__ == "__main__":
    sys.exit(main())
