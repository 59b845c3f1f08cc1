from argparse import ArgumentParser
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from tenants.models import Tenant
from tenants.services import MAX_UPLOAD_LINK_DAYS, upload_link_create
from uploads.errors import DomainError


class Command(BaseCommand):
    help = (
        "Create an upload link: whoever opens it may upload for this tenant and artisan only, until it expires "
        "or is revoked in the admin (Upload links). The URL is printed once, alone on the last line; send it to "
        "the artisan (the part after '#' is the secret)."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("tenant_id", help="The tenant the uploads belong to.")
        parser.add_argument("artisan_id", help="The artisan the link uploads for (1-64 letters, digits, '_' or '-').")
        parser.add_argument(
            "--days",
            type=int,
            default=settings.UPLOAD_LINK_DEFAULT_DAYS,
            help=f"How long the link works (1-{MAX_UPLOAD_LINK_DAYS} days; default %(default)s).",
        )
        parser.add_argument("--note", default="", help="Who the link is for, shown in the admin.")
        parser.add_argument(
            "--base-url",
            default=settings.PORTAL_BASE_URL,
            help="The portal's address as the artisan reaches it (default: PORTAL_BASE_URL, %(default)s).",
        )

    def handle(
        self, *args: Any, tenant_id: str, artisan_id: str, days: int, note: str, base_url: str, **options: Any
    ) -> None:
        tenant = Tenant.objects.filter(pk=tenant_id, is_active=True).first()
        if tenant is None:
            raise CommandError(f"No active tenant {tenant_id!r}; create it with create_tenant first.")
        try:
            link, path = upload_link_create(tenant=tenant, artisan_id=artisan_id, days=days, note=note)
        except DomainError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(
            f"Upload link {link.id} for artisan {link.artisan_id} of {tenant.id}, "
            f"valid until {link.expires_at:%Y-%m-%d %H:%M} UTC. Revoke it in the admin. The link:"
        )
        self.stdout.write(base_url.rstrip("/") + path)
