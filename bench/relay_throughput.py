"""Messages/s the outbox relay (`outbox_relay`) moves from the database to an SQS queue on a moto
server, as a ratio to a plain boto3 loop of `send_message_batch` (10 messages a call) sending the
same messages to the same kind of queue, in the same run.

    .venv/bin/python bench/relay_throughput.py [--messages 2000] [--rounds 3] [--no-fifo] [--profile]

moto runs as its own server process, so its CPU does not share this process's GIL: moto's own
server with one change that leaves every answer as it was (a queue's attributes are computed when
read, see _LazyQueueAttributes: unchanged, moto's sends cost O(queue depth) and the figure would be
moto's), or with --plain-moto the unmodified `moto_server` command.

The database is the embedded SQLite in a temporary data dir, or, when DATABASE_URL is set, a
throwaway `test_…` database that Django's test machinery creates beside it on the same server and
drops at the end (the relay would otherwise send that database's own pending rows). Rows are
bulk-created before the clock starts: the figure is the relay's, not the enqueue's.

Each round sends the baseline, then the relay, each into a freshly created queue, and checks that
the queue holds exactly the messages sent (and, for the relay, that every row is "sent"); the
median round is shown. `--profile` adds one relay run under cProfile and prints where its time
goes."""

import argparse
import cProfile
import functools
import hashlib
import io
import json
import os
import pstats
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from harness import BenchError, cpu_seconds, machine_summary

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeNameType
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
REGION = "ap-south-1"
TARGET_RATIO = 0.7
BATCH = 10  # SQS's maximum, and what the relay sends per call
# A side's preparation of a run, out of the clock: what to time, then what to check after it.
Prepare = Callable[[str, list["Message"]], tuple[Callable[[], None], Callable[[], None]]]
# Variables that would send the portal's own files, messages or mirror writes elsewhere.
_NOT_HERE = ("S3_RAW_MEDIA_BUCKET", "SQS_QUEUE_URL", "SQS_STATUS_QUEUE_URL", "DYNAMODB_CATALOG_TABLE", "AWS_PROFILE")


@dataclass(frozen=True)
class Message:
    """What both sides send: a processing request as the portal builds it (see
    uploads/services/submissions.py::processing_message), already JSON-encoded for the baseline."""

    body: dict[str, Any]
    encoded: str
    attributes: dict[str, str]
    group_id: str
    deduplication_id: str

    @property
    def size(self) -> int:
        return len(self.encoded.encode()) + sum(len(k) + len("String") + len(v) for k, v in self.attributes.items())


@dataclass
class Side:
    label: str
    rates: list[float] = field(default_factory=list)
    client_cpu: list[float] = field(default_factory=list)  # seconds per message, this process
    server_cpu: list[float] = field(default_factory=list)  # seconds per message, moto_server

    def median_round(self) -> int:
        ordered = sorted(range(len(self.rates)), key=self.rates.__getitem__)
        return ordered[len(ordered) // 2]

    def rate(self) -> float:
        return statistics.median(self.rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=2000, help="messages per run (default 2000)")
    parser.add_argument("--rounds", type=int, default=3, help="baseline + relay rounds per queue kind (default 3)")
    parser.add_argument("--no-fifo", action="store_true", help="measure the standard queue only")
    parser.add_argument("--profile", action="store_true", help="profile one extra relay run (standard queue)")
    parser.add_argument(
        "--plain-moto",
        action="store_true",
        help="serve with the unmodified moto_server, whose sends cost O(queue depth): use a small --messages",
    )
    parser.add_argument("--serve-moto", type=int, metavar="PORT", help=argparse.SUPPRESS)  # the server process
    args = parser.parse_args()
    if args.serve_moto:
        serve_moto(args.serve_moto)
        return
    if args.messages < BATCH or args.messages % BATCH:
        parser.error(f"--messages must be a positive multiple of {BATCH}")
    machine = machine_summary()

    with (
        tempfile.TemporaryDirectory(prefix="relay-bench-") as tmp,
        moto_server(Path(tmp), plain=args.plain_moto) as (endpoint, moto_pid),
    ):
        _configure_environment(Path(tmp), endpoint)
        import django

        django.setup()
        with portal_database() as database:
            bench = RelayBench(endpoint=endpoint, moto_pid=moto_pid, messages=args.messages)
            kinds = ["standard"] if args.no_fifo else ["standard", "fifo"]
            results = {kind: bench.measure(fifo=kind == "fifo", rounds=args.rounds) for kind in kinds}
            profile = bench.profile() if args.profile else None

    print(f"Outbox relay throughput, {machine}")
    print(
        f"{'plain moto_server' if args.plain_moto else 'moto server (lazy queue attributes)'} in its own process "
        f"on 127.0.0.1; {database}"
    )
    print(
        f"{args.messages} messages per run, each a {bench.body_size}-byte JSON body + 3 string attributes "
        f"({bench.message_size} bytes as SQS counts), {BATCH} per send_message_batch; {args.rounds} rounds, "
        "baseline and relay interleaved, median round shown; CPU: ms per message of this process (boto3, Django, "
        "and SQLite when it is the database) and of the moto server"
    )
    print(f"{'queue':<9} {'sender':<46} {'msg/s':>8} {'ratio':>6} {'ms/msg':>7} {'CPU here':>9} {'CPU moto':>9}")
    for kind, (baseline, relay) in results.items():
        for side in (baseline, relay):
            at = side.median_round()
            print(
                f"{kind:<9} {side.label:<46} {side.rate():>8.1f} {side.rate() / baseline.rate():>6.2f} "
                f"{1000 / side.rate():>7.3f} {1000 * side.client_cpu[at]:>9.3f} {1000 * side.server_cpu[at]:>9.3f}"
            )
        overhead = 1000 / relay.rate() - 1000 / baseline.rate()
        print(f"{kind:<9} relay overhead per message: {overhead:.3f} ms (target ratio >= {TARGET_RATIO})")
    if profile is not None:
        print(profile)
    elif any(relay.rate() / baseline.rate() < TARGET_RATIO for baseline, relay in results.values()):
        print(f"A ratio is under {TARGET_RATIO}: run with --profile to see where the relay's time goes.")


class RelayBench:
    def __init__(self, *, endpoint: str, moto_pid: int, messages: int) -> None:
        self.moto_pid = moto_pid
        self.count = messages
        self.run_number = 0
        # The same client configuration as the portal's publisher (uploads/queue/sqs.py).
        config = Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 2, "mode": "standard"})
        self.client: SQSClient = boto3.session.Session().client(
            "sqs", region_name=REGION, endpoint_url=endpoint, config=config
        )
        sample = _messages(1, run="size", fifo=False)[0]
        self.body_size, self.message_size = len(sample.encoded.encode()), sample.size

    def measure(self, *, fifo: bool, rounds: int) -> tuple[Side, Side]:
        baseline = Side("boto3 send_message_batch loop (baseline)")
        relay = Side(f"outbox_relay(limit={self.count})")
        # Warm-up: boto3's clients (the publisher's is cached per queue URL), SQL compilation.
        self._run(baseline, fifo=fifo, count=10 * BATCH, prepare=self._prepare_baseline, record=False)
        self._run(relay, fifo=fifo, count=10 * BATCH, prepare=self._prepare_relay, record=False)
        for _ in range(rounds):
            self._run(baseline, fifo=fifo, count=self.count, prepare=self._prepare_baseline)
            self._run(relay, fifo=fifo, count=self.count, prepare=self._prepare_relay)
        return baseline, relay

    def profile(self) -> str:
        """One more relay run on the standard queue, under cProfile: the portal's own functions by
        cumulative time (where the run goes), then the costliest functions by their own time."""
        profiler = cProfile.Profile()

        def prepare(queue_url: str, messages: list[Message]) -> tuple[Callable[[], None], Callable[[], None]]:
            go, after = self._prepare_relay(queue_url, messages)
            return lambda: profiler.runcall(go), after

        self._run(Side("profiled relay"), fifo=False, count=self.count, prepare=prepare, record=False)
        sections: list[tuple[str, str, tuple[str | int, ...]]] = [
            ("the portal's own functions, by cumulative time", "cumulative", (r"/(uploads|portal)/", 20)),
            ("every function, by own time", "tottime", (20,)),
        ]
        report = []
        for title, order, restrictions in sections:
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out).sort_stats(order)
            stats.print_stats(*restrictions)
            text = out.getvalue().replace(str(ROOT) + "/", "").replace(str(Path(pstats.__file__).parent) + "/", "")
            report.append(f"--- cProfile of one relay run of {self.count} messages: {title} ---\n{text.lstrip()}")
        return "\n".join(report)

    # --- one run ---------------------------------------------------------------------------
    def _run(self, side: Side, *, fifo: bool, count: int, prepare: Prepare, record: bool = True) -> None:
        """Sends `count` fresh messages into a freshly created queue, timing only the sending,
        checks the queue holds exactly them, and drops the queue."""
        from django.test.utils import override_settings

        self.run_number += 1
        messages = _messages(count, run=f"r{self.run_number}", fifo=fifo)
        queue_url = self._create_queue(fifo=fifo)
        try:
            with override_settings(SQS_QUEUE_URL=queue_url):
                go, after = prepare(queue_url, messages)
                cpu_before, moto_before = time.process_time(), cpu_seconds(self.moto_pid)
                started = time.perf_counter()
                go()
                seconds = time.perf_counter() - started
                cpu, moto_cpu = time.process_time() - cpu_before, cpu_seconds(self.moto_pid) - moto_before
                after()
            self._check_queue(queue_url, messages)
        finally:
            self.client.delete_queue(QueueUrl=queue_url)
        if record:
            side.rates.append(count / seconds)
            side.client_cpu.append(cpu / count)
            side.server_cpu.append(moto_cpu / count)

    def _prepare_baseline(
        self, queue_url: str, messages: list[Message]
    ) -> tuple[Callable[[], None], Callable[[], None]]:
        """The entries are built before the clock starts: the baseline is the sending alone."""
        fifo = queue_url.endswith(".fifo")
        batches = [
            [_entry(str(index), message, fifo=fifo) for index, message in enumerate(messages[start : start + BATCH])]
            for start in range(0, len(messages), BATCH)
        ]

        def go() -> None:
            for entries in batches:
                response = self.client.send_message_batch(QueueUrl=queue_url, Entries=entries)
                if response.get("Failed"):
                    raise BenchError(f"the baseline's batch failed: {response['Failed']}")

        return go, lambda: None

    def _prepare_relay(self, queue_url: str, messages: list[Message]) -> tuple[Callable[[], None], Callable[[], None]]:
        """The rows are bulk-created before the clock starts; afterwards every one must be sent."""
        from django.db.models import Count

        from uploads.models import OutboxMessage
        from uploads.services.outbox import outbox_relay

        keys = [f"processing:{message.body['trackingId']}:0" for message in messages]
        OutboxMessage.objects.bulk_create(
            OutboxMessage(
                topic=OutboxMessage.Topic.PROCESSING,
                dedup_key=key,
                submission=None,
                body=message.body,
                attributes=message.attributes,
                group_id=message.group_id,
                deduplication_id=message.deduplication_id,
            )
            for key, message in zip(keys, messages, strict=True)
        )

        def go() -> None:
            sent = outbox_relay(limit=len(messages))
            if sent != len(messages):
                raise BenchError(f"outbox_relay sent {sent} messages, expected {len(messages)}")

        def after() -> None:
            rows = OutboxMessage.objects.all()
            by_status = dict(rows.values_list("status").annotate(n=Count("pk")).order_by())
            if by_status != {OutboxMessage.Status.SENT: len(messages)}:
                raise BenchError(f"after the relay, the rows are {by_status}, expected {len(messages)} sent")
            rows.delete()  # every run starts from an empty table

        return go, after

    # --- helpers ---------------------------------------------------------------------------
    def _create_queue(self, *, fifo: bool) -> str:
        name = "bench-processing.fifo" if fifo else "bench-processing"
        attributes: dict[QueueAttributeNameType, str] = (
            {"FifoQueue": "true", "ContentBasedDeduplication": "false"} if fifo else {}
        )
        return self.client.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]

    def _check_queue(self, queue_url: str, messages: list[Message]) -> None:
        """Exactly the messages sent, and the first one byte for byte (body and attributes)."""
        attributes = self.client.get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        held = int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])
        if held != len(messages):
            raise BenchError(f"the queue holds {held} messages, expected {len(messages)}")
        received = self.client.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=1, MessageAttributeNames=["All"], AttributeNames=["All"]
        )["Messages"][0]
        expected = {m.encoded: m for m in messages}.get(received["Body"])
        if expected is None:
            raise BenchError(f"the queue holds a message that was not sent: {received['Body'][:300]!r}")
        got = {name: value["StringValue"] for name, value in received.get("MessageAttributes", {}).items()}
        if got != expected.attributes:
            raise BenchError(f"message attributes {got}, expected {expected.attributes}")
        if queue_url.endswith(".fifo") and received["Attributes"]["MessageGroupId"] != expected.group_id:
            raise BenchError(f"MessageGroupId {received['Attributes']['MessageGroupId']}, expected {expected.group_id}")


def _messages(count: int, *, run: str, fifo: bool) -> list[Message]:
    """`count` processing requests, unique per run (FIFO deduplication ids included)."""
    messages = []
    for index in range(count):
        tenant = f"tenant_{index % 7:03d}"
        artisan = f"artisan_{index % 97:05d}"
        tracking = f"trk_{run}_{index:06d}_{secrets.token_hex(6)}"
        prefix = f"s3://catalog-raw-media-ap-south-1/{tenant}/{artisan}/{tracking}"
        body = {
            "trackingId": tracking,
            "tenantId": tenant,
            "artisanId": artisan,
            "photoKey": f"{prefix}/med_{secrets.token_hex(8)}.jpg",
            "audioKey": f"{prefix}/med_{secrets.token_hex(8)}.wav",
            "language": "hi",
            "priority": "normal",
            "timestamp": "2026-11-28T10:15:42.123456Z",
        }
        messages.append(
            Message(
                body=body,
                encoded=json.dumps(body, separators=(",", ":"), sort_keys=True),  # as QueueMessage encodes it
                attributes={"tenantId": tenant, "language": "hi", "priority": "normal"},
                group_id=tenant if fifo else "",
                deduplication_id=hashlib.sha256(f"{tracking}|{tenant}|{artisan}".encode()).hexdigest() if fifo else "",
            )
        )
    return messages


def _entry(entry_id: str, message: Message, *, fifo: bool) -> "SendMessageBatchRequestEntryTypeDef":
    entry: SendMessageBatchRequestEntryTypeDef = {
        "Id": entry_id,
        "MessageBody": message.encoded,
        "MessageAttributes": {
            name: {"DataType": "String", "StringValue": value} for name, value in message.attributes.items()
        },
    }
    if fifo:
        entry["MessageGroupId"] = message.group_id
        entry["MessageDeduplicationId"] = message.deduplication_id
    return entry


# --- environment -----------------------------------------------------------------------------
@contextmanager
def moto_server(tmp: Path, *, plain: bool) -> Iterator[tuple[str, int]]:
    """A moto server process on a free 127.0.0.1 port: its endpoint URL and pid. `plain`: the
    `moto_server` command itself; else this script in its server mode (see serve_moto)."""
    port = _free_port()
    log_path = tmp / "moto.log"
    if plain:
        command = [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    else:
        command = [sys.executable, str(Path(__file__).resolve()), "--serve-moto", str(port)]
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            command,
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
        yield f"http://127.0.0.1:{port}", server.pid
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def serve_moto(port: int) -> None:
    """`moto_server -H 127.0.0.1 -p PORT` with two changes that leave every answer as it was:
    queue attributes are computed when read (see _LazyQueueAttributes), and werkzeug does not log
    each request."""
    import logging

    from moto.server import main as moto_main
    from moto.sqs.models import Queue

    if not isinstance(getattr(Queue, "attributes", None), property) or not hasattr(Queue, "BASE_ATTRIBUTES"):
        raise BenchError("this moto's sqs Queue has no `attributes` property to patch: run with --plain-moto")
    Queue.attributes = property(_LazyQueueAttributes)  # type: ignore[method-assign, assignment]
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    moto_main(["-H", "127.0.0.1", "-p", str(port)])


class _LazyQueueAttributes(Mapping[str, Any]):
    """moto (5.x) builds a queue's attributes as one dict whose three message counts each scan
    every message in the queue, and reads it up to four times per message sent, only for
    ContentBasedDeduplication: a send costs O(queue depth), 6 ms a message at depth 200 and
    78 ms at depth 2000 on a 2-core VM, so sending N messages costs O(N²) and the server, not
    the sender, would be the measure. Real SQS has no such cost. This
    mapping has the same keys and values as moto's dict, each computed when read."""

    def __init__(self, queue: Any) -> None:
        self.queue = queue
        names = [*queue.BASE_ATTRIBUTES]
        if queue.fifo_queue:
            names += queue.FIFO_ATTRIBUTES
        if queue.kms_master_key_id:
            names += queue.KMS_ATTRIBUTES
        self.names = dict.fromkeys(names)

    def __getitem__(self, name: str) -> Any:
        if name not in self.names:
            raise KeyError(name)
        if name == "RedrivePolicy" and self.queue.redrive_policy:
            return json.dumps(self.queue.redrive_policy)
        value = getattr(self.queue, _attribute(name))
        return str(value).lower() if isinstance(value, bool) else value

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)


@functools.cache
def _attribute(name: str) -> str:
    from moto.core.utils import camelcase_to_underscores

    return str(camelcase_to_underscores(name))


def _configure_environment(tmp: Path, endpoint: str) -> None:
    """The portal's settings read the environment once, at django.setup()."""
    for name in _NOT_HERE:
        os.environ.pop(name, None)
    data_dir = tmp / "data"
    data_dir.mkdir()
    os.environ.update(
        PORTAL_DATA_DIR=str(data_dir),
        DJANGO_SETTINGS_MODULE="bench.settings_bench",
        SECRET_KEY=secrets.token_urlsafe(50),
        DEBUG="0",  # DEBUG keeps every SQL query in memory
        LOG_LEVEL="WARNING",
        # Nothing is published on commit (the rows are bulk-created; the relay publishes no task).
        CELERY_BROKER_URL="memory://",
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_SESSION_TOKEN="testing",
        AWS_REGION=REGION,
        AWS_DEFAULT_REGION=REGION,
        # A developer's ~/.aws files (retry mode, profiles) must not change the figures.
        AWS_CONFIG_FILE=str(tmp / "aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp / "aws-credentials"),
    )
    sys.path.insert(0, str(ROOT))


@contextmanager
def portal_database() -> Iterator[str]:
    """A migrated, empty database, and how to describe it: the embedded SQLite of the temporary
    data dir, or a throwaway test database beside the one DATABASE_URL names, never that one."""
    from django.core.management import call_command
    from django.db import connection

    if not os.environ.get("DATABASE_URL"):
        call_command("migrate", verbosity=0, interactive=False)
        yield "SQLite (WAL) in a temporary data dir"
        return
    if connection.vendor == "sqlite":
        raise BenchError("DATABASE_URL names a SQLite file: unset it to measure the embedded SQLite")
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)  # migrates it
    try:
        settings = connection.settings_dict
        version = getattr(connection, "pg_version", 0) // 10000 or ""
        where = f"{settings.get('HOST') or 'local socket'}:{settings.get('PORT') or 'default port'}"
        yield f"{connection.display_name} {version} at {where}, throwaway database {settings['NAME']}"
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


if __name__ == "__main__":
    main()
