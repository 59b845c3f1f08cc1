"""`python -m uploads.client`: upload a submission, follow its stage, resume, abort."""

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from uploads.client import errors
from uploads.client.client import FINAL_STAGES, CatalogClient
from uploads.client.display import Display
from uploads.client.errors import CatalogError
from uploads.client.results import UploadResult
from uploads.client.state import StateFile, default_state_dir, unfinished

EXIT_CODES = f"""exit status:
  {errors.EXIT_OK}    done
  {errors.EXIT_UNEXPECTED}    an unexpected error (a bug: please report it with -v's output)
  {errors.EXIT_USAGE}    bad usage: an unknown option, a missing file, no URL or key
  {errors.EXIT_REFUSED}    the portal refused the request (4xx: invalid input, unsupported type, too large,
       quota, not found); the message says why; rerunning will not help
  {errors.EXIT_AUTH}    the API key is missing, wrong, revoked, or not allowed to do this (401/403)
  {errors.EXIT_UNREACHABLE}    the portal or storage did not answer after every retry: run the same command
       again later, it resumes where it stopped
  {errors.EXIT_INTEGRITY}    a file changed while it was uploaded, or storage kept other bytes than the
       file's after every retry; nothing wrong was completed
  {errors.EXIT_SUBMISSION_FAILED}    --wait/--watch: the submission ended failed, aborted or expired
  {errors.EXIT_INTERRUPTED}  interrupted (Ctrl-C): run the same command again to resume
"""

DESCRIPTION = """Upload a product photo and its spoken description to the catalog portal, resumably.

An interrupted upload (Ctrl-C, a lost network, a kill, a reboot) resumes when the same command
runs again: a state file (under --state-dir) remembers the upload, the portal says which parts
storage already holds, and only the rest is sent. Every part is checked against storage's
ETag (its MD5) and sent again if storage holds other bytes."""

EXAMPLES = """examples:
  export CATALOG_API_URL=https://portal.example.com CATALOG_API_KEY=...
  python -m uploads.client upload vase.jpg vase.m4a --artisan art_17 --language hi --wait queued
  python -m uploads.client status trk_0123abcd --watch
  python -m uploads.client resume             # every unfinished upload in the state directory
  python -m uploads.client abort med_4567ef
"""


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("connection and behaviour")
    group.add_argument("--url", default=os.environ.get("CATALOG_API_URL"), help="the portal (env CATALOG_API_URL)")
    group.add_argument(
        "--key",
        default=os.environ.get("CATALOG_API_KEY"),
        help="the API key (env CATALOG_API_KEY, which keeps it out of the process list)",
    )
    group.add_argument("--json", action="store_true", help="print one JSON object on stdout; no progress display")
    group.add_argument("--concurrency", type=int, default=4, metavar="N", help="parts sent at once (default 4)")
    group.add_argument(
        "--state-dir",
        type=Path,
        default=default_state_dir(),
        metavar="DIR",
        help="where resumable uploads are remembered (env CATALOG_STATE_DIR; default %(default)s)",
    )
    group.add_argument("--retries", type=int, default=8, metavar="N", help="tries again per request (default 8)")
    group.add_argument("--timeout", type=float, default=60.0, metavar="S", help="wait for an answer (default 60 s)")
    group.add_argument("-v", "--verbose", action="store_true", help="log retries and re-sent parts to stderr")

    parser = argparse.ArgumentParser(
        prog="python -m uploads.client",
        description=DESCRIPTION,
        epilog=EXAMPLES + "\n" + EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    upload = commands.add_parser(
        "upload",
        parents=[common],
        help="upload a photo and an audio description as one submission",
        description="Upload PHOTO and AUDIO for an artisan and hand them to processing. Run the same command "
        "again after any interruption to resume.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    upload.add_argument("photo", type=Path, help="the product photo (jpg, png, webp, heic)")
    upload.add_argument("audio", type=Path, help="the spoken description (m4a, mp3, ogg, opus, webm, wav, aac)")
    upload.add_argument("--artisan", required=True, help="the artisan's id")
    upload.add_argument("--language", required=True, help="ISO 639 code of the description (hi, ta, en, ...)")
    upload.add_argument("--priority", default="normal", choices=["low", "normal", "high"])
    upload.add_argument("--tracking-id", help="add to this submission instead of starting a new one")
    upload.add_argument("--part-size", type=int, metavar="BYTES", help="propose a part size (the portal decides)")
    upload.add_argument("--wait", metavar="STAGE", help="then wait until the submission reaches STAGE (e.g. queued)")
    upload.add_argument("--wait-timeout", type=float, default=600.0, metavar="S", help="for --wait (default 600)")

    status = commands.add_parser(
        "status",
        parents=[common],
        help="show a submission's stage and files",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    status.add_argument("tracking_id", metavar="TRACKING_ID")
    status.add_argument("--watch", action="store_true", help="follow the stage until it is final")
    status.add_argument("--interval", type=float, default=2.0, metavar="S", help="for --watch (default 2 s)")

    resume = commands.add_parser(
        "resume",
        parents=[common],
        help="finish interrupted uploads",
        description="Finish the upload a state file remembers, or, without one, every unfinished upload in the "
        "state directory (oldest first).",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    resume.add_argument("state", nargs="?", type=Path, metavar="STATE", help="a state file (upload-*.json)")

    abort = commands.add_parser(
        "abort",
        parents=[common],
        help="abort an unfinished upload and free its storage",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    abort.add_argument("media_id", metavar="MEDIA_ID")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.ERROR, format="%(levelname)s %(message)s", stream=sys.stderr
    )
    if not args.url or not args.key:
        parser.error("the portal's --url and --key are needed (or CATALOG_API_URL and CATALOG_API_KEY)")
    if args.concurrency < 1 or args.retries < 0:
        parser.error("--concurrency must be at least 1 and --retries at least 0")
    client = CatalogClient(
        args.url,
        args.key,
        concurrency=args.concurrency,
        timeout=args.timeout,
        retries=args.retries,
        state_dir=args.state_dir,
        part_size=getattr(args, "part_size", None),
    )
    try:
        with client:
            return COMMANDS[args.command](client, args)
    except CatalogError as exc:
        _report_error(args, str(exc), exc.as_dict())
        return exc.exit_code
    except FileNotFoundError as exc:
        _report_error(args, f"No such file: {exc.filename}", {"error": {"code": "no_such_file", "message": str(exc)}})
        return errors.EXIT_USAGE
    except KeyboardInterrupt:
        _report_error(args, "Interrupted. Run the same command again to resume.", {"error": {"code": "interrupted"}})
        return errors.EXIT_INTERRUPTED


def _report_error(args: argparse.Namespace, text: str, body: dict[str, Any]) -> None:
    if args.json:
        print(json.dumps(body))
    else:
        print(f"error: {text}", file=sys.stderr)


def _upload(client: CatalogClient, args: argparse.Namespace) -> int:
    return _submit(
        client,
        args,
        photo=args.photo,
        audio=args.audio,
        artisan=args.artisan,
        language=args.language,
        priority=args.priority,
        tracking_id=args.tracking_id,
        state_file=None,
    )


def _submit(
    client: CatalogClient,
    args: argparse.Namespace,
    *,
    photo: Path,
    audio: Path,
    artisan: str,
    language: str,
    priority: str,
    tracking_id: str | None,
    state_file: StateFile | None,
) -> int:
    for path in (photo, audio):
        if not path.is_file():
            raise FileNotFoundError(2, "No such file", str(path))
    display = Display.choose({"photo": photo, "audio": audio}, json_output=args.json)
    try:
        result = client.submit(
            photo,
            audio,
            artisan,
            language,
            priority,
            tracking_id=tracking_id,
            on_progress=display,
            state_file=state_file,
        )
    finally:
        display.close()
    wait = getattr(args, "wait", None)
    status = client.wait(result.tracking_id, until=(wait,), timeout=args.wait_timeout) if wait else None
    status = status or client.status(result.tracking_id)
    files = {"photo": _file_json(result.photo), "audio": _file_json(result.audio)}
    if args.json:
        print(json.dumps({"trackingId": result.tracking_id, "stage": status["stage"], "files": files}))
    else:
        print(f"Submitted {result.tracking_id}: {status['stage']} ({status['message']})")
        for label, upload in (("photo", result.photo), ("audio", result.audio)):
            print(
                f"  {label}: {upload.key}, {upload.size} bytes, {upload.parts_sent} part(s) sent, "
                f"{upload.parts_resumed} already at storage"
            )
    return _stage_exit(status["stage"]) if wait else errors.EXIT_OK


def _file_json(upload: UploadResult) -> dict[str, Any]:
    return {
        "mediaId": upload.media_id,
        "key": upload.key,
        "size": upload.size,
        "etag": upload.etag,
        "partsTotal": upload.parts_total,
        "partsSent": upload.parts_sent,
        "partsResumed": upload.parts_resumed,
    }


def _stage_exit(stage: str) -> int:
    return errors.EXIT_SUBMISSION_FAILED if stage in FINAL_STAGES - {"completed"} else errors.EXIT_OK


def _status(client: CatalogClient, args: argparse.Namespace) -> int:
    shown = None
    while True:
        status = client.status(args.tracking_id)
        if args.json:
            if not args.watch or status["stage"] in FINAL_STAGES:
                print(json.dumps(status))
        elif (status["stage"], status["message"]) != shown:
            shown = (status["stage"], status["message"])
            print(f"{status['trackingId']}: {status['stage']} ({status['message']})", flush=True)
            if not args.watch:
                for file in status.get("files", []):
                    print(f"  {file['kind']}: {file['status']}, {file.get('bytesRecorded', 0)} bytes, {file['key']}")
        if not args.watch or status["stage"] in FINAL_STAGES:
            return _stage_exit(status["stage"])
        time.sleep(args.interval)


def _resume(client: CatalogClient, args: argparse.Namespace) -> int:
    state_files = [StateFile(args.state)] if args.state else unfinished(args.state_dir)
    if not state_files:
        if not args.json:
            print(f"Nothing to resume in {args.state_dir}.")
        return errors.EXIT_OK
    worst = errors.EXIT_OK
    for state_file in state_files:
        state = state_file.load()
        if state is None:
            raise FileNotFoundError(2, "No such state file", str(state_file.path))
        if state.base_url != client.base_url:
            client = CatalogClient(
                state.base_url,
                args.key,
                concurrency=args.concurrency,
                timeout=args.timeout,
                retries=args.retries,
                state_dir=args.state_dir,
            )
        if not args.json:
            print(f"Resuming {state_file.path.name} ({state.tracking_id or 'not started'})", file=sys.stderr)
        if set(state.paths) != {"photo", "audio"}:
            client.upload_file(state.paths["file"], state.artisan_id, state.tracking_id, state_file=state_file)
            continue
        try:
            code = _submit(
                client,
                args,
                photo=Path(state.paths["photo"]),
                audio=Path(state.paths["audio"]),
                artisan=state.artisan_id,
                language=state.language or "",
                priority=state.priority or "normal",
                tracking_id=state.tracking_id,
                state_file=state_file,
            )
        except CatalogError as exc:
            if len(state_files) == 1:
                raise
            _report_error(args, str(exc), exc.as_dict())
            code = exc.exit_code
        worst = max(worst, code)
    return worst


def _abort(client: CatalogClient, args: argparse.Namespace) -> int:
    answer = client.abort(args.media_id)
    print(json.dumps(answer) if args.json else f"{answer['mediaId']}: {answer['status']}")
    return errors.EXIT_OK


COMMANDS = {"upload": _upload, "status": _status, "resume": _resume, "abort": _abort}
