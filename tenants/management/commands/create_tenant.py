from argparse import ArgumentParser
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError

from tenants.services import tenant_create


class Command(BaseCommand):
    help = "Create a tenant. Its id becomes the first segment of all its object keys."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("tenant_id")
        parser.add_argument("--name", required=True)

    def handle(self, *args: Any, tenant_id: str, name: str, **options: Any) -> None:
        try:
            tenant = tenant_create(tenant_id=tenant_id, name=name)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        except IntegrityError:
            raise CommandError(f"Tenant {tenant_id!r} already exists.") from None
        self.stdout.write(f"Created tenant {tenant.id} ({tenant.name}).")
