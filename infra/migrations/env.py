"""Alembic's entry point: run the migrations on the connection ``infra.migrations`` opened."""

from alembic import context

from infra.migrations import context_options

config = context.config
context.configure(connection=config.attributes["connection"], **context_options(config))
with context.begin_transaction():
    context.run_migrations()
