from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from uploads.models import OutboxMessage
from uploads.services import outbox_relay, outbox_retry_failed


class Command(BaseCommand):
    help = (
        "Send every outbox message that is due, as the periodic relay does (Celery beat runs it every "
        "OUTBOX_RELAY_INTERVAL_SECONDS); with --retry-failed, first give failed messages a fresh set of attempts."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--limit", type=int, default=1000, help="At most this many messages per topic.")
        parser.add_argument("--retry-failed", action="store_true", help="Also retry messages that ran out of attempts.")

    def handle(self, *args: Any, limit: int, retry_failed: bool, **options: Any) -> None:
        if retry_failed:
            self.stdout.write(f"Retrying {outbox_retry_failed()} failed messages.")
        sent = outbox_relay(limit=limit)
        pending = OutboxMessage.objects.filter(status=OutboxMessage.Status.PENDING).count()
        failed = OutboxMessage.objects.filter(status=OutboxMessage.Status.FAILED).count()
        self.stdout.write(f"Sent {sent}; {pending} still pending, {failed} failed.")
