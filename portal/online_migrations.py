"""Schema changes that do not stop the portal while they run on PostgreSQL.

A plain CREATE INDEX holds a lock that blocks every write to its table until the index is
built: on a production files table with millions of rows, uploads would stall for as long as
the build takes. PostgreSQL builds it CONCURRENTLY instead (writes go on; it cannot run inside
a transaction, so the migration says `atomic = False`). Other databases, SQLite for the embedded
default, have no such option and build it plainly.

If a concurrent build fails part-way (a deadlock, a unique violation), PostgreSQL leaves an
INVALID index under the name; drop it (`DROP INDEX CONCURRENTLY <name>`) and migrate again."""

from typing import Any

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations import AddIndex


class AddIndexOnline(AddIndexConcurrently):
    """AddIndex, built CONCURRENTLY on PostgreSQL; its migration must set `atomic = False`."""

    def database_forwards(
        self, app_label: str, schema_editor: BaseDatabaseSchemaEditor, from_state: Any, to_state: Any
    ) -> None:
        _operation_for(schema_editor).database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(
        self, app_label: str, schema_editor: BaseDatabaseSchemaEditor, from_state: Any, to_state: Any
    ) -> None:
        _operation_for(schema_editor).database_backwards(self, app_label, schema_editor, from_state, to_state)

    def describe(self) -> str:
        return f"Create index {self.index.name} on {self.model_name} (CONCURRENTLY on PostgreSQL)"


def _operation_for(schema_editor: BaseDatabaseSchemaEditor) -> type[AddIndex]:
    return AddIndexConcurrently if schema_editor.connection.vendor == "postgresql" else AddIndex
