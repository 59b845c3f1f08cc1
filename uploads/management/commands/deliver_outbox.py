from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from uploads.models import OutboxMessage
from uploads.services import outbox_redrive


class Command(BaseCommand):
    help = "Send every outbox message still owed (after a queue outage or a crash mid-send)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--limit", type=int, default=500, help="At most this many messages per run.")
        parser.add_argument("--retry-failed", action="store_true", help="Also retry messages that ran out of attempts.")

    def handle(self, *args: Any, limit: int, retry_failed: bool, **options: Any) -> None:
        sent = outbox_redrive(limit=limit, retry_failed=retry_failed)
        pending = OutboxMessage.objects.filter(status=OutboxMessage.Status.PENDING).count()
        failed = OutboxMessage.objects.filter(status=OutboxMessage.Status.FAILED).count()
        self.stdout.write(f"Sent {sent}; {pending} still pending, {failed} failed.")
