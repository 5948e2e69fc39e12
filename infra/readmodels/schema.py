"""The read-model tables, on SQLite and PostgreSQL alike (types chosen per dialect)."""

from __future__ import annotations

from infra.database import Database

POSITIONS = "stagegate_projection_positions"
SUMMARIES = "stagegate_use_case_summaries"
UNMET = "stagegate_use_case_unmet"
HISTORY = "stagegate_history"
PERIODS = "stagegate_stage_periods"
COSTS = "stagegate_inference_costs"
ADOPTION = "stagegate_adoption_readings"
FAULTS = "stagegate_projection_faults"
LINKS = "stagegate_external_models"

PROJECTIONS = ("summaries", "history")


ALL_TABLES = (POSITIONS, SUMMARIES, UNMET, HISTORY, PERIODS, COSTS, ADOPTION, FAULTS, LINKS)


def create_tables(db: Database) -> None:
    """Create what is missing. Nothing runs when every table exists: DDL on a table a
    projection is writing would deadlock with it (a server starting beside a worker)."""
    if db.tables_exist(ALL_TABLES):
        return
    ts, money, real, boolean, bigint = (
        db.type_of(kind) for kind in ("timestamp", "money", "float", "bool", "bigint")
    )
    t = db.table
    statements = [
        f"CREATE TABLE IF NOT EXISTS {t(POSITIONS)} ("
        " projection TEXT PRIMARY KEY, position {bigint} NOT NULL)".replace("{bigint}", bigint),
        f"CREATE TABLE IF NOT EXISTS {t(SUMMARIES)} ("
        " id TEXT PRIMARY KEY, key TEXT NOT NULL UNIQUE, title TEXT NOT NULL,"
        " business_unit TEXT, stage TEXT NOT NULL,"
        f" stage_since {ts} NOT NULL, registered_at {ts} NOT NULL, updated_at {ts} NOT NULL,"
        f" version {bigint} NOT NULL,"
        " business_owner TEXT, technical_owner TEXT, monitoring_owner TEXT, approver TEXT,"
        " leverage INTEGER, feasibility INTEGER, readiness INTEGER,"
        " priority_floor INTEGER, priority_total INTEGER,"
        f" gate_next TEXT, policy_version {bigint} NOT NULL, production_version TEXT,"
        f" first_production_deployment_at {ts}, value_measured {boolean} NOT NULL,"
        f" value_proven {boolean} NOT NULL, judged_at {ts} NOT NULL,"
        f" adoption_rate {real}, estimated_annual_value {money}, value_currency TEXT,"
        " state_json TEXT NOT NULL)",
        f"CREATE INDEX IF NOT EXISTS stagegate_summaries_stage ON {t(SUMMARIES)} (stage, key)",
        f"CREATE INDEX IF NOT EXISTS stagegate_summaries_unit ON {t(SUMMARIES)}"
        " (business_unit, key)",
        f"CREATE INDEX IF NOT EXISTS stagegate_summaries_since ON {t(SUMMARIES)} (stage_since)",
        f"CREATE INDEX IF NOT EXISTS stagegate_summaries_backlog ON {t(SUMMARIES)}"
        " (priority_floor DESC, readiness DESC, priority_total DESC, key)",
        *(
            f"CREATE INDEX IF NOT EXISTS stagegate_summaries_{column} ON {t(SUMMARIES)} ({column})"
            for column in ("business_owner", "technical_owner", "monitoring_owner", "approver")
        ),
        f"CREATE TABLE IF NOT EXISTS {t(UNMET)} ("
        " use_case_id TEXT NOT NULL, code TEXT NOT NULL, PRIMARY KEY (use_case_id, code))",
        f"CREATE INDEX IF NOT EXISTS stagegate_unmet_code ON {t(UNMET)} (code, use_case_id)",
        f"CREATE TABLE IF NOT EXISTS {t(LINKS)} ("
        " system TEXT NOT NULL, name TEXT NOT NULL, use_case_id TEXT NOT NULL,"
        " PRIMARY KEY (system, name, use_case_id))",
        f"CREATE INDEX IF NOT EXISTS stagegate_external_models_use_case ON {t(LINKS)}"
        " (use_case_id)",
        f"CREATE TABLE IF NOT EXISTS {t(HISTORY)} ("
        f" notification_id {bigint} PRIMARY KEY, aggregate_id TEXT NOT NULL,"
        f" version {bigint} NOT NULL, event_type TEXT NOT NULL,"
        f" recorded_at {ts} NOT NULL, business_time {ts},"
        " actor_id TEXT NOT NULL, actor_role TEXT NOT NULL, channel TEXT NOT NULL,"
        " reason TEXT, correlation_id TEXT NOT NULL, source TEXT, delivery_id TEXT,"
        f" corrects {bigint}, payload TEXT NOT NULL, UNIQUE (aggregate_id, version))",
        f"CREATE INDEX IF NOT EXISTS stagegate_history_recorded ON {t(HISTORY)}"
        " (aggregate_id, recorded_at)",
        f"CREATE TABLE IF NOT EXISTS {t(PERIODS)} ("
        f" use_case_id TEXT NOT NULL, stage TEXT NOT NULL, entered_at {ts} NOT NULL,"
        f" left_at {ts}, PRIMARY KEY (use_case_id, entered_at, stage))",
        f"CREATE INDEX IF NOT EXISTS stagegate_periods_stage ON {t(PERIODS)} (stage)",
        f"CREATE TABLE IF NOT EXISTS {t(COSTS)} ("
        f" notification_id {bigint} PRIMARY KEY, use_case_id TEXT NOT NULL,"
        f" period_start {ts} NOT NULL, period_end {ts} NOT NULL,"
        f" amount {money} NOT NULL, currency TEXT NOT NULL)",
        f"CREATE INDEX IF NOT EXISTS stagegate_costs_end ON {t(COSTS)} (period_end)",
        *adoption_readings_ddl(db),
        f"CREATE TABLE IF NOT EXISTS {t(FAULTS)} ("
        f" projection TEXT NOT NULL, aggregate_id TEXT NOT NULL, version {bigint} NOT NULL,"
        f" notification_id {bigint}, reason TEXT NOT NULL, recorded_at {ts} NOT NULL,"
        " PRIMARY KEY (projection, aggregate_id, version))",
    ]
    with db.transaction() as curs:
        for statement in statements:
            curs.execute(statement)
        for name in PROJECTIONS:
            curs.execute(
                f"INSERT INTO {t(POSITIONS)} (projection, position) VALUES (%s, 0)"
                " ON CONFLICT (projection) DO NOTHING",
                (name,),
            )


def adoption_readings_ddl(db: Database) -> list[str]:
    """The adoption readings: a page's adoption series, read without the history.

    A reading is a few numbers, where its history row holds the whole event: the series of a
    page of 50 measured use cases read 590 history rows, each on a page of its own, which
    took 64 ms when PostgreSQL's buffers and the disk cache did not hold them (2 ms when
    they did). A narrow table of its own stays cached (bench/RESULTS.md)."""
    ts, bigint = db.type_of("timestamp"), db.type_of("bigint")
    table = db.table(ADOPTION)
    return [
        f"CREATE TABLE IF NOT EXISTS {table} ("
        f" notification_id {bigint} PRIMARY KEY, use_case_id TEXT NOT NULL,"
        f" version {bigint} NOT NULL, measured_at {ts} NOT NULL,"
        " active_users INTEGER NOT NULL, target_users INTEGER NOT NULL,"
        f" recorded_at {ts} NOT NULL)",
        # A use case's readings in the order they were measured (ties: recorded).
        f"CREATE INDEX IF NOT EXISTS stagegate_adoption_series ON {table}"
        " (use_case_id, measured_at, version)",
    ]


def tables_of(projection: str) -> tuple[str, ...]:
    """The tables a projection writes (and a rebuild empties)."""
    return {
        "summaries": (SUMMARIES, UNMET, LINKS, PERIODS, COSTS, ADOPTION),
        "history": (HISTORY,),
    }[projection]
