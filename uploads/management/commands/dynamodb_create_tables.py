from typing import Any

from django.core.management.base import BaseCommand, CommandError

from uploads.dynamodb import DynamoDBUnavailable, create_tables, mirror_tables


class Command(BaseCommand):
    help = (
        "Create the DynamoDB mirror's tables: DYNAMODB_CATALOG_TABLE (partition key trackingId, with "
        "the byTenant index on tenantId and updatedAt) and DYNAMODB_UPLOAD_STATE_TABLE (default "
        "<catalog table>_UploadState; keys trackingId and mediaId), on-demand billing, and wait until "
        "both are active. A table that exists is left as it is, so it is safe to run again. Region "
        "and endpoint as for S3 and SQS: AWS_REGION, AWS_ENDPOINT_URL or AWS_ENDPOINT_URL_DYNAMODB."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        tables = mirror_tables()
        if tables is None:
            raise CommandError("The mirror is off: set DYNAMODB_CATALOG_TABLE.")
        self.stdout.write(f"Creating {tables.catalog} and {tables.upload_state} (waits until active)...")
        try:
            created = create_tables(tables)
        except DynamoDBUnavailable as exc:
            raise CommandError(f"DynamoDB did not answer: {exc}") from exc
        for name in (tables.catalog, tables.upload_state):
            self.stdout.write(f"{name}: {'created' if name in created else 'exists already'}, active")
