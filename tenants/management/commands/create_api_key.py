from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from tenants.models import ApiKey, Tenant
from tenants.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key for a tenant. The key is printed once, alone on the last line."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("tenant_id")
        parser.add_argument("--name", default="")
        parser.add_argument(
            "--role",
            choices=ApiKey.Role.values,
            default=ApiKey.Role.CLIENT,
            help="client: uploads (the default). pipeline: the processing pipeline, which reports status.",
        )

    def handle(self, *args: Any, tenant_id: str, name: str, role: str, **options: Any) -> None:
        tenant = Tenant.objects.filter(pk=tenant_id).first()
        if tenant is None:
            raise CommandError(f"No tenant {tenant_id!r}; create it with create_tenant first.")
        key, raw = api_key_create(tenant=tenant, name=name, role=role)
        self.stdout.write(
            f"API key {key.prefix}… ({key.role}) for tenant {tenant.id}. Store it now; it is not shown again:"
        )
        self.stdout.write(raw)
