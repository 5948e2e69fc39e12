"""The projection of an append: what the read models gain from events as they are stored.

Pure functions of an abstract view and the events (the way eventsourcing's own examples cut
a projection): ``project_append`` says *what* the read models gain (a summary per use case,
a history entry per event, a stage period per stage move, a cost per cost report) by
calling a ``ReadModelView``; *how* it is kept is the view's. ``infra.readmodels.inline``
implements it as the rows an append writes in its own transaction, ``InMemoryView`` below as
plain collections for unit tests; the projection runners that rebuild and catch up
(``infra.readmodels.history`` and ``.summaries``) call its parts, ``project_history``,
``project_summary`` and ``project_stage_or_cost``, with views of their own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from domain import clock
from domain.policy import PolicyInForce
from domain.usecase import UseCase
from domain.usecase import events as e
from domain.values import Adoption, InferenceCost, Stage
from projections.history import HistoryEntry, history_entry
from projections.summaries import UseCaseSummary, summarize

STAGE_EVENTS = (e.Registered, e.StageAdvanced, e.ReturnedToStage, e.Retired)
"""The events that put a use case in a stage (and so open a stage period)."""


class HistoryView(Protocol):
    def append_history(self, entry: HistoryEntry) -> None:
        """One more history entry."""


class SummaryView(Protocol):
    def write_summary(self, summary: UseCaseSummary) -> None:
        """The use case's summary is now this one (its unmet codes with it)."""


class StageAndCostView(Protocol):
    def enter_stage(self, use_case_id: str, stage: str, at: datetime) -> None:
        """The use case entered ``stage`` at ``at``: its open stage period closes there."""

    def record_cost(self, number: int, use_case_id: str, cost: InferenceCost) -> None:
        """A cost report, numbered as its event."""

    def record_adoption(self, number: int, event: e.AdoptionRecorded) -> None:
        """An adoption reading, numbered as its event (its version and time are the event's)."""


class ReadModelView(HistoryView, SummaryView, StageAndCostView, Protocol):
    """The read models, as the projections see them (each projection needs only its part:
    the history runner a ``HistoryView``, the summary runner the other two)."""


def stage_entered(event: Any) -> str:
    """The stage a stage event (registration, a move, retirement) puts its use case in."""
    if isinstance(event, e.Registered):
        return Stage.PROPOSED.value
    if isinstance(event, e.Retired):
        return Stage.RETIRED.value
    return str(event.to_stage.value)


def project_history(
    view: HistoryView, numbers: Sequence[int], stored: Sequence[StoredEvent]
) -> None:
    """A history entry per event, read from the event as stored."""
    for number, event in zip(numbers, stored, strict=True):
        view.append_history(
            history_entry(
                number, event.originator_id, event.originator_version, event.topic, event.state
            )
        )


def project_summary(
    view: SummaryView, aggregate_id: UUID | str, aggregate: Any, policy: PolicyInForce
) -> None:
    """A use case's summary as it stands, judged by ``policy`` now (when it is written)."""
    if not isinstance(aggregate, UseCase):
        raise TypeError(f"no summary for a {type(aggregate).__name__}")
    view.write_summary(
        summarize(
            str(aggregate_id),
            aggregate.state,
            aggregate.version,
            aggregate.created_on,
            aggregate.modified_on,
            policy,
            clock.now(),
        )
    )


def project_stage_or_cost(view: StageAndCostView, number: int, event: Any) -> None:
    """What one event adds to the stage periods, the costs or the adoption readings, if
    anything."""
    if isinstance(event, STAGE_EVENTS):
        view.enter_stage(str(event.originator_id), stage_entered(event), event.timestamp)
    elif isinstance(event, e.InferenceCostRecorded):
        view.record_cost(number, str(event.originator_id), event.cost)
    elif isinstance(event, e.AdoptionRecorded):
        view.record_adoption(number, event)


def project_append(
    view: ReadModelView,
    numbers: Sequence[int],
    stored: Sequence[StoredEvent],
    events: Sequence[Any],
    aggregates: Mapping[UUID, Any],
    policy: PolicyInForce,
) -> None:
    """What the read models gain from one append.

    ``stored`` and ``events`` are the append's events as stored and as domain events, in
    log order; ``numbers`` their notification ids (or, before they are known, their places
    in the append, which the view maps when it can); ``aggregates`` every use case saved, as
    it stands after them; ``policy`` the policy in force, which the summaries are judged by.
    Raises where an event or a use case cannot be projected (the caller decides what then).
    """
    project_history(view, numbers, stored)
    for aggregate_id, aggregate in aggregates.items():
        project_summary(view, aggregate_id, aggregate, policy)
    for number, event in zip(numbers, events, strict=True):
        project_stage_or_cost(view, number, event)


@dataclass
class InMemoryView:
    """A ``ReadModelView`` in plain collections: for unit tests, and to say in a few lines
    what the SQL view keeps."""

    summaries: dict[str, UseCaseSummary] = field(default_factory=dict)
    history: list[HistoryEntry] = field(default_factory=list)
    periods: dict[str, list[tuple[str, datetime, datetime | None]]] = field(default_factory=dict)
    """Per use case: (stage, entered at, left at or None while it is there), in order."""
    costs: dict[int, tuple[str, InferenceCost]] = field(default_factory=dict)
    adoption: dict[int, tuple[str, int, Adoption]] = field(default_factory=dict)
    """By event number: (use case, the version it was recorded at, the reading)."""

    def write_summary(self, summary: UseCaseSummary) -> None:
        self.summaries[summary.id] = summary

    def append_history(self, entry: HistoryEntry) -> None:
        self.history.append(entry)

    def enter_stage(self, use_case_id: str, stage: str, at: datetime) -> None:
        periods = self.periods.setdefault(use_case_id, [])
        if periods and periods[-1][2] is None:
            left, entered, _ = periods[-1]
            periods[-1] = (left, entered, at)
        periods.append((stage, at, None))

    def record_cost(self, number: int, use_case_id: str, cost: InferenceCost) -> None:
        self.costs[number] = (use_case_id, cost)

    def record_adoption(self, number: int, event: e.AdoptionRecorded) -> None:
        self.adoption[number] = (str(event.originator_id), event.originator_version, event.adoption)
