"""The summaries read model: a row per use case, its unmet codes, stage periods, costs and
adoption readings.

Events are applied to the use-case aggregates themselves (kept in a bounded cache, or loaded
from the summary row this projection wrote), so every summary is what the domain would say.
A transaction may span many pages; a use case touched several times is written once, at the
end, which is what lets a rebuild catch up fast.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import fields
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.utils import get_topic, resolve_topic

from domain.policy import POLICY_ID, Policy, PolicyInForce
from domain.state import UseCaseState
from domain.usecase import UseCase
from domain.usecase import events as e
from domain.values import InferenceCost, Stage
from infra.database import Cursor, Database
from infra.readmodels import faults
from infra.readmodels.runner import LoggedEvent
from infra.readmodels.schema import ADOPTION, COSTS, LINKS, PERIODS, SUMMARIES, UNMET
from infra.recorders import select_latest_of_many
from infra.serialization import upcast
from projections.appended import (
    STAGE_EVENTS,
    project_stage_or_cost,
    project_summary,
    stage_entered,
)
from projections.summaries import UseCaseSummary

CACHE_SIZE = 20_000
REBUILD_CHUNK = 1_000
"""Use cases loaded per query when rebuilding."""
REBUILD_PAGE = 10_000
"""Stage, cost and adoption events read per query when rebuilding."""
ADOPTION_COLUMNS = (
    "notification_id",
    "use_case_id",
    "version",
    "measured_at",
    "active_users",
    "target_users",
    "recorded_at",
)
_CHILD_ROWS = ("unmet_codes", "external_models")
"""Summary fields kept as rows of tables of their own (``UNMET``, ``LINKS``)."""
_COLUMNS = [f.name for f in fields(UseCaseSummary) if f.name not in _CHILD_ROWS]
_TIMESTAMPS = {
    "stage_since",
    "registered_at",
    "updated_at",
    "first_production_deployment_at",
    "judged_at",
}


class SummaryProjection:
    name = "summaries"

    def __init__(self, db: Database, events_table: str) -> None:
        self.db = db
        t = db.table
        self._cache: OrderedDict[str, UseCase] = OrderedDict()
        self._dirty: dict[str, UseCase] = {}
        self._unwritable: set[str] = set()
        """Use cases whose summary row could not be written in this transaction."""
        self._transitions: dict[str, list[tuple[str, Any]]] = {}
        self._policy: PolicyInForce | None = None
        self._policy_changed = False
        self._committed_position: int | None = None
        """Where this process's last transaction left the position; the cache matches it."""
        number = db.log_position_column
        policy_id = db.stored_uuid(POLICY_ID)
        self._policy_events = (
            f"SELECT originator_version, topic, state FROM {events_table}"
            f" WHERE originator_id = '{policy_id}' AND {number} <= %s"
            " ORDER BY originator_version DESC LIMIT 1"
        )
        self._on_conflict_update = "ON CONFLICT (id) DO UPDATE SET " + ", ".join(
            f"{c} = excluded.{c}" for c in _COLUMNS if c != "id"
        )
        self._summaries = t(SUMMARIES)
        self._unmet = t(UNMET)
        self._links = t(LINKS)
        self._periods = t(PERIODS)
        self._costs = t(COSTS)
        self._adoption = t(ADOPTION)
        self._events = events_table
        self._copy_summary_rows = f"COPY {self._summaries} ({', '.join(_COLUMNS)}) FROM STDIN"
        self._copy_periods = (
            f"COPY {self._periods} (use_case_id, stage, entered_at, left_at) FROM STDIN"
        )
        self._copy_costs = (
            f"COPY {self._costs} (notification_id, use_case_id, period_start, period_end,"
            " amount, currency) FROM STDIN"
        )
        self._copy_adoption = f"COPY {self._adoption} ({', '.join(ADOPTION_COLUMNS)}) FROM STDIN"
        topics = ", ".join(
            f"'{get_topic(cls)}'"
            for cls in (*STAGE_EVENTS, e.InferenceCostRecorded, e.AdoptionRecorded)
        )
        self._read_period_and_cost_events = (
            f"SELECT notification_id, originator_id, originator_version, topic, state"
            f" FROM {events_table} WHERE topic IN ({topics}) AND notification_id > %s"
            " AND notification_id <= %s ORDER BY notification_id LIMIT %s"
        )

    # --- the projection protocol ----------------------------------------------------------

    def begin(self, position: int) -> None:
        if position != self._committed_position:
            # Another worker projected events since: what this process holds is stale.
            self.forget()

    def apply(self, curs: Cursor, events: list[LoggedEvent], position_before: int) -> None:
        if self._policy is None:
            self._policy = self._policy_at(curs, position_before)
        self._load_missing(curs, events)
        rows = _StageAndCostRows(self)
        for logged in events:
            event = logged.event
            if isinstance(event, Policy.Event):
                self._policy = PolicyInForce(
                    version=event.originator_version,
                    values=event.values,  # type: ignore[attr-defined]
                )
                self._policy_changed = True
                continue
            if not isinstance(event, e.UseCaseEvent):
                continue
            key = str(event.originator_id)
            held = self._dirty.get(key) or self._cache.get(key)
            if held is not None and held.version != event.originator_version - 1:
                raise AssertionError(
                    f"summary of {key} is at version {held.version}, the log at "
                    f"{event.originator_version - 1}"
                )
            aggregate = event.mutate(held)
            assert isinstance(aggregate, UseCase)
            self._dirty[key] = aggregate
            try:
                project_stage_or_cost(rows, logged.notification_id, event)
            except ValueError as error:  # a time the store cannot hold; the summary counts it
                faults.record(
                    curs,
                    self.db,
                    self.name,
                    key,
                    event.originator_version,
                    logged.notification_id,
                    error,
                )
        self.write_costs(curs, rows.costs)
        self.write_adoption(curs, rows.adoption)

    def finish(self, curs: Cursor, position: int) -> None:
        assert self._policy is not None
        if self._policy_changed:
            self._rejudge_all(curs)
        self.write_transitions(curs, self._transitions)
        self._write_summaries(curs, self._dirty)
        for key, aggregate in self._dirty.items():
            if key in self._unwritable:
                self._cache.pop(key, None)
                continue
            self._cache[key] = aggregate
            self._cache.move_to_end(key)
        self._unwritable.clear()
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        self._dirty.clear()
        self._transitions.clear()
        self._policy_changed = False
        self._committed_position = position

    def forget(self) -> None:
        self._cache.clear()
        self._dirty.clear()
        self._unwritable.clear()
        self._transitions.clear()
        self._policy = None
        self._policy_changed = False
        self._committed_position = None

    # --- rebuilding at once (PostgreSQL) -------------------------------------------------------

    def rebuild_to(
        self, curs: Cursor, head: int, mapper: Mapper[Any], snapshots_table: str | None
    ) -> None:
        """Write every row as of ``head`` into emptied tables, in ``curs``'s transaction.

        What replaying the log event by event would write, at a cost that grows with the
        number of use cases rather than of events: each summary comes from its use case
        loaded at its latest version (snapshot and the events after it), every use case
        judged by the policy in force at ``head``, as the live projection leaves them after
        re-judging all at each policy change; stage periods and costs come from their own
        events. The transaction must see exactly the log up to ``head`` (REPEATABLE READ).
        """
        self.forget()
        self._policy = self._policy_at(curs, head)
        curs.execute(
            f"SELECT originator_id FROM {self._events}"
            " WHERE originator_version = 1 AND topic = %s AND notification_id <= %s"
            " ORDER BY notification_id",
            (get_topic(e.Registered), head),
        )
        ids = [row["originator_id"] for row in curs.fetchall()]
        unloadable: set[str] = set()
        for start in range(0, len(ids), REBUILD_CHUNK):
            chunk = ids[start : start + REBUILD_CHUNK]
            snapshots, events = select_latest_of_many(
                curs, self._events, snapshots_table, chunk, {}
            )
            loaded: dict[str, Any] = {}
            for stored in (*snapshots, *events):
                key = str(stored.originator_id)
                if key in unloadable:
                    continue
                try:
                    event: Any = mapper.to_domain_event(stored)
                    loaded[key] = event.mutate(loaded.get(key))
                except Exception as error:
                    version = stored.originator_version
                    faults.record(curs, self.db, self.name, key, version, None, error)
                    unloadable.add(key)
                    loaded.pop(key, None)
            self._copy_summaries(curs, loaded)
        self._copy_periods_and_costs(curs, head, mapper, unloadable)
        self.forget()

    def _copy_summaries(self, curs: Cursor, aggregates: dict[str, UseCase]) -> None:
        """Into emptied tables, COPY: what ``_write_summaries`` upserts, several times faster."""
        rows, unmet, links = self._summary_rows(curs, aggregates)
        with curs.copy(self._copy_summary_rows) as copy:  # type: ignore[attr-defined]
            for row in rows:
                copy.write_row(row)
        with curs.copy(f"COPY {self._unmet} (use_case_id, code) FROM STDIN") as copy:  # type: ignore[attr-defined]
            for pair in unmet:
                copy.write_row(pair)
        with curs.copy(f"COPY {self._links} (use_case_id, system, name) FROM STDIN") as copy:  # type: ignore[attr-defined]
            for link in links:
                copy.write_row(link)

    def _copy_periods_and_costs(
        self, curs: Cursor, head: int, mapper: Mapper[Any], unloadable: set[str]
    ) -> None:
        """Stage periods, costs and adoption readings from their own events (a small share of
        the log), decoded as every event is, a page at a time in log order; none of use cases
        that could not be loaded (as live, where their events were set aside whole)."""
        periods: list[tuple[Any, ...]] = []
        costs: list[tuple[Any, ...]] = []
        adoption: list[tuple[Any, ...]] = []
        open_periods: dict[str, tuple[str, Any]] = {}  # use case -> (stage, entered_at)
        after = 0
        while True:
            curs.execute(self._read_period_and_cost_events, (after, head, REBUILD_PAGE))
            rows = curs.fetchall()
            for row in rows:
                notification_id = int(row["notification_id"])
                stored = StoredEvent(
                    originator_id=row["originator_id"],
                    originator_version=int(row["originator_version"]),
                    topic=str(row["topic"]),
                    state=bytes(row["state"]),
                )
                key = str(stored.originator_id)
                if key in unloadable:
                    continue
                try:
                    event: Any = mapper.to_domain_event(stored)
                    if isinstance(event, e.InferenceCostRecorded):
                        costs.append(self.cost_row(notification_id, event))
                        continue
                    if isinstance(event, e.AdoptionRecorded):
                        adoption.append(self.adoption_row(notification_id, event))
                        continue
                    entered_at = self.db.ts(event.timestamp)
                except Exception as error:
                    version = stored.originator_version
                    faults.record(curs, self.db, self.name, key, version, notification_id, error)
                    continue
                previous = open_periods.get(key)
                if previous is not None:
                    periods.append((key, previous[0], previous[1], entered_at))
                open_periods[key] = (stage_entered(event), entered_at)
            if len(rows) < REBUILD_PAGE:
                break
            after = int(rows[-1]["notification_id"])
        periods.extend((key, stage, at, None) for key, (stage, at) in open_periods.items())
        for statement, values in (
            (self._copy_periods, periods),
            (self._copy_costs, costs),
            (self._copy_adoption, adoption),
        ):
            with curs.copy(statement) as copy:  # type: ignore[attr-defined]
                for value in values:
                    copy.write_row(value)

    def cost_row(self, notification_id: int, event: e.InferenceCostRecorded) -> tuple[Any, ...]:
        """The costs row of one cost event (ValueError for a time the store cannot hold)."""
        return (notification_id, *self.cost_values(str(event.originator_id), event.cost))

    def adoption_row(self, notification_id: int, event: e.AdoptionRecorded) -> tuple[Any, ...]:
        """The adoption row of one reading (ValueError for a time the store cannot hold)."""
        reading = event.adoption
        return (
            notification_id,
            str(event.originator_id),
            event.originator_version,
            self.db.ts(reading.measured_at),
            reading.active_users,
            reading.target_users,
            self.db.ts(event.timestamp),
        )

    def cost_values(self, use_case_id: str, cost: InferenceCost) -> tuple[Any, ...]:
        """A costs row but its notification id."""
        return (
            use_case_id,
            self.db.ts(cost.period_start),
            self.db.ts(cost.period_end),
            self.db.money(cost.amount),
            cost.currency,
        )

    # --- reading back what this projection wrote -------------------------------------------

    def _load_missing(self, curs: Cursor, events: list[LoggedEvent]) -> None:
        wanted = (
            {
                str(logged.event.originator_id)
                for logged in events
                if isinstance(logged.event, e.UseCaseEvent)
                and not isinstance(logged.event, e.Registered)
            }
            - self._dirty.keys()
            - self._cache.keys()
        )
        for aggregate in self._load(curs, "id", sorted(wanted)):
            self._cache[str(aggregate.id)] = aggregate

    def _load(self, curs: Cursor, column: str, values: list[str]) -> list[UseCase]:
        loaded = []
        for start in range(0, len(values), 500):
            chunk = values[start : start + 500]
            loaded.extend(
                self._load_where(curs, f"{column} IN ({', '.join(['%s'] * len(chunk))})", chunk)
            )
        return loaded

    def _load_where(self, curs: Cursor, condition: str, params: list[Any]) -> list[UseCase]:
        curs.execute(
            f"SELECT id, version, registered_at, updated_at, state_json FROM"
            f" {self._summaries} WHERE {condition}",
            params,
        )
        return [
            UseCase.from_state(
                UUID(row["id"]),
                int(row["version"]),
                self.db.read_required_ts(row["registered_at"]),
                self.db.read_required_ts(row["updated_at"]),
                UseCaseState.model_validate_json(row["state_json"]),
            )
            for row in curs.fetchall()
        ]

    def _policy_at(self, curs: Cursor, position: int) -> PolicyInForce:
        curs.execute(self._policy_events, (position,))
        row = curs.fetchone()
        if row is None:
            return PolicyInForce.default()
        # Read as the mapper would: a policy stored in an earlier form is upcast first.
        state = json.loads(bytes(row["state"]))
        upcast(resolve_topic(str(row["topic"])), state)
        values = state["values"]
        return PolicyInForce.model_validate(
            {"version": int(row["originator_version"]), "values": values}
        )

    def rejudge_judged_before(self, curs: Cursor, position: int, before: datetime) -> int:
        """Judge again, now, every summary of a use case in ``measurement`` judged before
        ``before`` (the start of this month): its gate into ``scale`` asks for the cost of
        the last complete month, which a new month changes without any event. Other stages'
        gates do not depend on the time. Returns how many were judged again."""
        if self._policy is None:
            self._policy = self._policy_at(curs, position)
        stale = self._load_where(
            curs, "stage = %s AND judged_at < %s", [Stage.MEASUREMENT.value, self.db.ts(before)]
        )
        for aggregate in stale:
            self._dirty.setdefault(str(aggregate.id), aggregate)
        self.finish(curs, position)
        return len(stale)

    # --- writing ---------------------------------------------------------------------------

    def _rejudge_all(self, curs: Cursor) -> None:
        """A new policy can change any gate verdict and whether value counts as measured;
        every summary records the policy it was judged by, the retired ones' included."""
        stages = [s.value for s in Stage]
        for aggregate in self._load(curs, "stage", stages):
            self._dirty.setdefault(str(aggregate.id), aggregate)

    def _summary_rows(
        self, curs: Cursor, aggregates: dict[str, UseCase]
    ) -> tuple[list[tuple[Any, ...]], list[tuple[str, str]], list[tuple[str, str, str]]]:
        """The summary row of each use case, its (use case, unmet code) rows and its (use
        case, system, name) link rows; a use case whose row cannot be written is recorded as
        a fault and keeps its last rows."""
        assert self._policy is not None
        view = _SummaryRows(self)
        for key, aggregate in aggregates.items():
            try:
                project_summary(view, key, aggregate, self._policy)
            except Exception as error:
                faults.record(curs, self.db, self.name, key, aggregate.version, None, error)
                # Not kept: this process must go on from the row as written, as any other
                # worker would (whose next event of this use case is then a fault too).
                self._unwritable.add(key)
                continue
        return view.rows, view.unmet, view.links

    def _write_summaries(self, curs: Cursor, aggregates: dict[str, UseCase]) -> None:
        if not aggregates:
            return
        rows, unmet, links = self._summary_rows(curs, aggregates)
        self.write_summaries(curs, rows, unmet, links)

    def write_summaries(
        self,
        curs: Cursor,
        rows: list[tuple[Any, ...]],
        unmet: list[tuple[str, str]],
        links: list[tuple[str, str, str]],
    ) -> None:
        """Upsert summary rows (``row``) and replace their use cases' unmet codes and links."""
        if not rows:
            return
        self.db.insert_rows(
            curs, self._summaries, _COLUMNS, rows, on_conflict=self._on_conflict_update
        )
        keys = [row[0] for row in rows]
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            for table in (self._unmet, self._links):
                curs.execute(
                    f"DELETE FROM {table} WHERE use_case_id IN ({', '.join(['%s'] * len(chunk))})",
                    chunk,
                )
        self.db.insert_rows(curs, self._unmet, ("use_case_id", "code"), unmet)
        self.db.insert_rows(curs, self._links, ("use_case_id", "system", "name"), links)

    def row(self, summary: UseCaseSummary) -> tuple[Any, ...]:
        """The summaries table's row of a summary (its unmet codes are rows of their own)."""
        # getattr, not dataclasses.astuple: that deep-copies every field on the way.
        row = []
        for column in _COLUMNS:
            value = getattr(summary, column)
            if column in _TIMESTAMPS:
                value = self.db.ts(value)
            elif column == "estimated_annual_value":
                value = self.db.money(value)
            row.append(value)
        return tuple(row)

    def write_costs(self, curs: Cursor, rows: list[tuple[Any, ...]]) -> None:
        """Insert costs rows (``cost_row``)."""
        columns = ("notification_id", "use_case_id", "period_start", "period_end", "amount")
        self.db.insert_rows(curs, self._costs, (*columns, "currency"), rows)

    def write_adoption(self, curs: Cursor, rows: list[tuple[Any, ...]]) -> None:
        """Insert adoption rows (``adoption_row``)."""
        self.db.insert_rows(curs, self._adoption, ADOPTION_COLUMNS, rows)

    def write_transitions(
        self, curs: Cursor, transitions_by_use_case: dict[str, list[tuple[str, Any]]]
    ) -> None:
        """Close each use case's open period at its first transition; open one per transition.

        ``transitions_by_use_case``: use case -> [(stage entered, when)], in log order.
        """
        closes, opens = [], []
        for key, transitions in transitions_by_use_case.items():
            closes.append((self.db.ts(transitions[0][1]), key))
            for i, (stage, entered_at) in enumerate(transitions):
                left_at = transitions[i + 1][1] if i + 1 < len(transitions) else None
                opens.append((key, stage, self.db.ts(entered_at), self.db.ts(left_at)))
        if closes:
            curs.executemany(
                f"UPDATE {self._periods} SET left_at = %s"
                " WHERE use_case_id = %s AND left_at IS NULL",
                closes,
            )
            columns = ("use_case_id", "stage", "entered_at", "left_at")
            self.db.insert_rows(curs, self._periods, columns, opens)


class _StageAndCostRows:
    """Stage moves and cost reports as the summary projection keeps them (a
    ``StageAndCostView``): transitions held until the transaction ends, cost rows per page."""

    def __init__(self, projection: SummaryProjection) -> None:
        self._projection = projection
        self.costs: list[tuple[Any, ...]] = []
        self.adoption: list[tuple[Any, ...]] = []

    def enter_stage(self, use_case_id: str, stage: str, at: datetime) -> None:
        self._projection._transitions.setdefault(use_case_id, []).append((stage, at))

    def record_cost(self, number: int, use_case_id: str, cost: InferenceCost) -> None:
        self.costs.append((number, *self._projection.cost_values(use_case_id, cost)))

    def record_adoption(self, number: int, event: e.AdoptionRecorded) -> None:
        self.adoption.append(self._projection.adoption_row(number, event))


class _SummaryRows:
    """Summaries as table rows (a ``SummaryView``), with their unmet codes and links."""

    def __init__(self, projection: SummaryProjection) -> None:
        self._row = projection.row
        self.rows: list[tuple[Any, ...]] = []
        self.unmet: list[tuple[str, str]] = []
        self.links: list[tuple[str, str, str]] = []

    def write_summary(self, summary: UseCaseSummary) -> None:
        row = self._row(summary)  # first: a summary that cannot be a row leaves nothing
        self.rows.append(row)
        self.unmet.extend((summary.id, code) for code in summary.unmet_codes)
        self.links.extend((summary.id, system, name) for system, name in summary.external_models)
