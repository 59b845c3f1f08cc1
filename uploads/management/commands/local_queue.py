import json
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from uploads.queue import LocalQueue, get_publisher


class Command(BaseCommand):
    help = "Print the local queue's messages, one JSON object per line (embedded mode only)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--topic", default="processing", choices=["processing", "status"])
        parser.add_argument("--clear", action="store_true", help="Remove the messages after printing them.")

    def handle(self, *args: Any, topic: str, clear: bool, **options: Any) -> None:
        queue = get_publisher(topic)
        if not isinstance(queue, LocalQueue):
            raise CommandError(f"The {topic} topic goes to SQS here, not to the local queue.")
        for message in queue.messages():
            self.stdout.write(
                json.dumps(
                    {
                        "body": message["body"],
                        "attributes": message["attributes"],
                        "groupId": message["groupId"],
                        "deduplicationId": message["deduplicationId"],
                    }
                )
            )
        if clear:
            queue.clear()
