"""Where one API request spends its time: cProfile over a few thousand requests to one endpoint,
served in this process by Django's WSGI handler (every middleware, the bench settings, the
embedded mode), with no HTTP server or client in the way.

    .venv/bin/python bench/profile_api.py status [--requests 3000] [--top 25] [--sort cumulative]

Endpoints: bare (the bare DRF view), ping (API key + throttles, empty view), status (the
status GET of a submission with a photo and a multipart audio file), parts (signing 10 part
URLs of that audio file). A throwaway data directory is made and removed, as by harness.Portal."""

import argparse
import cProfile
import io
import json
import os
import pstats
import secrets
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("endpoint", choices=["bare", "ping", "status", "parts", "all"])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--top", type=int, default=25, help="functions shown (default 25)")
    parser.add_argument("--sort", default="cumulative", help="pstats sort key (default cumulative)")
    parser.add_argument("--callees", nargs="*", default=[], help="also show what these functions call")
    parser.add_argument("--callers", nargs="*", default=[], help="also show what calls these functions")
    parser.add_argument("--save", help="also write the raw profile to this file (pstats format)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="portal-profile-") as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        os.environ.update(
            PORTAL_DATA_DIR=str(data_dir),
            DJANGO_SETTINGS_MODULE="bench.settings_bench",
            SECRET_KEY=secrets.token_urlsafe(50),
            DEBUG="0",
            LOG_LEVEL="WARNING",
            API_RATE_PER_KEY="100000000/min",  # counted, never refused: as in api_throughput.py
            API_RATE_PER_TENANT="100000000/min",
        )
        for name in ("DATABASE_URL", "S3_RAW_MEDIA_BUCKET", "SQS_QUEUE_URL", "DYNAMODB_CATALOG_TABLE"):
            os.environ.pop(name, None)
        sys.path.insert(0, str(ROOT))
        from django.core.management import call_command

        from portal.wsgi import application

        call_command("migrate", "--no-input", verbosity=0)
        call_command("create_tenant", "tenant_bench", "--name", "Benchmark", stdout=io.StringIO())
        out = io.StringIO()
        call_command("create_api_key", "tenant_bench", stdout=out)
        api_key = out.getvalue().strip().splitlines()[-1]

        def call(method: str, path: str, body: Any = None) -> tuple[str, bytes]:
            raw = b"" if body is None else json.dumps(body).encode()
            environ = {
                "REQUEST_METHOD": method,
                "PATH_INFO": path,
                "QUERY_STRING": "",
                "SERVER_NAME": "127.0.0.1",
                "SERVER_PORT": "8000",
                "HTTP_HOST": "127.0.0.1:8000",
                "SERVER_PROTOCOL": "HTTP/1.1",
                "HTTP_AUTHORIZATION": f"Bearer {api_key}",
                "CONTENT_TYPE": "application/json" if body is not None else "",
                "CONTENT_LENGTH": str(len(raw)),
                "wsgi.input": io.BytesIO(raw),
                "wsgi.url_scheme": "http",
                "wsgi.errors": sys.stderr,
                "wsgi.multithread": True,
                "wsgi.multiprocess": True,
                "wsgi.run_once": False,
                "wsgi.version": (1, 0),
            }
            status: list[str] = []

            def start_response(
                line: str, headers: list[tuple[str, str]], exc_info: Any = None
            ) -> Callable[[bytes], object]:
                status.append(line)
                return lambda data: None

            chunks = application(environ, start_response)
            content = b"".join(chunks)
            if hasattr(chunks, "close"):
                chunks.close()
            return status[0], content

        audio = json.loads(
            call(
                "POST",
                "/v1/catalog/uploads",
                {"artisanId": "artisan_bench", "contentType": "audio/wav", "fileSize": 100 * MIB},
            )[1]
        )
        call(
            "POST",
            "/v1/catalog/uploads",
            {
                "artisanId": "artisan_bench",
                "contentType": "image/jpeg",
                "fileSize": 2 * MIB,
                "trackingId": audio["trackingId"],
            },
        )
        requests: dict[str, Callable[[], tuple[str, bytes]]] = {
            "bare": lambda: call("GET", "/bench/bare"),
            "ping": lambda: call("GET", "/bench/ping"),
            "status": lambda: call("GET", f"/v1/catalog/status/{audio['trackingId']}"),
            "parts": lambda: call(
                "POST", f"/v1/catalog/uploads/{audio['mediaId']}/parts", {"partNumbers": list(range(1, 11))}
            ),
        }
        if args.endpoint == "all":
            _compare(requests, args.requests)
            return
        request = requests[args.endpoint]
        status, body = request()
        if not status.startswith("200"):
            raise SystemExit(f"{args.endpoint} answered {status}: {body[:300]!r}")
        _repeat(request, 200)  # warm-up: imports, the connection, caches

        started = time.perf_counter()
        _repeat(request, args.requests)
        plain = time.perf_counter() - started
        profiler = cProfile.Profile()
        profiler.enable()
        _repeat(request, args.requests)
        profiler.disable()
        if args.save:
            profiler.dump_stats(args.save)

        print(
            f"{args.endpoint}: {args.requests} requests in process, {1e6 * plain / args.requests:.0f} µs each "
            f"without the profiler ({args.requests / plain:.0f} req/s on one core)"
        )
        stats = pstats.Stats(profiler, stream=sys.stdout)
        stats.strip_dirs().sort_stats(args.sort).print_stats(args.top)
        for name in args.callees:
            stats.print_callees(name)
        for name in args.callers:
            stats.print_callers(name)


def _compare(requests: dict[str, Callable[[], tuple[str, bytes]]], count: int) -> None:
    """CPU microseconds per request of every endpoint, without the profiler: rounds of
    `count / 10` requests interleaved, the fastest round kept (the machine's other work only
    ever slows one down), with each endpoint's ratio to the bare one."""
    best = dict.fromkeys(requests, float("inf"))
    batch = max(1, count // 10)
    for request in requests.values():
        _repeat(request, 200)
    for _ in range(10):
        for name, request in requests.items():
            started = time.process_time()
            _repeat(request, batch)
            best[name] = min(best[name], (time.process_time() - started) / batch)
    print(f"{'endpoint':<8} {'µs/request':>10} {'bare/this':>9}  (CPU time in process, fastest of 10 rounds)")
    for name, seconds in best.items():
        print(f"{name:<8} {1e6 * seconds:>10.0f} {best['bare'] / seconds:>9.2f}")


def _repeat(request: Callable[[], tuple[str, bytes]], times: Iterable[int] | int) -> None:
    for _ in range(times) if isinstance(times, int) else times:
        status, body = request()
        if not status.startswith("200"):
            raise SystemExit(f"answered {status}: {body[:300]!r}")


if __name__ == "__main__":
    main()
