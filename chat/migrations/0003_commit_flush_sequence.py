"""The sequence `travelsite.loop_db.LoopConnections.durable()` sets to wait for the disk.

Setting a sequence writes to PostgreSQL's log and gives the transaction an id, so its commit
(synchronous) waits until the log up to it, every earlier commit with it, is on disk; a
transaction that wrote nothing would not wait. Only PostgreSQL has it (and needs it).
"""

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

SEQUENCE = "chat_commit_flush_seq"


def create(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"CREATE SEQUENCE IF NOT EXISTS {SEQUENCE}")


def drop(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP SEQUENCE IF EXISTS {SEQUENCE}")


class Migration(migrations.Migration):
    dependencies = [("chat", "0002_room_topic")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
