"""The schema's revision is recorded by the migrations: the version-number table goes.

Releases before migrations kept one number in ``stagegate_schema_version``; from this revision
``stagegate_schema_revision`` (Alembic's) says where a database stands, and a second record
that could disagree with it is dropped.
"""

from alembic import op

from infra.migrations import LEGACY_VERSION_TABLE, migrating

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = migrating().database.table(LEGACY_VERSION_TABLE)
    op.execute(f"DROP TABLE IF EXISTS {table}")


def downgrade() -> None:
    # What a release before migrations needs to find: schema version 2.
    table = migrating().database.table(LEGACY_VERSION_TABLE)
    op.execute(f"CREATE TABLE {table} (version INTEGER NOT NULL)")
    op.execute(f"INSERT INTO {table} (version) VALUES (2)")
