"""Following the log as appends commit, for live subscribers (GraphQL subscriptions).

One ``LogFollower`` per process, on a thread of its own, reads the event log past its
position each time it is woken and hands every page of committed use-case events, in
notification-id order, to the transport (``api.graphql.feed``), which fans them out to the
subscribers of the process. Subscribers cost no query each: one reader serves them all.

The wake-up carries nothing (``Database.append_signal``): on PostgreSQL, a NOTIFY each
append sends in its own transaction, which the database delivers at the commit to every
listening process; on SQLite, which one process serves, the append itself after its commit.
What is delivered is read from the log, after the last position delivered, so a wake-up
merged with another, or missed while the listening connection was down, loses nothing, and
the order is the log's: appends commit in notification-id order (they take the log's lock,
``Database.lock_log``). A rolled-back append sends nothing and leaves nothing to read.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic

from domain.application import Stagegate
from domain.policy import POLICY_ID, PolicyInForce
from domain.usecase import UseCase
from domain.values import Stage
from infra.database import AppendSignal, Database
from projections.appended import STAGE_EVENTS, stage_entered
from projections.history import UnreadableEvent, history_entry
from projections.live import CommittedEvent, Interest

log = logging.getLogger(__name__)

PAGE_SIZE = 500
"""Events read from the log per query."""
WAIT_SECONDS = 1.0
"""How long the follower waits for a wake-up before looking whether it is to stop."""
RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0, 10.0)
"""Pauses before listening again after a failure, one after another (then the last)."""
REMEMBERED = 10_000
"""Use cases whose key and stage the follower remembers (the least recently seen go)."""
_STAGE_TOPICS = frozenset(get_topic(event) for event in STAGE_EVENTS)


class LogFollower:
    """Implements ``projections.live.ChangeSource`` on the application's database."""

    def __init__(self, db: Database, app: Stagegate, events_table: str) -> None:
        self._db = db
        self._app = app
        n = db.log_position_column
        self._page_after = (
            f"SELECT {n} AS n, originator_id, originator_version, topic, state"
            f" FROM {events_table} WHERE {n} > %s ORDER BY {n} LIMIT {PAGE_SIZE}"
        )
        self._head = f"SELECT MAX({n}) AS n FROM {events_table}"
        self._position: int | None = None
        """The last log position read (None until following starts)."""
        self._keys: OrderedDict[UUID, str] = OrderedDict()
        self._stages: OrderedDict[UUID, tuple[int, Stage]] = OrderedDict()
        """Per use case, the last version read and the stage it left the use case in."""
        self._readers: list[_Reader] = []
        self._signal: AppendSignal | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        """Guards the readers and the thread's start."""
        self._thread: threading.Thread | None = None
        self._positioned = threading.Event()
        """Set once the position is read (the thread starts on the first ``follow``, and
        opens a listening connection first, which may take a while under load)."""

    # --- ChangeSource ----------------------------------------------------------------------

    def follow(
        self,
        deliver: Callable[[Sequence[CommittedEvent]], None],
        interest: Callable[[], Interest],
    ) -> Callable[[], None]:
        reader = _Reader(deliver, interest)
        with self._lock:
            self._readers = [*self._readers, reader]
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._run, name="log-follower", daemon=True)
                self._thread.start()

        def unfollow() -> None:
            with self._lock:
                self._readers = [r for r in self._readers if r is not reader]

        return unfollow

    def wait_following(self, timeout: float) -> bool:
        return self._positioned.wait(timeout)

    def stop(self) -> None:
        """Stop the thread (for good: the process is closing its services)."""
        self._stop.set()
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout=10)

    def appended(self) -> None:
        """An append of this process committed (``Appends.after_commit``)."""
        signal = self._signal
        if signal is not None:
            signal.appended()

    # --- the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self._listen_and_read()
                return
            except Exception:
                pause = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]
                failures += 1
                log.warning(
                    "following the log for live subscribers failed; listening again in %s s"
                    " (nothing committed meanwhile is lost: it is read from the log)",
                    pause,
                    exc_info=True,
                )
                self._stop.wait(pause)

    def _listen_and_read(self) -> None:
        """Listen, then read whatever the log holds past the position; then, each time an
        append wakes the signal, read again. Returns when stopped; raises on a failure."""
        signal = self._db.append_signal()
        self._signal = signal
        try:
            # Listening before the head is read: an append committing between the two is
            # then both read and heard (read twice is read once: the position moves past it).
            if self._position is None:
                self._position = self._read_head()
            self._positioned.set()
            self._read_past_position()
            while not self._stop.is_set():
                if signal.wait(WAIT_SECONDS) and not self._stop.is_set():
                    self._read_past_position()
        finally:
            self._signal = None
            signal.close()

    def _read_head(self) -> int:
        rows = self._db.select(self._head)
        return int(rows[0]["n"] or 0) if rows else 0

    def _read_past_position(self) -> None:
        assert self._position is not None
        while not self._stop.is_set():
            readers = self._readers
            interest = Interest()
            for reader in readers:
                interest |= reader.interest()
            if interest.nothing:
                # Nobody to tell: move to the head without reading the events.
                self._position = max(self._position, self._read_head())
                return
            rows = self._db.select(self._page_after, (self._position,))
            if not rows:
                return
            events = [event for row in rows if (event := self._committed(row, interest))]
            self._position = int(rows[-1]["n"])
            if events:
                for reader in readers:
                    try:
                        reader.deliver(events)
                    except Exception:  # one reader's failure is not the others'
                        log.exception("a reader of the log failed to take a page of events")
            if len(rows) < PAGE_SIZE:
                return

    # --- one event -------------------------------------------------------------------------

    def _committed(self, row: dict[str, Any], interest: Interest) -> CommittedEvent | None:
        """The event of a log row as subscribers are told of it; None for the policy's
        events, events nobody asked for and an event that cannot be read."""
        aggregate_id = UUID(str(row["originator_id"]))
        if aggregate_id == POLICY_ID:
            return None
        number, version = int(row["n"]), int(row["originator_version"])
        topic, state = str(row["topic"]), bytes(row["state"])
        if not interest.wants(str(aggregate_id)):
            return None
        try:
            entry = history_entry(number, aggregate_id, version, topic, state)
        except UnreadableEvent as error:
            # The read models set it aside too (``stagegate projections status``).
            log.warning("an event not told to live subscribers: %s", error)
            return None
        key = self._key_of(aggregate_id)
        stage_before, stage = self._stages_around(aggregate_id, key, version, topic, state)
        use_case: UseCase | None = None
        policy: PolicyInForce | None = None
        if entry.aggregate_id in interest.use_case_ids:
            use_case = self._app.use_case(key, version=version, to_read=True)
            policy = self._app.policy()
        return CommittedEvent(entry, key, stage, stage_before, use_case, policy)

    def _key_of(self, aggregate_id: UUID) -> str:
        key = self._keys.get(aggregate_id)
        if key is None:
            [registered] = self._app.recorder.select_events(aggregate_id, lte=1, limit=1)
            key = str(self._app.mapper.to_domain_event(registered).key)  # type: ignore[attr-defined]
            _remember(self._keys, aggregate_id, key)
        else:
            self._keys.move_to_end(aggregate_id)
        return key

    def _stages_around(
        self, aggregate_id: UUID, key: str, version: int, topic: str, state: bytes
    ) -> tuple[Stage | None, Stage]:
        """The use case's stage before this event and after it."""
        known = self._stages.get(aggregate_id)
        before: Stage | None
        if version == 1:
            before = None
        elif known is not None and known[0] == version - 1:
            before = known[1]
        else:  # not seen, or events passed by while nobody listened
            before = self._app.use_case(key, version=version - 1, to_read=True).state.stage
        after = before
        if topic in _STAGE_TOPICS:
            stored = StoredEvent(aggregate_id, version, topic, state)
            after = Stage(stage_entered(self._app.mapper.to_domain_event(stored)))
        assert after is not None, "a use case's first event registers it, in a stage"
        _remember(self._stages, aggregate_id, (version, after))
        return before, after


@dataclass(frozen=True)
class _Reader:
    deliver: Callable[[Sequence[CommittedEvent]], None]
    interest: Callable[[], Interest]


def _remember(memory: OrderedDict[UUID, Any], aggregate_id: UUID, value: Any) -> None:
    memory[aggregate_id] = value
    memory.move_to_end(aggregate_id)
    if len(memory) > REMEMBERED:
        memory.popitem(last=False)
