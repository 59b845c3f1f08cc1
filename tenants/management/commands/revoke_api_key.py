from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from tenants.api_key_cache import CACHE_SECONDS
from tenants.models import ApiKey
from tenants.services import api_key_revoke


class Command(BaseCommand):
    help = (
        "Revoke an API key, named by the prefix the admin and create_api_key show (e.g. cup_AbCd1234). "
        f"Every web process refuses it within {CACHE_SECONDS:g} seconds."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("prefix")

    def handle(self, *args: Any, prefix: str, **options: Any) -> None:
        key = ApiKey.objects.filter(prefix=prefix.rstrip("…")).first()
        if key is None:
            raise CommandError(f"No API key with the prefix {prefix!r}.")
        if api_key_revoke(api_key=key):
            self.stdout.write(
                f"Revoked API key {key.prefix}… of tenant {key.tenant_id}; every web process refuses it "
                f"within {CACHE_SECONDS:g} seconds."
            )
        else:
            self.stdout.write(f"API key {key.prefix}… of tenant {key.tenant_id} was already revoked.")
