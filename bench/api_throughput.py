"""Requests/s of the status GET and of signing 10 part URLs, each as a ratio to a bare DRF
endpoint (`GET /bench/bare`: a constant dict, no authentication, no permission, no throttle, no
database) of the same gunicorn server, in the same run, against issue 12's targets.

    .venv/bin/python bench/api_throughput.py [--duration 1.5] [--rounds 9] [--concurrency 8]

Rounds interleave the endpoints, many short ones, so a slow spell of the machine (other work on
a shared host) hits them all alike and spoils a minority of each endpoint's rounds; the table
shows each endpoint's median round. `GET /bench/ping` (the API's authentication, permission and
throttles in front of an empty view) is shown too, without a target: it tells what an API key
costs apart from what the endpoints themselves do."""

import argparse
import json
import math
import statistics
import threading
import time
from dataclasses import dataclass, field

from harness import BenchError, Client, Portal, machine_summary

MIB = 1024 * 1024


@dataclass(frozen=True)
class Endpoint:
    label: str
    method: str
    path: str
    body: bytes | None = None
    target: float | None = None  # issue 12's lowest acceptable ratio to the bare endpoint

    @property
    def headers(self) -> dict[str, str]:
        return {"Content-Type": "application/json"} if self.body is not None else {}


@dataclass
class Results:
    rates: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)

    def rate(self) -> float:
        return statistics.median(self.rates)

    def latency_ms(self, quantile: float) -> float:
        ordered = sorted(self.latencies)
        return 1000 * ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=1.5, help="seconds per endpoint per round (default 1.5)")
    parser.add_argument("--max-requests", type=int, default=20_000, help="request cap per endpoint per round")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--concurrency", type=int, default=8, help="client threads, one connection each")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (default 2)")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker (default 4)")
    args = parser.parse_args()
    machine = machine_summary()

    # The throttles still count every request (the same cache round trips as in production); the
    # limits are only raised so that a benchmark's thousands of requests a second are not refused.
    no_refusals = {"API_RATE_PER_KEY": "100000000/min", "API_RATE_PER_TENANT": "100000000/min"}
    with Portal(workers=args.workers, threads=args.threads, env=no_refusals) as portal:
        endpoints = _endpoints(portal.client())
        clients = [portal.client() for _ in range(args.concurrency)]
        results = {e: Results() for e in endpoints}
        for endpoint in endpoints:  # warm-up: imports, DB connections, every client's connection
            _drive(clients, endpoint, duration=1.0, max_requests=50 * args.concurrency)
        for _ in range(args.rounds):
            for endpoint in endpoints:
                requests, seconds, latencies = _drive(
                    clients, endpoint, duration=args.duration, max_requests=args.max_requests
                )
                results[endpoint].rates.append(requests / seconds)
                results[endpoint].latencies.extend(latencies)
        for client in clients:
            client.close()

    baseline = results[endpoints[0]].rate()
    print(f"API throughput, {machine}")
    print(
        f"gunicorn gthread {args.workers} workers x {args.threads} threads, SQLite; {args.concurrency} concurrent "
        f"keep-alive clients; {args.rounds} rounds of {args.duration:g} s per endpoint, median round shown"
    )
    print(f"{'endpoint':<58} {'req/s':>8} {'ratio':>6} {'target':>7} {'p50 ms':>7} {'p99 ms':>7}")
    for endpoint in endpoints:
        r = results[endpoint]
        ratio = r.rate() / baseline
        target = "" if endpoint.target is None else f">={endpoint.target:g}"
        verdict = "" if endpoint.target is None else ("  ok" if ratio >= endpoint.target else "  MISSED")
        print(
            f"{endpoint.label:<58} {r.rate():>8.1f} {ratio:>6.2f} {target:>7} "
            f"{r.latency_ms(0.5):>7.1f} {r.latency_ms(0.99):>7.1f}{verdict}"
        )


def _endpoints(client: Client) -> list[Endpoint]:
    """A submission with a photo and a multipart audio file, to ask the status of and sign for."""
    audio = client.json(
        "POST",
        "/v1/catalog/uploads",
        {"artisanId": "artisan_bench", "contentType": "audio/wav", "fileSize": 100 * MIB},
        expect=201,
    )
    client.json(
        "POST",
        "/v1/catalog/uploads",
        {
            "artisanId": "artisan_bench",
            "contentType": "image/jpeg",
            "fileSize": 2 * MIB,
            "trackingId": audio["trackingId"],
        },
        expect=201,
    )
    if audio["strategy"] != "multipart" or audio["numParts"] < 10:
        raise BenchError(f"expected a multipart upload of at least 10 parts, got {audio}")
    client.close()
    sign_body = json.dumps({"partNumbers": list(range(1, 11))}).encode()
    return [
        Endpoint("GET  /bench/bare (baseline: bare DRF view)", "GET", "/bench/bare"),
        Endpoint("GET  /bench/ping (API key + throttles, empty view)", "GET", "/bench/ping"),
        Endpoint(
            "GET  /v1/catalog/status/{trackingId}",
            "GET",
            f"/v1/catalog/status/{audio['trackingId']}",
            target=0.6,
        ),
        Endpoint(
            "POST /v1/catalog/uploads/{mediaId}/parts (10 URLs)",
            "POST",
            f"/v1/catalog/uploads/{audio['mediaId']}/parts",
            sign_body,
            target=0.4,
        ),
    ]


def _drive(
    clients: list[Client], endpoint: Endpoint, *, duration: float, max_requests: int
) -> tuple[int, float, list[float]]:
    """Every client sends requests back to back until the time or its share of the request cap
    runs out. Returns the requests done, the seconds they took and their latencies."""
    quota = math.ceil(max_requests / len(clients))
    start_line = threading.Barrier(len(clients) + 1)
    latencies: list[list[float]] = [[] for _ in clients]
    failures: list[str] = []

    def work(client: Client, mine: list[float]) -> None:
        start_line.wait()
        deadline = time.perf_counter() + duration
        while len(mine) < quota and time.perf_counter() < deadline:
            sent = time.perf_counter()
            try:
                status, body = client.request(endpoint.method, endpoint.path, endpoint.body, endpoint.headers)
            except OSError as exc:
                failures.append(f"{endpoint.method} {endpoint.path}: {exc!r}")
                return
            mine.append(time.perf_counter() - sent)
            if status != 200:
                failures.append(f"{endpoint.method} {endpoint.path} answered {status}: {body[:300]!r}")
                return

    threads = [threading.Thread(target=work, args=(c, mine)) for c, mine in zip(clients, latencies, strict=True)]
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


if __name__ == "__main__":
    main()
