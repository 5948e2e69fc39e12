"""${message}

Revision ${up_revision}, after ${down_revision | comma,n}. Written ${create_date}.

Say what changes and why. Change the table definitions in the code to match (a new database
is made from them), and keep the statements here to what an older database needs.
"""

from alembic import op

from infra.migrations import migrating

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = None
depends_on = None


def upgrade() -> None:
    target = migrating()  # target.database.table(name): a qualified table name
    ${upgrades if upgrades else "raise NotImplementedError"}


def downgrade() -> None:
    ${downgrades if downgrades else "raise NotImplementedError"}
