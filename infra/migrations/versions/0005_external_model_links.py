"""Models in external registries linked to use cases: the read model that finds the use case a
registry's event is about, and the secrets registries sign their webhooks with.

Links are new in this release: no event before it links anything, so both tables start empty
and the summaries projection (whose tables the links join) needs no rebuild.
"""

from alembic import op

from infra.migrations import migrating

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_LINKS = "stagegate_external_models"
_SECRETS = "stagegate_registry_secrets"


def upgrade() -> None:
    db = migrating().database
    links = db.table(_LINKS)
    op.execute(
        f"CREATE TABLE IF NOT EXISTS {links} ("
        " system TEXT NOT NULL, name TEXT NOT NULL, use_case_id TEXT NOT NULL,"
        " PRIMARY KEY (system, name, use_case_id))"
    )
    op.execute(
        f"CREATE INDEX IF NOT EXISTS stagegate_external_models_use_case ON {links} (use_case_id)"
    )
    op.execute(
        f"CREATE TABLE IF NOT EXISTS {db.table(_SECRETS)} ("
        " system TEXT NOT NULL, name TEXT NOT NULL, secret TEXT NOT NULL,"
        " created_by TEXT NOT NULL, created_at TEXT NOT NULL,"
        " PRIMARY KEY (system, name))"
    )


def downgrade() -> None:
    db = migrating().database
    for table in (_SECRETS, _LINKS):
        op.execute(f"DROP TABLE {db.table(table)}")
