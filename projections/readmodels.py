"""What the read side answers, as the API sees it: pages of use cases, the backlog, the
portfolio, a use case's history. The SQL behind it is infrastructure (``infra/readmodels``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Generic, Protocol, TypeVar

from domain.gates import RequirementCode
from domain.state import UseCaseState
from domain.values import Stage
from projections.history import HistoryEntry

T = TypeVar("T")


@dataclass(frozen=True)
class UseCaseRecord:
    """A use case as the read model holds it (as of its last projected event)."""

    id: str
    version: int
    registered_at: datetime
    updated_at: datetime
    state: UseCaseState


@dataclass(frozen=True)
class AdoptionReading:
    """One adoption measurement of a use case, as its history holds it."""

    version: int
    """The use case's version the reading was recorded at."""
    active_users: int
    target_users: int
    measured_at: datetime
    recorded_at: datetime

    @property
    def rate(self) -> float:
        return self.active_users / self.target_users


@dataclass(frozen=True)
class BacklogEntry:
    rank: int
    """1 is the first to invest in."""
    record: UseCaseRecord


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a cursor-paginated list; ``cursors[i]`` points just after ``items[i]``."""

    items: list[T]
    cursors: list[str]
    has_next_page: bool
    has_previous_page: bool = False
    """Known only where it is cheap: paging history backwards, or after a cursor."""


@dataclass(frozen=True)
class UseCaseFilter:
    stages: tuple[Stage, ...] = ()
    business_unit: str | None = None
    owner: str | None = None
    """A person who holds any of the three owner roles, or is the approver."""
    unmet_code: RequirementCode | None = None
    stuck_for_days: int | None = None
    """No stage transition for at least this many days (scale and retired never count)."""


@dataclass(frozen=True)
class StageFigures:
    stage: Stage
    count: int
    average_days_in_stage: float | None
    """Mean time use cases spent in this stage, counting those still in it up to now."""


@dataclass(frozen=True)
class FunnelStep:
    """Of the use cases that ever entered ``pilot``, those that reached ``stage``."""

    stage: Stage
    reached: int
    median_days_in_stage: float | None
    """The median time the stage took, over every completed stay in it (left for another
    stage); None while nobody has left it."""


@dataclass(frozen=True)
class ValueAndCost:
    estimated_annual_value: Decimal
    annual_inference_cost: Decimal


@dataclass(frozen=True)
class ValueAgainstCost:
    currency: str
    estimated_annual_value: Decimal
    annual_inference_cost: Decimal
    """Inference cost reported for periods ending in the last 365 days."""
    proven: ValueAndCost
    """Of the use cases whose value is proven (``IMPROVEMENT_SHOWN`` holds)."""
    unproven: ValueAndCost
    """Of the others: their stated value is a statement, not a measurement."""


@dataclass(frozen=True)
class Portfolio:
    stages: list[StageFigures]
    stuck_pilots: list[str]
    """Keys of pilots with no transition for ``stuck_after_days``, longest stuck first."""
    stuck_after_days: int
    deployed: int
    """Use cases with a production deployment, not retired."""
    deployed_with_measured_value: int
    value_against_cost: list[ValueAgainstCost] = field(default_factory=list)
    funnel: list[FunnelStep] = field(default_factory=list)
    """Pilot to production and on: pilot, acceptance, deployment, measurement, scale."""

    @property
    def measured_value_share(self) -> float | None:
        return self.deployed_with_measured_value / self.deployed if self.deployed else None


@dataclass(frozen=True)
class ProjectionFault:
    """An event a projection could not apply, set aside so the rest of the log goes on."""

    projection: str
    aggregate_id: str
    version: int
    notification_id: int | None
    """Where the event is in the log, when the fault is an event's; None when it is a use
    case's summary (written from its state, not from one event)."""
    reason: str
    recorded_at: datetime


class ReadModels(Protocol):
    """The read side. Every answer is as of the last projected event."""

    def refresh(self) -> None:
        """Bring the read models up to every event this process wrote (read-your-writes)."""

    def use_cases(
        self, filter: UseCaseFilter, first: int, after: str | None
    ) -> Page[UseCaseRecord]:
        """Use cases by key."""

    def count_use_cases(self, filter: UseCaseFilter) -> int: ...

    def backlog(self, first: int, after: str | None) -> Page[BacklogEntry]:
        """Use cases not yet in scale (nor retired), strongest on all three dimensions first."""

    def portfolio(self, stuck_after_days: int) -> Portfolio:
        """The portfolio figures as of now."""

    def history(
        self, aggregate_id: str, first: int, after: str | None, newest: bool = False
    ) -> Page[HistoryEntry]:
        """A use case's audit entries, oldest first; with ``newest``, the ``first`` newest
        entries before the ``after`` cursor (still oldest first within the page)."""

    def adoption_series(
        self,
        use_case_ids: list[str],
        size: int,
        after: str | None,
        newest: bool = False,
        until_version: int | None = None,
    ) -> dict[str, Page[AdoptionReading]]:
        """Each use case's adoption readings in the order they were measured (ties: recorded):
        the first ``size`` after cursor ``after`` or, with ``newest``, the ``size`` latest.
        One query for all the use cases (a page of them asks at once); a cursor belongs to one
        use case, so with ``after`` give one; ``until_version`` (one use case too): only the
        readings recorded up to that version."""
        ...

    def linked_use_cases(self, system: str, name: str) -> list[str]:
        """The keys of the use cases a model in an external registry (``system``, ``name``)
        is linked to."""
        ...

    def history_entry(self, aggregate_id: str, version: int) -> HistoryEntry | None:
        """One audit entry of a use case, by version (None: there is none)."""

    def version_at(self, aggregate_id: str, at: datetime) -> int | None:
        """The use case's version as it stood at ``at`` (None: it did not exist yet)."""

    def policy_version_at(self, at: datetime) -> int:
        """The policy version in force at ``at`` (0: the built-in default)."""

    def projection_faults(self, limit: int = 20) -> tuple[int, list[ProjectionFault]]:
        """How many events the projections set aside, and the first ``limit`` of them."""
