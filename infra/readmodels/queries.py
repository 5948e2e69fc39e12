"""The read side's questions, answered in SQL from the read-model tables."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from domain.policy import POLICY_ID
from domain.state import UseCaseState
from domain.values import Stage
from infra.database import Database
from infra.readmodels.schema import ADOPTION, COSTS, HISTORY, LINKS, PERIODS, SUMMARIES, UNMET
from projections.history import HistoryEntry
from projections.readmodels import (
    AdoptionReading,
    BacklogEntry,
    FunnelStep,
    Page,
    Portfolio,
    StageFigures,
    UseCaseFilter,
    UseCaseRecord,
    ValueAgainstCost,
    ValueAndCost,
)

_DONE = ("scale", "retired")
_RECORD_COLUMNS = "s.id, s.key, s.version, s.registered_at, s.updated_at, s.state_json"
# Strongest on all three dimensions first: the weakest score decides, then readiness (the
# hardest to change and the most predictive), then the total; unscored use cases come last.
_BACKLOG_ORDER = (
    "s.priority_floor DESC NULLS LAST, s.readiness DESC NULLS LAST,"
    " s.priority_total DESC NULLS LAST, s.key"
)


def encode_cursor(value: str | int) -> str:
    return base64.urlsafe_b64encode(str(value).encode()).decode()


def decode_cursor(cursor: str) -> str:
    """The cursor's content; raises ValueError for one that is not ours."""
    try:
        content = base64.b64decode(cursor.encode(), altchars=b"-_", validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        content = ""
    if not content:
        raise ValueError(f"'{cursor}' is not a cursor this API gave out")
    return content


_LARGEST_POSITION = 2**53


def decode_number_cursor(cursor: str) -> int:
    """A cursor that holds a position (a rank, a version); ValueError for anything else."""
    content = decode_cursor(cursor)
    if not content.isdigit() or int(content) > _LARGEST_POSITION:
        raise ValueError(f"'{cursor}' is not a cursor this API gave out")
    return int(content)


class SqlQueries:
    """Answers the read-side questions from the tables the projections keep."""

    def __init__(self, db: Database) -> None:
        self.db = db
        t = db.table
        self.summaries_table, self.unmet_table = t(SUMMARIES), t(UNMET)
        self.history_table = t(HISTORY)
        self.links_table = t(LINKS)
        self.periods_table, self.costs_table = t(PERIODS), t(COSTS)
        self.adoption_table = t(ADOPTION)

    # --- use cases -------------------------------------------------------------------------

    def use_cases(
        self, filter: UseCaseFilter, first: int, after: str | None, now: datetime
    ) -> Page[UseCaseRecord]:
        where, params = self._where(filter, now)
        if after is not None:
            where.append("s.key > %s")
            params.append(decode_cursor(after))
        rows = self._select(
            f"SELECT {_RECORD_COLUMNS} FROM {self.summaries_table} s {_clause(where)}"
            " ORDER BY s.key LIMIT %s",
            [*params, first + 1],
        )
        return self._page(rows, first, lambda row, _: str(row["key"]))

    def count_use_cases(self, filter: UseCaseFilter, now: datetime) -> int:
        where, params = self._where(filter, now)
        rows = self._select(
            f"SELECT COUNT(*) AS n FROM {self.summaries_table} s {_clause(where)}", params
        )
        return int(rows[0]["n"])

    def backlog(self, first: int, after: str | None) -> Page[BacklogEntry]:
        offset = decode_number_cursor(after) if after else 0
        rows = self._select(
            f"SELECT {_RECORD_COLUMNS} FROM {self.summaries_table} s"
            f" WHERE s.stage NOT IN ('scale', 'retired') ORDER BY {_BACKLOG_ORDER}"
            " LIMIT %s OFFSET %s",
            [first + 1, offset],
        )
        entries = [
            BacklogEntry(rank=offset + i + 1, record=self._record(row))
            for i, row in enumerate(rows[:first])
        ]
        return Page(
            items=entries,
            cursors=[encode_cursor(entry.rank) for entry in entries],
            has_next_page=len(rows) > first,
        )

    def _where(self, filter: UseCaseFilter, now: datetime) -> tuple[list[str], list[Any]]:
        where: list[str] = []
        params: list[Any] = []
        if filter.stages:
            where.append(f"s.stage IN ({', '.join(['%s'] * len(filter.stages))})")
            params += [stage.value for stage in filter.stages]
        if filter.business_unit is not None:
            where.append("s.business_unit = %s")
            params.append(filter.business_unit)
        if filter.owner is not None:
            where.append(
                "(s.business_owner = %s OR s.technical_owner = %s OR s.monitoring_owner = %s"
                " OR s.approver = %s)"
            )
            params += [filter.owner] * 4
        if filter.unmet_code is not None:
            where.append(
                f"EXISTS (SELECT 1 FROM {self.unmet_table} u"
                " WHERE u.use_case_id = s.id AND u.code = %s)"
            )
            params.append(filter.unmet_code.value)
        if filter.stuck_for_days is not None:
            where.append("s.stage NOT IN ('scale', 'retired') AND s.stage_since <= %s")
            params.append(self.db.ts(now - timedelta(days=filter.stuck_for_days)))
        return where, params

    def _page(self, rows: list[dict[str, Any]], first: int, cursor_of: Any) -> Page[Any]:
        items = [self._record(row) for row in rows[:first]]
        cursors = [encode_cursor(cursor_of(row, i)) for i, row in enumerate(rows[:first])]
        return Page(items=items, cursors=cursors, has_next_page=len(rows) > first)

    def _record(self, row: dict[str, Any]) -> UseCaseRecord:
        return UseCaseRecord(
            id=str(row["id"]),
            version=int(row["version"]),
            registered_at=self.db.read_required_ts(row["registered_at"]),
            updated_at=self.db.read_required_ts(row["updated_at"]),
            state=UseCaseState.model_validate_json(row["state_json"]),
        )

    # --- history ---------------------------------------------------------------------------

    def history(
        self, aggregate_id: str, first: int, after: str | None, newest: bool = False
    ) -> Page[HistoryEntry]:
        """Entries oldest first; with ``newest``, the ``first`` newest before ``after``."""
        if newest:
            before_version = decode_number_cursor(after) if after else None
            rows = self._select(
                f"SELECT * FROM {self.history_table} WHERE aggregate_id = %s"
                + (" AND version < %s" if before_version is not None else "")
                + " ORDER BY version DESC LIMIT %s",
                [
                    aggregate_id,
                    *([before_version] if before_version is not None else []),
                    first + 1,
                ],
            )
            page = self._entries(rows[:first][::-1])
            return Page(
                items=page,
                cursors=[encode_cursor(entry.version) for entry in page],
                has_next_page=before_version is not None,
                has_previous_page=len(rows) > first,
            )
        after_version = decode_number_cursor(after) if after else 0
        rows = self._select(
            f"SELECT * FROM {self.history_table} WHERE aggregate_id = %s AND version > %s"
            " ORDER BY version LIMIT %s",
            [aggregate_id, after_version, first + 1],
        )
        entries = self._entries(rows[:first])
        return Page(
            items=entries,
            cursors=[encode_cursor(entry.version) for entry in entries],
            has_next_page=len(rows) > first,
            has_previous_page=after_version > 0,
        )

    def adoption_series(
        self,
        use_case_ids: list[str],
        size: int,
        after: str | None,
        newest: bool = False,
        until_version: int | None = None,
    ) -> dict[str, Page[AdoptionReading]]:
        """See ``ReadModels.adoption_series``: the adoption readings, numbered per use case in
        the order they were measured, in one query for every use case asked about."""
        if not use_case_ids:
            return {}
        if after is not None and len(use_case_ids) != 1:
            raise ValueError("an adoption cursor belongs to one use case")
        after_version = decode_number_cursor(after) if after else None
        order = "DESC" if newest else "ASC"
        cursor_join, past, params = "", "", []
        if after_version is not None:
            # Past the cursor's reading, in measuring order (ties: recorded order).
            cursor_join = (
                f" JOIN {self.adoption_table} c ON c.use_case_id = a.use_case_id AND c.version = %s"
            )
            params.append(after_version)
            beyond = "<" if newest else ">"
            past = (
                f" AND (a.measured_at {beyond} c.measured_at OR (a.measured_at ="
                f" c.measured_at AND a.version {beyond} c.version))"
            )
        if until_version is not None:  # the use case as it stood at a version (asOf)
            past += " AND a.version <= %s"
        ids = ", ".join(["%s"] * len(use_case_ids))
        rows = self._select(
            "SELECT use_case_id, version, measured_at, active_users, target_users, recorded_at"
            " FROM ( SELECT a.use_case_id, a.version, a.measured_at, a.active_users,"
            " a.target_users, a.recorded_at, ROW_NUMBER() OVER (PARTITION BY a.use_case_id"
            f" ORDER BY a.measured_at {order}, a.version {order}) AS n"
            f" FROM {self.adoption_table} a{cursor_join}"
            f" WHERE a.use_case_id IN ({ids}){past}"
            ") ranked WHERE n <= %s ORDER BY use_case_id, n",
            [
                *params,
                *use_case_ids,
                *([until_version] if until_version is not None else []),
                size + 1,
            ],
        )
        read_ts = self.db.read_required_ts
        by_use_case: dict[str, list[AdoptionReading]] = {i: [] for i in use_case_ids}
        for row in rows:
            by_use_case[str(row["use_case_id"])].append(
                AdoptionReading(
                    version=int(row["version"]),
                    active_users=int(row["active_users"]),
                    target_users=int(row["target_users"]),
                    measured_at=read_ts(row["measured_at"]),
                    recorded_at=read_ts(row["recorded_at"]),
                )
            )
        pages = {}
        for use_case_id, readings in by_use_case.items():
            more = len(readings) > size
            readings = readings[:size]
            if newest:
                readings.reverse()
            pages[use_case_id] = Page(
                items=readings,
                cursors=[encode_cursor(r.version) for r in readings],
                has_next_page=after_version is not None if newest else more,
                has_previous_page=more if newest else after_version is not None,
            )
        return pages

    def linked_use_cases(self, system: str, name: str) -> list[str]:
        """The keys of the use cases a model in an external registry is linked to (one, but
        for two links made in the same instant)."""
        rows = self._select(
            f"SELECT s.key FROM {self.links_table} l JOIN {self.summaries_table} s"
            " ON s.id = l.use_case_id WHERE l.system = %s AND l.name = %s ORDER BY s.key",
            [system, name],
        )
        return [str(row["key"]) for row in rows]

    def history_entry(self, aggregate_id: str, version: int) -> HistoryEntry | None:
        rows = self._select(
            f"SELECT * FROM {self.history_table} WHERE aggregate_id = %s AND version = %s",
            [aggregate_id, version],
        )
        entries = self._entries(rows)
        return entries[0] if entries else None

    def _entries(self, rows: list[dict[str, Any]]) -> list[HistoryEntry]:
        read = self.db.read_ts
        return [
            HistoryEntry(
                notification_id=int(r["notification_id"]),
                aggregate_id=str(r["aggregate_id"]),
                version=int(r["version"]),
                event_type=str(r["event_type"]),
                recorded_at=self.db.read_required_ts(r["recorded_at"]),
                business_time=read(r["business_time"]),
                actor_id=str(r["actor_id"]),
                actor_role=str(r["actor_role"]),
                channel=str(r["channel"]),
                reason=r["reason"],
                correlation_id=str(r["correlation_id"]),
                source=r["source"],
                delivery_id=r["delivery_id"],
                corrects=r["corrects"],
                payload=str(r["payload"]),
            )
            for r in rows
        ]

    def version_at(self, aggregate_id: str, at: datetime) -> int | None:
        rows = self._select(
            f"SELECT MAX(version) AS version FROM {self.history_table}"
            " WHERE aggregate_id = %s AND recorded_at <= %s",
            [aggregate_id, self.db.ts(at)],
        )
        version = rows[0]["version"]
        return int(version) if version is not None else None

    def policy_version_at(self, at: datetime) -> int:
        return self.version_at(str(POLICY_ID), at) or 0

    # --- the portfolio ---------------------------------------------------------------------

    def portfolio(self, now: datetime, stuck_after_days: int) -> Portfolio:
        ts = self.db.ts
        counts = {
            str(r["stage"]): int(r["n"])
            for r in self._select(
                f"SELECT stage, COUNT(*) AS n FROM {self.summaries_table} GROUP BY stage", []
            )
        }
        duration = self.db.days_between("entered_at", "COALESCE(left_at, %s)")
        days = {
            str(r["stage"]): float(r["days"])
            for r in self._select(
                f"SELECT stage, AVG({duration}) AS days FROM {self.periods_table} GROUP BY stage",
                [ts(now)],
            )
            if r["days"] is not None
        }
        stuck = [
            str(r["key"])
            for r in self._select(
                f"SELECT key FROM {self.summaries_table}"
                " WHERE stage = 'pilot' AND stage_since <= %s"
                " ORDER BY stage_since, key",
                [ts(now - timedelta(days=stuck_after_days))],
            )
        ]
        [deployed] = self._select(
            f"SELECT COUNT(*) AS n, SUM(CASE WHEN value_measured THEN 1 ELSE 0 END) AS measured"
            f" FROM {self.summaries_table}"
            " WHERE first_production_deployment_at IS NOT NULL AND stage <> 'retired'",
            [],
        )
        return Portfolio(
            stages=[
                StageFigures(
                    stage=stage,
                    count=counts.get(stage.value, 0),
                    average_days_in_stage=days.get(stage.value),
                )
                for stage in Stage
            ],
            stuck_pilots=stuck,
            stuck_after_days=stuck_after_days,
            deployed=int(deployed["n"]),
            deployed_with_measured_value=int(deployed["measured"] or 0),
            value_against_cost=self._value_against_cost(now),
            funnel=self._funnel(),
        )

    FUNNEL = (Stage.PILOT, Stage.ACCEPTANCE, Stage.DEPLOYMENT, Stage.MEASUREMENT, Stage.SCALE)

    def _funnel(self) -> list[FunnelStep]:
        periods = self.periods_table
        onward = ", ".join(f"'{stage.value}'" for stage in self.FUNNEL)
        # Forward moves go one stage at a time from proposed, and nothing is sent back to
        # proposed: a use case with a stay in any of these stages entered pilot.
        reached = {
            str(r["stage"]): int(r["n"])
            for r in self._select(
                f"SELECT stage, COUNT(*) AS n FROM (SELECT DISTINCT stage, use_case_id"
                f" FROM {periods} WHERE stage IN ({onward})) d GROUP BY stage",
                [],
            )
        }
        days = self.db.days_between("entered_at", "left_at")
        medians = {
            str(r["stage"]): float(r["median"])
            for r in self._select(
                self.db.median_by_group(f"{periods} WHERE left_at IS NOT NULL", "stage", days),
                [],
            )
            if r["median"] is not None
        }
        return [
            FunnelStep(
                stage=stage,
                reached=reached.get(stage.value, 0),
                median_days_in_stage=medians.get(stage.value),
            )
            for stage in self.FUNNEL
        ]

    def _value_against_cost(self, now: datetime) -> list[ValueAgainstCost]:
        money = self.db.summable_money("amount")
        value = self.db.summable_money("estimated_annual_value")
        values = {
            (str(r["currency"]), bool(r["proven"])): _decimal(r["total"])
            for r in self._select(
                f"SELECT value_currency AS currency, value_proven AS proven,"
                f" SUM({value}) AS total FROM {self.summaries_table}"
                " WHERE value_currency IS NOT NULL AND stage <> 'retired'"
                " GROUP BY value_currency, value_proven",
                [],
            )
        }
        costs = {
            (str(r["currency"]), bool(r["proven"])): _decimal(r["total"])
            for r in self._select(
                f"SELECT c.currency, s.value_proven AS proven, SUM({money}) AS total"
                f" FROM {self.costs_table} c JOIN {self.summaries_table} s ON s.id = c.use_case_id"
                " WHERE c.period_end > %s AND s.stage <> 'retired'"
                " GROUP BY c.currency, s.value_proven",
                [self.db.ts(now - timedelta(days=365))],
            )
        }
        zero = Decimal(0)

        def part(currency: str, proven: bool) -> ValueAndCost:
            return ValueAndCost(
                estimated_annual_value=values.get((currency, proven), zero),
                annual_inference_cost=costs.get((currency, proven), zero),
            )

        currencies = sorted({currency for currency, _ in values.keys() | costs.keys()})
        found = []
        for currency in currencies:
            proven, unproven = part(currency, True), part(currency, False)
            found.append(
                ValueAgainstCost(
                    currency=currency,
                    estimated_annual_value=proven.estimated_annual_value
                    + unproven.estimated_annual_value,
                    annual_inference_cost=proven.annual_inference_cost
                    + unproven.annual_inference_cost,
                    proven=proven,
                    unproven=unproven,
                )
            )
        return found

    def _select(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        return self.db.select(sql, params)


def _clause(where: list[str]) -> str:
    return f"WHERE {' AND '.join(where)}" if where else ""


def _decimal(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(round(float(value or 0), 2)))
