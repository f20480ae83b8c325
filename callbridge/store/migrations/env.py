"""Alembic environment: always handed a connection by `upgrade_to_head` (or a test)."""

from alembic import context

from callbridge.store import privacy  # noqa: F401  (registers its tables on the metadata)
from callbridge.store.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
