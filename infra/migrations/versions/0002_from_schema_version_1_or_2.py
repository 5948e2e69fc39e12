"""The first migration: a database of a release before migrations, brought to schema version 2.

Those releases recorded a schema version number instead of a revision. Version 2 is the last
of them; version 1 differs from it only in three PL/pgSQL row triggers on the log that computed
the hash chain, recorded deliveries and filled the outbox (the recorder writes all three since
version 2, in the append's own transaction). They are dropped here; on a version 2 database,
and on SQLite, which never had them, nothing changes.
"""

from alembic import op

from infra.migrations import migrating

revision = "0002"
down_revision = None
branch_labels = None
depends_on = None

_VERSION_1_TRIGGERS = [
    ("stagegate_chain", "stagegate_chain_event"),
    ("stagegate_delivery", "stagegate_record_delivery"),
    ("stagegate_outbox", "stagegate_enqueue_notification"),
]


def upgrade() -> None:
    target = migrating()
    for trigger, function in _VERSION_1_TRIGGERS:
        for statement in target.database.drop_row_trigger(target.events_table, trigger, function):
            op.execute(statement)


def downgrade() -> None:
    # Back to version 2, not 1: the triggers would write the chain a second time.
    pass
