"""An index on the history for adoption series: a page of use cases reads their readings alone
(a partial index of the adoption events, in the order they were measured), not every entry
of the page's histories. Both stores build partial indexes alike."""

from alembic import op

from infra.migrations import migrating

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    history = migrating().database.table("stagegate_history")
    op.execute(
        f"CREATE INDEX IF NOT EXISTS stagegate_history_adoption ON {history}"
        " (aggregate_id, business_time, version) WHERE event_type = 'AdoptionRecorded'"
    )


def downgrade() -> None:
    db = migrating().database
    name = "stagegate_history_adoption"
    op.execute(f"DROP INDEX IF EXISTS {db.table(name) if db.has_roles else name}")
