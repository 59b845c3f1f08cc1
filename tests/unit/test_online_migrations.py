"""The open-uploads index (migration 0007) is built and dropped without blocking writes to the
files table on PostgreSQL: CONCURRENTLY, outside a transaction. Databases without that option
(SQLite, the embedded default) build it plainly. The migration really runs both ways at test
database creation on each database CI uses; these tests pin the statements it runs."""

import io

import pytest
from django.core.management import call_command
from django.db import connection

pytestmark = pytest.mark.django_db(
    transaction=True
)  # sqlmigrate of a non-atomic migration: no test transaction around it

INDEX = '"uploads_media_open_by_tenant"'


def migration_sql(*options: str) -> str:
    out = io.StringIO()
    call_command("sqlmigrate", "uploads", "0007", *options, stdout=out)
    return out.getvalue()


def test_open_uploads_index_is_built_concurrently_on_postgresql_and_plainly_elsewhere() -> None:
    sql = migration_sql()
    if connection.vendor == "postgresql":
        assert f"CREATE INDEX CONCURRENTLY {INDEX}" in sql
    else:
        assert f"CREATE INDEX {INDEX}" in sql
    assert "BEGIN;" not in sql  # CONCURRENTLY cannot run inside a transaction


def test_open_uploads_index_is_dropped_concurrently_on_postgresql_and_plainly_elsewhere() -> None:
    sql = migration_sql("--backwards")
    if connection.vendor == "postgresql":
        assert f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}" in sql or f"DROP INDEX CONCURRENTLY {INDEX}" in sql
    else:
        assert f"DROP INDEX {INDEX}" in sql
    assert "BEGIN;" not in sql
