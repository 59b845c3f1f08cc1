"""Mirror writes per second that the outbox relay (`outbox_relay`, through the mirror channel
`mirror_send`) makes into DynamoDB on a moto server, as a ratio to a plain boto3 loop making the
same `UpdateItem` calls (same keys, same SETs, same condition, same order) against the same
server, in the same run.

    .venv/bin/python bench/mirror_throughput.py [--rows 2000] [--rounds 3] [--profile]

The rows are the portal's own: its services (media_initiate, media_record_part) start submissions
and record parts, with the mirror on and delivery after commit switched off, so each state change
leaves its mirror row in the outbox, unsent. The server is moto's ThreadedMotoServer on a free
127.0.0.1 port, in this process. The database is as in relay_throughput.py: the embedded SQLite in
a temporary data dir, or a throwaway `test_…` database beside the one DATABASE_URL names.

Each round runs the baseline, then the relay, each into freshly created tables (so every write
finds its item at an older version or absent, as in production, and none is a failed condition),
then checks that every item holds exactly the latest state Django has; the relay's rows are then
set pending again for the next round. The median round is shown. A violated check exits non-zero.
`--profile` adds one relay run under cProfile."""

import argparse
import cProfile
import io
import logging
import os
import pstats
import secrets
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from boto3.dynamodb.types import TypeSerializer
from botocore.config import Config
from botocore.exceptions import ClientError
from harness import BenchError, machine_summary
from relay_throughput import Side, portal_database

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from uploads.dynamodb import Tables

ROOT = Path(__file__).resolve().parent.parent
REGION = "ap-south-1"
TARGET_RATIO = 0.7
MIB = 1024 * 1024
WARM_UP = 100  # writes per side before the measured rounds
# Variables that would send the portal's files or messages elsewhere, or change boto3's behaviour.
_NOT_HERE = (
    "S3_RAW_MEDIA_BUCKET",
    "SQS_QUEUE_URL",
    "SQS_STATUS_QUEUE_URL",
    "DYNAMODB_UPLOAD_STATE_TABLE",
    "AWS_PROFILE",
)
# One row's write: which table ("catalog" or "uploadState"), its key, the attributes it SETs.
Write = tuple[str, dict[str, str], dict[str, Any]]
# A side's preparation of a run, out of the clock: what to time, then what to check after it.
Prepare = Callable[["Tables", int], tuple[Callable[[], None], Callable[[], None]]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2000, help="mirror rows per run, at least (default 2000)")
    parser.add_argument("--rounds", type=int, default=3, help="baseline + relay rounds (default 3)")
    parser.add_argument("--profile", action="store_true", help="profile one extra relay run")
    args = parser.parse_args()
    if args.rows < 10:
        parser.error("--rows must be at least 10")
    machine = machine_summary()

    with tempfile.TemporaryDirectory(prefix="mirror-bench-") as tmp, moto_server() as endpoint:
        _configure_environment(Path(tmp), endpoint)
        import django

        django.setup()
        with portal_database() as database:
            bench = MirrorBench(endpoint=endpoint, rows=args.rows)
            baseline, relay = bench.measure(rounds=args.rounds)
            profile = bench.profile() if args.profile else None

    ratio = relay.rate() / baseline.rate()
    print(f"Mirror relay throughput, {machine}")
    print(f"moto ThreadedMotoServer in this process on 127.0.0.1; {database}")
    print(
        f"{bench.count} mirror rows per run made by the portal's services ({bench.mix}); {args.rounds} rounds, "
        "baseline and relay interleaved, each into fresh tables, median round shown; CPU: ms per write of this "
        "process's main thread (boto3, Django, and SQLite when it is the database) and of moto's threads; CPU ratio: "
        "the baseline's CPU per write (both together) over this side's"
    )
    print(
        f"{'sender':<40} {'writes/s':>9} {'ratio':>6} {'ms/write':>9} {'CPU here':>9} {'CPU moto':>9} {'CPU ratio':>10}"
    )
    for side in (baseline, relay):
        at, cpu_ratio = side.median_round(), _cpu(baseline) / _cpu(side)
        print(
            f"{side.label:<40} {side.rate():>9.1f} {side.rate() / baseline.rate():>6.2f} {1000 / side.rate():>9.3f} "
            f"{1000 * side.client_cpu[at]:>9.3f} {1000 * side.server_cpu[at]:>9.3f} {cpu_ratio:>10.2f}"
        )
    overhead, cpu_overhead = 1000 / relay.rate() - 1000 / baseline.rate(), 1000 * (_cpu(relay) - _cpu(baseline))
    verdict = "PASS" if ratio >= TARGET_RATIO else "BELOW"
    print(f"relay overhead per write: {overhead:.3f} ms of wall time, {cpu_overhead:.3f} ms of CPU")
    print(f"rows {bench.count}: relay/baseline writes/s ratio {ratio:.2f}, target >= {TARGET_RATIO}: {verdict}")
    print("every run: each item holds exactly Django's latest state (owned attributes, version)")
    if profile is not None:
        print(profile)
    elif verdict == "BELOW":
        print("Run with --profile to see where the relay's time goes.")


class MirrorBench:
    def __init__(self, *, endpoint: str, rows: int) -> None:
        from uploads.services.outbox import outbox_set_scheduler

        # The same client configuration as the portal's (uploads/dynamodb.py), its own instance.
        config = Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 2, "mode": "standard"})
        self.client: DynamoDBClient = boto3.session.Session().client(
            "dynamodb", region_name=REGION, endpoint_url=endpoint, config=config
        )
        self.run_number = 0
        self.baseline_calls: list[dict[str, Any]] = []  # the last baseline run's, tables by role
        self.relay_tables: Tables | None = None  # the last relay run's
        # Rows stay in the outbox for the relay to send: no delivery task after commit.
        outbox_set_scheduler(lambda message_id: None)
        self.writes = produce_rows(rows)
        self.count = len(self.writes)
        self.expected = latest_states()
        per_item = Counter((table, tuple(key.values())) for table, key, _ in self.writes)
        tables = Counter(table for table, _, _ in self.writes)
        self.mix = (
            f"{tables['catalog']} catalog, {tables['uploadState']} upload-state writes to {len(per_item)} items, "
            f"{min(per_item.values())} to {max(per_item.values())} versions each"
        )

    def measure(self, *, rounds: int) -> tuple[Side, Side]:
        baseline = Side("boto3 update_item loop (baseline)")
        relay = Side(f"outbox_relay(limit={self.count})")
        # Warm-up on the first rows (boto3's clients, SQL compilation), and proof that both sides
        # make the same calls: the relay's, as its client sends them, against the baseline's.
        warm_up = min(WARM_UP, self.count)
        relay_calls = self._capture_calls(lambda: self._run(relay, count=warm_up, prepare=self._prepare_relay))
        self._run(baseline, count=warm_up, prepare=self._prepare_baseline)
        assert self.relay_tables is not None
        if [_by_role(call, self.relay_tables) for call in relay_calls] != self.baseline_calls:
            raise BenchError("the relay's UpdateItem calls differ from the baseline's")
        for _ in range(rounds):
            self._run(baseline, count=self.count, prepare=self._prepare_baseline)
            self._run(relay, count=self.count, prepare=self._prepare_relay)
        return baseline, relay

    def profile(self) -> str:
        """One more relay run under cProfile: the portal's own functions by cumulative time, then
        the costliest functions by their own time."""
        profiler = cProfile.Profile()

        def prepare(tables: "Tables", count: int) -> tuple[Callable[[], None], Callable[[], None]]:
            go, after = self._prepare_relay(tables, count)
            return lambda: profiler.runcall(go), after

        self._run(Side("profiled relay"), count=self.count, prepare=prepare)
        sections: list[tuple[str, str, tuple[str | int, ...]]] = [
            ("the portal's own functions, by cumulative time", "cumulative", (r"/(uploads|portal)/", 20)),
            ("every function, by own time", "tottime", (25,)),
        ]
        report = []
        for title, order, restrictions in sections:
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(*restrictions)
            text = out.getvalue().replace(str(ROOT) + "/", "").replace(str(Path(pstats.__file__).parent) + "/", "")
            report.append(f"--- cProfile of one relay run of {self.count} rows: {title} ---\n{text.lstrip()}")
        return "\n".join(report)

    # --- one run ---------------------------------------------------------------------------
    def _run(self, side: Side, *, count: int, prepare: Prepare) -> None:
        """Makes the first `count` writes into freshly created tables, timing only the writing,
        and drops the tables. A full run (all the writes) is recorded, after checking that each
        item holds Django's latest state; a shorter one is a warm-up."""
        from django.test.utils import override_settings

        from uploads.dynamodb import Tables, create_tables

        self.run_number += 1
        tables = Tables(catalog=f"bench_catalog_{self.run_number}", upload_state=f"bench_upload_{self.run_number}")
        create_tables(tables)
        try:
            with override_settings(
                DYNAMODB_CATALOG_TABLE=tables.catalog, DYNAMODB_UPLOAD_STATE_TABLE=tables.upload_state
            ):
                go, after = prepare(tables, count)
                cpu_before, here_before = time.process_time(), time.thread_time()
                started = time.perf_counter()
                go()
                seconds = time.perf_counter() - started
                here = time.thread_time() - here_before
                moto = time.process_time() - cpu_before - here
                after()
            if count == self.count:
                self._check_tables(tables)
        finally:
            for name in (tables.catalog, tables.upload_state):
                self.client.delete_table(TableName=name)
        if count == self.count:
            side.rates.append(count / seconds)
            side.client_cpu.append(here / count)
            side.server_cpu.append(moto / count)

    def _prepare_baseline(self, tables: "Tables", count: int) -> tuple[Callable[[], None], Callable[[], None]]:
        """The requests are built before the clock starts: the baseline is the calls alone."""
        names = {"catalog": tables.catalog, "uploadState": tables.upload_state}
        requests = [update_item_request(names[table], key, item) for table, key, item in self.writes[:count]]
        self.baseline_calls = [_by_role(request, tables) for request in requests]

        def go() -> None:
            for request in requests:
                try:
                    self.client.update_item(**request)
                except ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                        raise

        return go, lambda: None

    def _prepare_relay(self, tables: "Tables", count: int) -> tuple[Callable[[], None], Callable[[], None]]:
        """The rows the services wrote, all pending again, in their order (their original due
        times); the relay sends the first `count`, which must then be sent."""
        from django.db.models import Count

        from uploads.models import OutboxMessage
        from uploads.services.outbox import outbox_relay

        rows = OutboxMessage.objects.filter(topic=OutboxMessage.Topic.MIRROR)
        rows.update(
            status=OutboxMessage.Status.PENDING,
            attempts=0,
            claim_token="",
            claimed_at=None,
            sent_at=None,
            last_error="",
        )
        self.relay_tables = tables

        def go() -> None:
            sent = outbox_relay(limit=count)
            if sent != count:
                raise BenchError(f"outbox_relay sent {sent} rows, expected {count}")

        def after() -> None:
            by_status = dict(rows.values_list("status").annotate(n=Count("pk")).order_by())
            expected = {OutboxMessage.Status.SENT: count, OutboxMessage.Status.PENDING: self.count - count}
            if by_status != {status: n for status, n in expected.items() if n}:
                raise BenchError(f"after the relay, the rows are {by_status}, expected {count} sent")

        return go, after

    # --- checks ----------------------------------------------------------------------------
    def _check_tables(self, tables: "Tables") -> None:
        """Each table holds exactly one item per submission or file, with Django's latest state."""
        from uploads.dynamodb import scan_pages

        for role, name in (("catalog", tables.catalog), ("uploadState", tables.upload_state)):
            held = {
                (role, tuple(_key_of(role, item).values())): item for page in scan_pages(table=name) for item in page
            }
            expected = {ident: state for ident, state in self.expected.items() if ident[0] == role}
            if held.keys() != expected.keys():
                missing, extra = len(expected.keys() - held.keys()), len(held.keys() - expected.keys())
                raise BenchError(f"table {role}: {missing} items missing, {extra} not expected")
            for ident, state in expected.items():
                if held[ident] != state:
                    raise BenchError(f"{ident} holds {held[ident]}, expected Django's latest {state}")

    def _capture_calls(self, run: Callable[[], None]) -> list[dict[str, Any]]:
        """The UpdateItem parameters the portal's client sends while `run` runs."""
        from uploads import dynamodb

        calls: list[dict[str, Any]] = []

        def capture(params: dict[str, Any], **kwargs: Any) -> None:
            calls.append(dict(params))

        events = dynamodb.client().meta.events
        events.register("provide-client-params.dynamodb.UpdateItem", capture)
        try:
            run()
        finally:
            events.unregister("provide-client-params.dynamodb.UpdateItem", capture)
        return calls


def produce_rows(count: int) -> list[Write]:
    """Submissions as clients make them: a photo (single PUT) and an audio file (multipart, 1 to
    6 parts of 8 MiB) each, then the audio's parts recorded one by one, until the outbox holds at
    least `count` mirror rows. Each step is one state change: the submission's creation and its
    move to uploading, each file's creation and each recorded part (a new version of the file's
    item). The status updates the stage changes also owe are not this benchmark's: deleted."""
    from tenants.models import Tenant
    from uploads.models import OutboxMessage
    from uploads.services.media import media_initiate, media_record_part

    tenant = Tenant.objects.create(id="tenant_bench", name="Benchmark")
    mirror_rows = OutboxMessage.objects.filter(topic=OutboxMessage.Topic.MIRROR)
    index = 0
    while mirror_rows.count() < count:
        artisan = f"artisan_{index % 97:05d}"
        photo = media_initiate(
            tenant=tenant, artisan_id=artisan, content_type="image/jpeg", file_size=2 * MIB + index, actor="bench"
        )
        tracking_id = photo.media.submission.tracking_id
        parts = 1 + index % 6
        audio = media_initiate(
            tenant=tenant,
            artisan_id=artisan,
            content_type="audio/mpeg",
            file_size=parts * 8 * MIB - 1000,
            part_size=8 * MIB,
            tracking_id=tracking_id,
            actor="bench",
        )
        assert audio.plan is not None
        for number in range(1, audio.plan.part_count + 1):
            etag = f'"{secrets.token_hex(16)}"'
            media_record_part(
                media=audio.media, part_number=number, size=audio.plan.size_of(number), etag=etag, actor="bench"
            )
        index += 1
    OutboxMessage.objects.exclude(topic=OutboxMessage.Topic.MIRROR).delete()
    ordered = mirror_rows.order_by("next_attempt_at", "pk")  # the relay's order
    return [(row.body["table"], row.body["key"], row.body["item"]) for row in ordered]


def latest_states() -> dict[tuple[str, tuple[str, ...]], dict[str, Any]]:
    """Every item as Django now holds it (key and owned attributes), by table and key."""
    from uploads.models import MediaUpload, Submission
    from uploads.services.mirror import catalog_item, catalog_key, upload_state_item, upload_state_key

    states: dict[tuple[str, tuple[str, ...]], dict[str, Any]] = {}
    for submission in Submission.objects.all():
        key = catalog_key(submission)
        states[("catalog", tuple(key.values()))] = {**key, **catalog_item(submission)}
    for media in MediaUpload.objects.select_related("submission"):
        key = upload_state_key(media)
        states[("uploadState", tuple(key.values()))] = {**key, **upload_state_item(media)}
    return states


_serializer = TypeSerializer()


def update_item_request(table: str, key: dict[str, str], attributes: dict[str, Any]) -> dict[str, Any]:
    """What a simple client sends to write `attributes` unless the item is already at this
    version or a newer one: SET of each attribute, conditional on the version."""
    names = {f"#a{i}": name for i, name in enumerate(attributes)}
    version = next(alias for alias, name in names.items() if name == "version")
    return {
        "TableName": table,
        "Key": {name: _serializer.serialize(value) for name, value in key.items()},
        "UpdateExpression": "SET " + ", ".join(f"{alias} = :{alias[1:]}" for alias in names),
        "ConditionExpression": f"attribute_not_exists({version}) OR {version} < :{version[1:]}",
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": {f":a{i}": _serializer.serialize(v) for i, v in enumerate(attributes.values())},
    }


def _cpu(side: Side) -> float:
    """CPU seconds per write, this process's threads together (median round): unlike the wall
    time, not moved by other processes' load on the machine."""
    return statistics.median(here + moto for here, moto in zip(side.client_cpu, side.server_cpu, strict=True))


def _by_role(request: dict[str, Any], tables: "Tables") -> dict[str, Any]:
    role = "catalog" if request["TableName"] == tables.catalog else "uploadState"
    return {**request, "TableName": role}


def _key_of(role: str, item: dict[str, Any]) -> dict[str, str]:
    return {"trackingId": item["trackingId"], **({"mediaId": item["mediaId"]} if role == "uploadState" else {})}


# --- environment -----------------------------------------------------------------------------
@contextmanager
def moto_server() -> Iterator[str]:
    """moto's ThreadedMotoServer on a free 127.0.0.1 port, in this process: its endpoint URL."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def _configure_environment(tmp: Path, endpoint: str) -> None:
    """The portal's settings read the environment once, at django.setup(): the mirror on, on
    the moto server; files and queues embedded."""
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
        CELERY_BROKER_URL="memory://",  # nothing is published: the scheduler is switched off
        DYNAMODB_CATALOG_TABLE="bench_catalog",  # the mirror on; each run names its own tables
        AWS_ENDPOINT_URL=endpoint,
        AWS_ENDPOINT_URL_DYNAMODB=endpoint,
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


if __name__ == "__main__":
    main()
