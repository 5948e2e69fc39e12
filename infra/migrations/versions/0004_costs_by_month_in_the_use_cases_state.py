"""A use case's state keeps its inference cost by month; its summary says whether its value is
proven and when its gate was judged.

``COST_WITHIN_BUDGET`` judges the last complete month's cost from the use case's state, which
now sums every cost report by calendar month. What was derived from the state before this
release lacks those sums, so it is discarded, never edited:

- the snapshots (loading would trust them and see no cost at all): the use cases load from
  their events until the next snapshot is taken;
- the summaries projection (its rows keep the state as JSON, and it gains ``value_proven`` and
  ``judged_at``): its tables are emptied and its position set back to the start, and
  ``infra.migrations.upgrade`` rebuilds it from the log before the service starts.

The log, its hashes, delivery records, the outbox and the history are untouched.

The summaries table is created here as it stands at this revision, not from the code's current
definition, so that this migration does the same thing whatever later releases change.
"""

from alembic import op

from infra.migrations import migrating, rebuild_from_the_log

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_SUMMARIES = "stagegate_use_case_summaries"
_EMPTIED = ("stagegate_use_case_unmet", "stagegate_stage_periods", "stagegate_inference_costs")


def upgrade() -> None:
    target = migrating()
    db = target.database
    if target.snapshots_table is not None and db.table_exists(target.snapshots_table):
        snapshots = db.table(target.snapshots_table)
        if db.has_roles:  # PostgreSQL: the table is append-only by trigger, for everyone else
            op.execute(f"ALTER TABLE {snapshots} DISABLE TRIGGER stagegate_append_only")
            op.execute(f"DELETE FROM {snapshots}")
            op.execute(f"ALTER TABLE {snapshots} ENABLE TRIGGER stagegate_append_only")
        else:
            op.execute(f"DELETE FROM {snapshots}")

    boolean, ts = db.type_of("bool"), db.type_of("timestamp")
    _recreate_summaries(f" value_proven {boolean} NOT NULL, judged_at {ts} NOT NULL,")


def _recreate_summaries(judging_columns: str) -> None:
    """The summaries table as it stands at this revision (with ``judging_columns``) or the one
    before (without), emptied with the rest of its projection, to be rebuilt from the log."""
    db = migrating().database
    ts, money, real, boolean, bigint = (
        db.type_of(kind) for kind in ("timestamp", "money", "float", "bool", "bigint")
    )
    summaries = db.table(_SUMMARIES)
    op.execute(f"DROP TABLE {summaries}")
    op.execute(
        f"CREATE TABLE {summaries} ("
        " id TEXT PRIMARY KEY, key TEXT NOT NULL UNIQUE, title TEXT NOT NULL,"
        " business_unit TEXT, stage TEXT NOT NULL,"
        f" stage_since {ts} NOT NULL, registered_at {ts} NOT NULL, updated_at {ts} NOT NULL,"
        f" version {bigint} NOT NULL,"
        " business_owner TEXT, technical_owner TEXT, monitoring_owner TEXT, approver TEXT,"
        " leverage INTEGER, feasibility INTEGER, readiness INTEGER,"
        " priority_floor INTEGER, priority_total INTEGER,"
        f" gate_next TEXT, policy_version {bigint} NOT NULL, production_version TEXT,"
        f" first_production_deployment_at {ts}, value_measured {boolean} NOT NULL,"
        f"{judging_columns}"
        f" adoption_rate {real}, estimated_annual_value {money}, value_currency TEXT,"
        " state_json TEXT NOT NULL)"
    )
    indexes = {
        "stage": "stage, key",
        "unit": "business_unit, key",
        "since": "stage_since",
        "backlog": "priority_floor DESC, readiness DESC, priority_total DESC, key",
        **{c: c for c in ("business_owner", "technical_owner", "monitoring_owner", "approver")},
    }
    for name, columns in indexes.items():
        op.execute(f"CREATE INDEX stagegate_summaries_{name} ON {summaries} ({columns})")
    rebuild_from_the_log("summaries", _EMPTIED)


def downgrade() -> None:
    # The summaries of revision 0003, empty: that release's projection fills them from the
    # log. The snapshots stay discarded; loading takes them again as it goes.
    _recreate_summaries("")
