"""What live subscribers are told: each committed use-case event, in the log's order.

The transport (``api.graphql.feed``) asks a ``ChangeSource`` to follow the log and hand it
pages of ``CommittedEvent``; the infrastructure (``infra.live``) reads them from the log
itself, after each commit, so what a subscriber is told is exactly what was committed, in
notification-id order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from domain.policy import PolicyInForce
from domain.usecase import UseCase
from domain.values import Stage
from projections.history import HistoryEntry


@dataclass(frozen=True)
class CommittedEvent:
    """One committed event of a use case."""

    entry: HistoryEntry
    """The event as its history entry (log position, version, who, why, payload)."""
    key: str
    stage: Stage
    """The use case's stage once this event applied."""
    stage_before: Stage | None
    """Its stage before this event; None for its registration."""
    use_case: UseCase | None
    """The use case as this event left it (not to be changed), where it was asked for
    (``Interest.use_case_ids``); else None."""
    policy: PolicyInForce | None
    """The policy in force when the event was read, to judge ``use_case``'s gate by; None
    with ``use_case``."""

    def in_any_of(self, stages: frozenset[Stage]) -> bool:
        """Whether the use case was in one of ``stages`` before this event or is after it:
        a board of those stages hears of use cases entering and leaving them."""
        return self.stage in stages or self.stage_before in stages


@dataclass(frozen=True)
class Interest:
    """What subscribers want read from the log now."""

    use_case_ids: frozenset[str] = frozenset()
    """Use cases (ids, as ``HistoryEntry.aggregate_id``) to be loaded as each event leaves
    them."""
    every_event: bool = False
    """Whether every use case's events are wanted (with key and stages), not only theirs."""

    @property
    def nothing(self) -> bool:
        return not self.use_case_ids and not self.every_event

    def wants(self, aggregate_id: str) -> bool:
        return self.every_event or aggregate_id in self.use_case_ids

    def __or__(self, other: Interest) -> Interest:
        return Interest(
            self.use_case_ids | other.use_case_ids, self.every_event or other.every_event
        )


class ChangeSource(Protocol):
    """Follows the log for the live subscribers of one process."""

    def follow(
        self,
        deliver: Callable[[Sequence[CommittedEvent]], None],
        interest: Callable[[], Interest],
    ) -> Callable[[], None]:
        """Follow the log from now on for one more reader: each page of events committed
        from then on goes to ``deliver`` (called from another thread, one page at a time),
        in the log's order, with what ``interest`` asks for when the page is read. Returns
        what stops this reader's deliveries."""

    def wait_following(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until the log is followed from a position read
        after the first ``follow``: from then on every commit is delivered. Whether it is."""
