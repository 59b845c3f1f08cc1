from argparse import ArgumentParser
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from uploads.storage import StorageError
from uploads.storage.s3 import setup_bucket


class Command(BaseCommand):
    help = (
        "Prepare S3_RAW_MEDIA_BUCKET for browsers uploading straight to it: a CORS rule (PUT and POST "
        "from the portal's origins, the signed headers, ETag exposed) and a lifecycle rule aborting "
        "incomplete multipart uploads after 8 days. Other rules are kept; safe to run again."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--origin",
            action="append",
            dest="origins",
            metavar="URL",
            help="An origin allowed to upload (repeatable). Default: PORTAL_BASE_URL and UPLOADS_CORS_ORIGINS.",
        )

    def handle(self, *args: Any, origins: list[str] | None, **options: Any) -> None:
        if not settings.S3_RAW_MEDIA_BUCKET:
            raise CommandError("S3_RAW_MEDIA_BUCKET is not set: the local backend answers CORS itself.")
        origins = origins or [settings.PORTAL_BASE_URL, *settings.UPLOADS_CORS_ORIGINS]
        try:
            done = setup_bucket(bucket=settings.S3_RAW_MEDIA_BUCKET, region=settings.AWS_REGION, origins=origins)
        except StorageError as exc:
            raise CommandError(f"Could not configure bucket {settings.S3_RAW_MEDIA_BUCKET}: {exc}") from exc
        for line in done:
            self.stdout.write(f"{settings.S3_RAW_MEDIA_BUCKET}: {line}")
