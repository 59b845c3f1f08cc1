from argparse import ArgumentParser, RawDescriptionHelpFormatter
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants.models import Membership, Tenant
from tenants.services import staff_create, staff_password_set_url
from uploads.errors import DomainError


class Command(BaseCommand):
    help = (
        "Give someone the Django admin for one tenant: create the staff user (or update an\n"
        "existing one, whose password stays) and its membership in the tenant, then print a\n"
        "one-time link where they choose a password. Run it again with another --tenant for\n"
        "each further tenant, or with another --role to change their role there.\n\n"
        "Roles:\n"
        "  viewer    reads the tenant's submissions, files, timelines, outbox messages, upload links and\n"
        "            API keys; changes nothing.\n"
        "  operator  also acts: retries, aborts and expires submissions, re-sends status updates, creates\n"
        "            and revokes upload links and API keys, and uploads on the upload page.\n"
        "Superusers see and manage every tenant; this command never makes one.\n\n"
        "Example:\n"
        "  manage.py create_staff meena --tenant tenant_123 --role operator --email meena@example.com"
    )

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        # Keep the help's line breaks: the role table and the example read badly re-wrapped.
        return super().create_parser(prog_name, subcommand, formatter_class=RawDescriptionHelpFormatter, **kwargs)

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("username", help="The login name; created when it does not exist yet.")
        parser.add_argument("--tenant", required=True, help="The id of the tenant they work for, e.g. tenant_123.")
        parser.add_argument(
            "--role",
            required=True,
            choices=Membership.Role.values,
            help="viewer: reads that tenant's rows in the admin. operator: also acts on them (see above).",
        )
        parser.add_argument("--email", default="", help="Their e-mail address, stored on the user (optional).")

    def handle(self, *args: Any, username: str, tenant: str, role: str, email: str, **options: Any) -> None:
        tenant_row = Tenant.objects.filter(pk=tenant).first()
        if tenant_row is None:
            raise CommandError(f"No tenant {tenant!r}; create it with create_tenant first.")
        try:
            user, membership, created = staff_create(username=username, tenant=tenant_row, role=role, email=email)
        except DomainError as exc:
            raise CommandError(exc.message) from None
        hours = settings.PASSWORD_RESET_TIMEOUT // 3600
        self.stdout.write(
            f"{'Created' if created else 'Updated'} staff user {user.username}: {membership.role} of {tenant_row.id}. "
            f"Send them this link to choose a password; it works once, for {hours} hours:"
        )
        self.stdout.write(staff_password_set_url(user=user))
