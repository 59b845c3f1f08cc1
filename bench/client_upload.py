"""The catalog client's CLI uploading a large file to S3 (a moto server), as a ratio to boto3's
`upload_file` of the same file to the same server with the same part size and concurrency, in
the same run; and the CLI's peak memory. Targets: ratio >= 0.95, client peak RSS < 100 MB.

    .venv/bin/python bench/client_upload.py [--size-mib 256] [--rounds 3] [--profile]

What runs:
- `moto_server` in its own process on a free 127.0.0.1 port, holding one bucket, and the portal
  under gunicorn (bench/harness.py's Portal) on its S3 backend pointed at it, with a tenant and an
  API key. The CLI asks the portal for signed part URLs and PUTs the bytes straight to moto, as
  it would to S3; the baseline talks to moto alone.
- A file of random bytes (audio.wav, --size-mib) and a 256 KiB photo.jpg, written in 1 MiB
  blocks to a temporary directory and flushed: both sides read them from the page cache.
- Each side is a child process, timed from its start to its exit (interpreter start and
  imports included, as a user running either would wait), its peak RSS taken from the kernel's
  account when it is reaped (os.wait4: ru_maxrss), its CPU time likewise:
  - client: `python -m uploads.client upload photo.jpg audio.wav --artisan art_bench --language hi
    --json --concurrency N --state-dir <fresh dir>`, as a user would run it: the whole submission
    (both files, their completion, the submission's), the photo being a single small PUT.
    `--part-size P` is passed only when P is not the portal's default 8 MiB: proposing a part
    size, even the default, makes the portal plan the photo as a one-part multipart upload.
  - baseline: this script with --baseline-child: boto3's `upload_file` of audio.wav with
    TransferConfig(multipart_threshold=P, multipart_chunksize=P, max_concurrency=N,
    use_threads=True), the client otherwise at boto3's defaults.
- One warm-up run of each side (a small file, not counted), then --rounds rounds, each running
  both sides (order alternating between rounds); the median of each side is shown.
- Checks, each stopping the script with a non-zero exit: the CLI exits 0 and reports the audio's
  size, part count and no resumed part; every uploaded object (the CLI's audio and photo, the
  baseline's audio) has the file's size and S3's multipart ETag of the file at that part size
  (md5 of the parts' md5 digests, a dash, the count). Objects are deleted after their check, so
  moto holds at most one large object. A missed target is reported (MISS), not an error: the
  exit status is 0 unless a check failed.

--profile adds one CLI run under cProfile with every thread profiled (cProfile alone sees only
the main thread, and the part PUTs run in worker threads) and prints where its time goes.
--size-mib 32 --rounds 1 is a quick look (the file must stay above the portal's 16 MiB multipart
threshold)."""

import argparse
import cProfile
import hashlib
import json
import os
import pstats
import runpy
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import BIN, ROOT, BenchError, Portal, cpu_seconds, machine_summary

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MIB = 1024 * 1024
BLOCK = MIB
REGION = "ap-south-1"
TARGET_RATIO = 0.95
TARGET_CLIENT_RSS_MB = 100.0
PHOTO_SIZE = 256 * 1024
PORTAL_PART_SIZE = 8 * MIB  # the portal's default plan (UPLOADS_DEFAULT_PART_SIZE)
WARM_UP_SIZE = 24 * MIB  # above the portal's 16 MiB multipart threshold: the warm-up goes multipart too
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
# What the children must not inherit: settings that would send them elsewhere than this run's servers.
_NOT_INHERITED = (
    "CATALOG_API_URL",
    "CATALOG_API_KEY",
    "CATALOG_STATE_DIR",
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "http_proxy",
    "https_proxy",
)


@dataclass
class Run:
    """One child process: wall time from spawn to reaping, and the kernel's account of it."""

    seconds: float
    cpu: float  # the child's user + system CPU
    peak_rss_kib: int  # ru_maxrss
    moto_cpu: float
    portal_cpu: float
    stdout: str


@dataclass
class Side:
    label: str
    runs: list[Run] = field(default_factory=list)
    phases: list[dict[str, float]] = field(default_factory=list)  # the baseline's own account, seconds

    def median(self, attribute: str) -> float:
        return float(statistics.median(getattr(run, attribute) for run in self.runs))

    def rate(self, size: int) -> float:
        return size / self.median("seconds") / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=256, help="size of audio.wav in MiB (default 256)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, each running both sides (default 3)")
    parser.add_argument("--concurrency", type=int, default=4, help="parallel part PUTs on both sides (default 4)")
    parser.add_argument(
        "--part-size-mib", type=int, default=8, help="part size on both sides, the portal's default plan (default 8)"
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (default 2)")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker (default 4)")
    parser.add_argument("--profile", action="store_true", help="profile one extra CLI run (all threads)")
    parser.add_argument("--baseline-child", nargs=6, help=argparse.SUPPRESS)  # endpoint bucket key file conc part
    parser.add_argument("--profile-child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)  # out.prof, CLI args
    args = parser.parse_args()
    if args.baseline_child:
        endpoint, bucket, key, path, concurrency, part_size = args.baseline_child
        _baseline_child(endpoint, bucket, key, Path(path), concurrency=int(concurrency), part_size=int(part_size))
        return
    if args.profile_child:
        _profile_child(Path(args.profile_child[0]), args.profile_child[1:])
        return
    if args.size_mib <= 16 or args.rounds < 1 or args.concurrency < 1 or args.part_size_mib < 5:
        parser.error(
            "--size-mib must be above 16 (the portal's multipart threshold), --rounds and --concurrency positive, "
            "--part-size-mib at least 5"
        )

    size, part_size = args.size_mib * MIB, args.part_size_mib * MIB
    machine = machine_summary()
    with tempfile.TemporaryDirectory(prefix="client-bench-") as tmp_name, moto_server(Path(tmp_name)) as moto:
        tmp = Path(tmp_name)
        bucket = f"raw-media-bench-{secrets.token_hex(4)}"
        s3 = _s3_client(moto.endpoint)
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})  # type: ignore[typeddict-item]
        portal_env = {
            "S3_RAW_MEDIA_BUCKET": bucket,
            "AWS_ENDPOINT_URL_S3": moto.endpoint,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            **CREDENTIALS,
        }
        with Portal(workers=args.workers, threads=args.threads, env=portal_env) as portal:
            bench = ClientBench(
                tmp=tmp,
                portal=portal,
                moto=moto,
                s3=s3,
                bucket=bucket,
                concurrency=args.concurrency,
                part_size=part_size,
            )
            photo = _generate(tmp / "photo.jpg", PHOTO_SIZE)
            warm_up = _generate(tmp / "warm" / "audio.wav", WARM_UP_SIZE)
            bench.run_baseline(warm_up, "warm-up")
            bench.run_client(photo, warm_up, "warm-up")
            audio = _generate(tmp / "audio.wav", size)
            baseline, client = Side("boto3 upload_file (baseline)"), Side("python -m uploads.client upload")
            for number in range(args.rounds):
                order = ["baseline", "client"] if number % 2 == 0 else ["client", "baseline"]
                for which in order:
                    if which == "baseline":
                        run, phases = bench.run_baseline(audio, f"round-{number}")
                        baseline.runs.append(run)
                        baseline.phases.append(phases)
                    else:
                        client.runs.append(bench.run_client(photo, audio, f"round-{number}"))
            profile = bench.profile_client(photo, audio) if args.profile else None

    ratio = client.rate(size) / baseline.rate(size)
    client_rss_mb = client.median("peak_rss_kib") * 1024 / 1e6
    print(f"CLI upload to S3 (moto server), {machine}")
    print(
        f"moto_server in its own process on 127.0.0.1; portal: gunicorn gthread {args.workers} workers x "
        f"{args.threads} threads on the S3 backend; audio.wav {args.size_mib} MiB in {bench.parts(size)} parts of "
        f"{args.part_size_mib} MiB, {args.concurrency} concurrent PUTs on both sides; {args.rounds} rounds, sides "
        "interleaved, medians shown; wall time from spawning each child process to reaping it; CPU seconds of the "
        "child, of moto_server and of the portal's gunicorn processes during the run; peak RSS: the child's ru_maxrss"
    )
    print(
        f"{'side':<46} {'wall s':>7} {'MB/s':>7} {'ratio':>6} {'CPU s':>6} {'CPU moto':>9} {'CPU portal':>11} "
        f"{'peak RSS':>9}"
    )
    for side in (baseline, client):
        print(
            f"{side.label:<46} {side.median('seconds'):>7.2f} {side.rate(size):>7.1f} "
            f"{side.rate(size) / baseline.rate(size):>6.2f} {side.median('cpu'):>6.2f} {side.median('moto_cpu'):>9.2f} "
            f"{side.median('portal_cpu'):>11.2f} {side.median('peak_rss_kib') * 1024 / 1e6:>6.1f} MB"
        )
    phase = {name: statistics.median(p[name] for p in baseline.phases) for name in baseline.phases[0]}
    photo_plan = "one PUT" if part_size == PORTAL_PART_SIZE else "a one-part multipart upload"
    print(
        f"baseline's wall time, medians: Python's start and exit {phase['process']:.2f} s, import boto3 + client "
        f"{phase['setup']:.2f} s, CreateMultipartUpload + parts {phase['parts']:.2f} s, CompleteMultipartUpload "
        f"{phase['complete']:.2f} s"
    )
    print(
        f"client: the photo ({PHOTO_SIZE // 1024} KiB, {photo_plan}) and the submission's completion are in its "
        f"figures; rounds' MB/s client {_rates(client, size)}, baseline {_rates(baseline, size)}"
    )
    print(
        f"file {args.size_mib} MiB: client/boto3 MB/s ratio {ratio:.2f}, target >= {TARGET_RATIO}: "
        f"{'PASS' if ratio >= TARGET_RATIO else 'MISS'}"
    )
    print(
        f"file {args.size_mib} MiB: client peak RSS {client_rss_mb:.1f} MB, target < {TARGET_CLIENT_RSS_MB:.0f} MB: "
        f"{'PASS' if client_rss_mb < TARGET_CLIENT_RSS_MB else 'MISS'}"
    )
    print(f"every run: the object's size and S3 multipart ETag {bench.expected_etags[audio]} match the file")
    if profile is not None:
        print(profile)
    elif ratio < TARGET_RATIO or client_rss_mb >= TARGET_CLIENT_RSS_MB:
        print("A target is missed: run with --profile to see where the client's time goes.")


class ClientBench:
    def __init__(
        self,
        *,
        tmp: Path,
        portal: Portal,
        moto: "Moto",
        s3: "S3Client",
        bucket: str,
        concurrency: int,
        part_size: int,
    ) -> None:
        self.tmp, self.portal, self.moto, self.s3, self.bucket = tmp, portal, moto, s3, bucket
        self.concurrency, self.part_size = concurrency, part_size
        self.expected_etags: dict[Path, str] = {}
        self.env = {k: v for k, v in os.environ.items() if k not in _NOT_INHERITED}
        self.env.update(PYTHONPATH=str(ROOT), NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")

    def parts(self, size: int) -> int:
        return max(1, -(-size // self.part_size))

    def run_baseline(self, audio: Path, name: str) -> tuple[Run, dict[str, float]]:
        """boto3's upload_file in a child; returns the run and the child's account of its phases."""
        key = f"baseline/{name}/{audio.name}"
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--baseline-child",
            self.moto.endpoint,
            self.bucket,
            key,
            str(audio),
            str(self.concurrency),
            str(self.part_size),
        ]
        env = {**self.env, "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION, **CREDENTIALS}
        run = self._spawn(command, env=env, name=f"baseline {name}")
        report = _last_json(run.stdout, f"baseline {name}")
        self._check_object(key, audio, f"the baseline's {name} object")
        phases = {name: float(report[name]) for name in ("setup", "parts", "complete")}
        phases["process"] = run.seconds - sum(phases.values())  # interpreter start and exit, this script's imports
        return run, phases

    def run_client(self, photo: Path, audio: Path, name: str) -> Run:
        run = self._spawn(
            [sys.executable, "-m", "uploads.client", *self._cli_args(photo, audio, name)], env=self.env, name=name
        )
        self._check_client_result(run.stdout, photo, audio, name)
        return run

    def profile_client(self, photo: Path, audio: Path) -> str:
        """One more CLI run with every thread under cProfile (see _profile_child): where its
        time goes, by the function's own time and by the client's own functions' cumulative time.
        cProfile clocks wall time per thread: a blocking call's wait counts as its time."""
        out = self.tmp / "client.prof"
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--profile-child",
            str(out),
            *self._cli_args(photo, audio, "profile"),
        ]
        run = self._spawn(command, env=self.env, name="profile")
        self._check_client_result(run.stdout, photo, audio, "profile")
        entries: dict[tuple[str, int, str], tuple[Any, ...]] = pstats.Stats(str(out)).stats  # type: ignore[attr-defined]
        lines = [
            "",
            f"Profile of one more CLI run, every thread (cProfile's overhead included): wall {run.seconds:.2f} s, "
            f"CPU {run.cpu:.2f} s, peak RSS {run.peak_rss_kib * 1024 / 1e6:.1f} MB; seconds summed over threads",
            f"{'by own time (callees excluded; waits in a call count)':<66} {'calls':>6} {'own s':>7} {'cum s':>7}",
        ]
        by_own = sorted(entries.items(), key=lambda item: item[1][2], reverse=True)[:15]
        lines += [f"{_function_name(f):<66} {e[1]:>6} {e[2]:>7.3f} {e[3]:>7.3f}" for f, e in by_own]
        lines.append(f"{'functions of uploads.client, by cumulative time':<66} {'calls':>6} {'own s':>7} {'cum s':>7}")
        ours = [(f, e) for f, e in entries.items() if "/uploads/client/" in f[0]]
        by_cumulative = sorted(ours, key=lambda item: item[1][3], reverse=True)[:25]
        lines += [f"{_function_name(f):<66} {e[1]:>6} {e[2]:>7.3f} {e[3]:>7.3f}" for f, e in by_cumulative]
        return "\n".join(lines)

    # --- helpers ---------------------------------------------------------------------------
    def _cli_args(self, photo: Path, audio: Path, name: str) -> list[str]:
        state_dir = self.tmp / "state" / name  # fresh: a run never resumes another one
        state_dir.mkdir(parents=True)
        args = [
            "upload",
            str(photo),
            str(audio),
            "--artisan",
            "art_bench",
            "--language",
            "hi",
            "--url",
            self.portal.base_url,
            "--key",
            self.portal.api_key,
            "--state-dir",
            str(state_dir),
            "--json",
            "--concurrency",
            str(self.concurrency),
        ]
        # As a user would run it: the portal's plan decides the part size. Proposing one, even the
        # default, also makes the portal plan the small photo as a one-part multipart upload.
        if self.part_size != PORTAL_PART_SIZE:
            args += ["--part-size", str(self.part_size)]
        return args

    def _spawn(self, command: list[str], *, env: Mapping[str, str], name: str) -> Run:
        """Runs a child to its end; its peak RSS and CPU come from wait4, which reports on that
        child alone (RUSAGE_CHILDREN would mix every child this script ever reaped)."""
        out_path, err_path = self.tmp / "child.out", self.tmp / "child.err"
        portal_pids = self.portal.server_pids()
        moto_before = cpu_seconds(self.moto.pid)
        portal_before = sum(cpu_seconds(pid) for pid in portal_pids)
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            started = time.perf_counter()
            child = subprocess.Popen(command, cwd=ROOT, env=dict(env), stdin=subprocess.DEVNULL, stdout=out, stderr=err)
            _, status, usage = os.wait4(child.pid, 0)
            seconds = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait for it again
        moto_cpu = cpu_seconds(self.moto.pid) - moto_before
        portal_cpu = sum(cpu_seconds(pid) for pid in portal_pids) - portal_before
        stdout = out_path.read_text(errors="replace")
        if child.returncode != 0:
            stderr = err_path.read_text(errors="replace")[-3000:]
            raise BenchError(f"{name}: {' '.join(command[:4])} … exited {child.returncode}:\n{stdout[-2000:]}{stderr}")
        return Run(
            seconds=seconds,
            cpu=usage.ru_utime + usage.ru_stime,
            peak_rss_kib=usage.ru_maxrss,  # KiB on Linux
            moto_cpu=moto_cpu,
            portal_cpu=portal_cpu,
            stdout=stdout,
        )

    def _check_client_result(self, stdout: str, photo: Path, audio: Path, name: str) -> None:
        result = _last_json(stdout, f"{name}: the CLI")
        try:
            audio_result, photo_result = result["files"]["audio"], result["files"]["photo"]
        except (KeyError, TypeError) as exc:
            raise BenchError(f"{name}: the CLI's --json output lacks {exc!r}: {stdout[-500:]!r}") from None
        expected = {"size": audio.stat().st_size, "partsTotal": self.parts(audio.stat().st_size), "partsResumed": 0}
        got = {k: audio_result.get(k) for k in expected}
        if got != expected:
            raise BenchError(f"{name}: the CLI reports the audio as {got}, expected {expected}")
        if str(audio_result.get("etag")).strip('"') != self._expected_etag(audio).strip('"'):  # the CLI's are bare
            raise BenchError(
                f"{name}: the CLI reports ETag {audio_result.get('etag')}, expected {self._expected_etag(audio)}"
            )
        self._check_object(audio_result["key"], audio, f"{name}: the CLI's audio")
        self._check_object(photo_result["key"], photo, f"{name}: the CLI's photo", single_put=True)

    def _check_object(self, key: str, source: Path, what: str, *, single_put: bool = False) -> None:
        """Size and ETag as S3 reports them, then the object is deleted (moto keeps objects in
        memory or its spool files: one large object at a time). `single_put`: a file under the
        portal's multipart threshold, which the portal plans as one PUT unless a part size is
        proposed."""
        head = self.s3.head_object(Bucket=self.bucket, Key=key)
        expected_etag = self._expected_etag(source)
        if single_put and self.part_size == PORTAL_PART_SIZE:
            expected_etag = _md5_etag(source)
        if head["ContentLength"] != source.stat().st_size or head["ETag"] != expected_etag:
            raise BenchError(
                f"{what} {key}: {head['ContentLength']} bytes, ETag {head['ETag']}; expected "
                f"{source.stat().st_size} bytes, ETag {expected_etag}"
            )
        self.s3.delete_object(Bucket=self.bucket, Key=key)

    def _expected_etag(self, source: Path) -> str:
        if source not in self.expected_etags:
            self.expected_etags[source] = _multipart_etag(source, self.part_size)
        return self.expected_etags[source]


# --- the children --------------------------------------------------------------------------------
def _baseline_child(endpoint: str, bucket: str, key: str, path: Path, *, concurrency: int, part_size: int) -> None:
    """The baseline as a user would write it: a default boto3 client, upload_file with the
    CLI's part size and concurrency. Prints its phases' seconds (marked by botocore's events,
    which cost nothing measurable): setup, then the parts, then the serial completion at storage
    that both sides wait for."""
    started = time.perf_counter()
    import boto3
    from boto3.s3.transfer import TransferConfig

    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION)
    config = TransferConfig(
        multipart_threshold=part_size, multipart_chunksize=part_size, max_concurrency=concurrency, use_threads=True
    )
    marks = {"setup": time.perf_counter()}

    def parts_done(**_: Any) -> None:
        marks.setdefault("parts", time.perf_counter())

    s3.meta.events.register("before-call.s3.CompleteMultipartUpload", parts_done)
    s3.upload_file(str(path), bucket, key, Config=config)
    marks["complete"] = time.perf_counter()
    print(
        json.dumps(
            {
                "setup": marks["setup"] - started,
                "parts": marks["parts"] - marks["setup"],
                "complete": marks["complete"] - marks["parts"],
            }
        )
    )


def _profile_child(out: Path, cli_args: list[str]) -> None:
    """`python -m uploads.client CLI_ARGS` with every thread under its own cProfile.Profile, the
    profiles merged into `out` at the end."""
    profiles = [cProfile.Profile()]
    original_run = threading.Thread.run

    def profiled_run(thread: threading.Thread) -> None:
        profile = cProfile.Profile()
        profiles.append(profile)
        profile.runcall(original_run, thread)

    threading.Thread.run = profiled_run  # type: ignore[method-assign, assignment]
    sys.argv = ["uploads.client", *cli_args]
    code = 0
    try:
        profiles[0].runcall(runpy.run_module, "uploads.client", run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        stats = pstats.Stats(profiles[0])
        for profile in profiles[1:]:
            stats.add(profile)
        stats.dump_stats(str(out))
    raise SystemExit(code)


# --- moto ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Moto:
    endpoint: str
    pid: int


@contextmanager
def moto_server(tmp: Path) -> Iterator[Moto]:
    """`moto_server` in its own process on a free 127.0.0.1 port, so its CPU is not this script's."""
    port = _free_port()
    log_path = tmp / "moto.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            if server.poll() is not None:
                raise BenchError(f"moto_server exited with status {server.returncode}: {log_path.read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise BenchError("moto_server did not listen within 30 s") from None
                time.sleep(0.1)
        yield Moto(endpoint=f"http://127.0.0.1:{port}", pid=server.pid)
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _s3_client(endpoint: str) -> "S3Client":
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


# --- files -----------------------------------------------------------------------------------------
def _generate(path: Path, size: int) -> Path:
    """Random bytes, written block by block and flushed to disk, so writeback of the file does
    not compete with the uploads; it stays in the page cache for both sides."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as out:
        remaining = size
        while remaining:
            block = os.urandom(min(BLOCK, remaining))
            out.write(block)
            remaining -= len(block)
        out.flush()
        os.fsync(out.fileno())
    return path


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


def _md5_etag(path: Path) -> str:
    """A single PUT's ETag: the object's md5."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as source:
        while block := source.read(BLOCK):
            digest.update(block)
    return f'"{digest.hexdigest()}"'


def _last_json(stdout: str, what: str) -> Any:
    """The JSON object a child printed last, on one line or (pretty-printed) as the whole output."""
    text = stdout.strip()
    candidates = [text, *(line for line in reversed(text.splitlines()) if line.startswith("{"))]
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except ValueError:
            continue
    raise BenchError(f"{what} printed no JSON object: {stdout[-500:]!r}")


def _function_name(function: tuple[str, int, str]) -> str:
    """`uploads/client/transfer.py:362(_send_part)`, `connectionpool.py:598(urlopen)`, or the
    built-in's own name: no machine paths in the output."""
    filename, line, name = function
    if filename == "~":  # built-ins: cProfile names them `<method 'recv_into' of ...>` or `{built-in ...}`
        return name
    shown = filename.split("/uploads/client/", 1)[1] if "/uploads/client/" in filename else Path(filename).name
    prefix = "uploads/client/" if "/uploads/client/" in filename else ""
    return f"{prefix}{shown}:{line}({name})"


def _rates(side: Side, size: int) -> str:
    return ", ".join(f"{size / run.seconds / 1e6:.1f}" for run in side.runs)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


if __name__ == "__main__":
    main()
