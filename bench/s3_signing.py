"""Per-URL cost of signing S3 UploadPart URLs: boto3's generate_presigned_url('upload_part') against
the portal's presigner (uploads.storage.s3_signing), in the same run, against issue 12's target
(at least 10 times faster), with every URL of the run checked to be byte-identical to boto3's.

    .venv/bin/python bench/s3_signing.py [--count 2000] [--rounds 5] [--no-token]

The client is configured as S3Storage configures it on AWS (SigV4, the regional virtual host,
ap-south-1) with an instance role's kind of credentials (a session token of ~1 kB) unless
--no-token. The URLs are signed as POST .../parts signs them: batches of 10 part numbers of one
upload (key and upload id change every 10 URLs), 8 MiB parts, 900 s expiry. No network: signing
is local on both sides.

Both clocks are frozen at the run's start, so that every URL can be compared with its twin; that
spares boto3 its clock read (about 1 µs), which only lowers the ratio. Rounds interleave the two
signers and alternate which goes first; the figures are the median round."""

import argparse
import datetime as dt
import gc
import statistics
import sys
import time
from collections.abc import Callable
from unittest import mock

import boto3
import botocore.auth
from botocore.config import Config
from harness import ROOT, BenchError, machine_summary

sys.path.insert(0, str(ROOT))

from uploads.storage.s3_signing import S3Presigner

TARGET = 10.0
BUCKET = "raw-media-bench"
REGION = "ap-south-1"
PART_SIZE = 8 * 1024 * 1024
EXPIRES_IN = 900
BATCH = 10
SESSION_TOKEN = ("IQoJb3JpZ2luX2VjEJr//////////wEaCmFwLXNvdXRoLTEiRzBFAiEA+example/token==" * 14)[:1000]

Call = tuple[str, str, int]  # key, upload id, part number


def workload(count: int) -> list[Call]:
    calls = []
    for i in range(count):
        upload = i // BATCH
        key = f"tenant_{upload % 7}/artisan_{upload % 13}/trk_{upload:024x}/med_{upload * 7919:024x}.jpg"
        upload_id = f"{upload:08d}.Xk2bGv7qU1nO-example-upload-id_{upload * 31:016x}"
        calls.append((key, upload_id, (upload * BATCH) % 9990 + i % BATCH + 1))
    return calls


def sign_all(sign: Callable[[str, str, int], str], calls: list[Call]) -> tuple[float, list[str]]:
    """Seconds to sign every call, and the URLs."""
    gc.collect()
    started = time.perf_counter()
    urls = [sign(key, upload_id, number) for key, upload_id, number in calls]
    return time.perf_counter() - started, urls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=2000, help="URLs per signer per round (default 2000)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--no-token", action="store_true", help="long-lived keys, without a session token")
    args = parser.parse_args()
    if args.count < 1 or args.rounds < 1:
        raise BenchError("--count and --rounds must be at least 1")
    machine = machine_summary()

    client = boto3.client(
        "s3",
        region_name=REGION,
        aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        aws_session_token=None if args.no_token else SESSION_TOKEN,
        config=Config(s3={"addressing_style": "virtual"}, signature_version="s3v4"),
    )
    now = time.time()
    naive_utc_now = dt.datetime.fromtimestamp(now, dt.UTC).replace(tzinfo=None)
    presigner = S3Presigner(client, BUCKET, clock=lambda: now)
    calls = workload(args.count)

    def boto3_sign(key: str, upload_id: str, number: int) -> str:
        params = {"Bucket": BUCKET, "Key": key, "UploadId": upload_id, "PartNumber": number, "ContentLength": PART_SIZE}
        return client.generate_presigned_url("upload_part", Params=params, ExpiresIn=EXPIRES_IN)

    def our_sign(key: str, upload_id: str, number: int) -> str:
        return presigner.upload_part(
            key=key, upload_id=upload_id, part_number=number, size=PART_SIZE, expires_in=EXPIRES_IN
        )

    seconds: dict[str, list[float]] = {"boto3": [], "ours": []}
    compared = different = 0
    with mock.patch.object(botocore.auth, "get_current_datetime", lambda *_, **__: naive_utc_now):
        if not presigner.active:
            raise BenchError("the presigner's probes differ from boto3 here: every URL would be boto3's")
        for round_number in range(args.rounds):
            order = [("boto3", boto3_sign), ("ours", our_sign)]
            urls: dict[str, list[str]] = {}
            for name, sign in order if round_number % 2 == 0 else order[::-1]:
                elapsed, urls[name] = sign_all(sign, calls)
                seconds[name].append(elapsed)
            compared += len(calls)
            different += sum(a != b for a, b in zip(urls["boto3"], urls["ours"], strict=True))

    per_url = {name: [1e6 * s / args.count for s in rounds] for name, rounds in seconds.items()}
    boto3_us, our_us = statistics.median(per_url["boto3"]), statistics.median(per_url["ours"])
    speedup = boto3_us / our_us
    credentials = "long-lived keys" if args.no_token else "session token"
    print(f"S3 part URL signing, {machine}")
    print(
        f"  {args.count} UploadPart URLs per signer per round, {args.rounds} interleaved rounds, batches of {BATCH} "
        f"parts, {credentials}, {REGION} virtual host"
    )
    for name, label in (("boto3", "boto3 generate_presigned_url"), ("ours", "uploads.storage.s3_signing")):
        low, high = min(per_url[name]), max(per_url[name])
        print(f"  {label:<30} {statistics.median(per_url[name]):8.2f} µs/URL  (rounds {low:.2f}–{high:.2f})")
    identical = "byte-identical" if different == 0 else f"{different} DIFFERENT"
    verdict = "met" if speedup >= TARGET and different == 0 else "NOT MET"
    print(
        f"S3 part URL signing, per URL: {boto3_us:.1f} µs (boto3) vs {our_us:.2f} µs, speed-up {speedup:.1f}× "  # noqa: RUF001
        f"(target ≥ {TARGET:g}×) {verdict}; {compared} URLs compared, {identical}"  # noqa: RUF001
    )
    if different:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
