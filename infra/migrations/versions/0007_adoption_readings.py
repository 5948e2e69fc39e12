"""Adoption readings get a read model of their own: a page's adoption series is read from it,
not from the history.

A page of 50 measured use cases read its series from about 590 history rows, each the whole
event and each on a page of its own: 2 ms while PostgreSQL's buffers or the disk cache held
them, 64 ms when they did not (bench/RESULTS.md). A reading is a few numbers, so their table
is narrow and stays cached. The history's partial index for adoption series (0006) has no
reader left and goes.

The readings are the summaries projection's (written beside the costs, in the append's
transaction), so its tables are emptied and its position set back to the start, and
``infra.migrations.upgrade`` rebuilds it from the log before the service starts, this table
with it. The log, its hashes, delivery records, the outbox and the history are untouched.

The table is created as it stands at this revision, not from the code's current definition,
so that this migration does the same thing whatever later releases change.
"""

from alembic import op

from infra.migrations import migrating, rebuild_from_the_log

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_ADOPTION = "stagegate_adoption_readings"
_SUMMARIES_TABLES = (
    "stagegate_use_case_summaries",
    "stagegate_use_case_unmet",
    "stagegate_external_models",
    "stagegate_stage_periods",
    "stagegate_inference_costs",
)


def upgrade() -> None:
    db = migrating().database
    ts, bigint = db.type_of("timestamp"), db.type_of("bigint")
    adoption = db.table(_ADOPTION)
    op.execute(
        f"CREATE TABLE IF NOT EXISTS {adoption} ("
        f" notification_id {bigint} PRIMARY KEY, use_case_id TEXT NOT NULL,"
        f" version {bigint} NOT NULL, measured_at {ts} NOT NULL,"
        " active_users INTEGER NOT NULL, target_users INTEGER NOT NULL,"
        f" recorded_at {ts} NOT NULL)"
    )
    op.execute(
        f"CREATE INDEX IF NOT EXISTS stagegate_adoption_series ON {adoption}"
        " (use_case_id, measured_at, version)"
    )
    _drop_index("stagegate_history_adoption")
    rebuild_from_the_log("summaries", _SUMMARIES_TABLES)


def downgrade() -> None:
    db = migrating().database
    op.execute(f"DROP TABLE {db.table(_ADOPTION)}")
    op.execute(
        f"CREATE INDEX IF NOT EXISTS stagegate_history_adoption"
        f" ON {db.table('stagegate_history')}"
        " (aggregate_id, business_time, version) WHERE event_type = 'AdoptionRecorded'"
    )


def _drop_index(name: str) -> None:
    db = migrating().database
    op.execute(f"DROP INDEX IF EXISTS {db.table(name) if db.has_roles else name}")
