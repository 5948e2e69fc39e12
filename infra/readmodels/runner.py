"""Running a projection exactly once per event: its rows and its position in one transaction.

Each transaction locks the projection's position row, reads the log after it in pages,
applies them, and moves the position, so a crash at any point rolls back to a consistent
position and a second worker for the same projection waits instead of applying an event twice.

An event the projection cannot apply does not stop it: the transaction that met it is tried
again in halves, down to the one event that fails on its own, which is set aside as a fault
(``infra.readmodels.faults``), named in the log and in ``/readyz``. Only what can be an
event's doing is set aside: a value the database refuses (``DataError``, ``IntegrityError``)
or a Python error while building rows. A database that is down or unreachable, a missing
table or right, a read-only database are not the events': those errors are raised and the
work is retried later. And where one fault follows another ``MAX_FAULTS_IN_A_ROW`` times, the
cause is taken to be the projection's, not the events', and it stops setting them aside.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.persistence import (
    DataError,
    IntegrityError,
    Mapper,
    PersistenceError,
    StoredEvent,
)

from infra.database import Cursor, Database
from infra.readmodels import faults
from infra.readmodels.schema import POSITIONS

log = logging.getLogger(__name__)

PAGE_SIZE = 1000
REBUILD_IDLE_TIMEOUT = "2min"
"""How long a rebuild's transaction may wait between statements (PostgreSQL): it works in
Python between them, a chunk of use cases at a time, which on a busy host outlasted the
connections' 5 s idle-in-transaction timeout and ended a rebuild (and an upgrade's) part-way."""
MAX_FAULTS_IN_A_ROW = 20
"""Events set aside one after another, none applied between, before the runner stops."""


def _the_events_doing(error: BaseException) -> bool:
    """Whether an error can come from the events being applied (so one may be set aside)."""
    if isinstance(error, PersistenceError):
        return isinstance(error, (DataError, IntegrityError))
    return isinstance(error, Exception)


class TooManyFaults(RuntimeError):
    """Event after event failed: the cause is the projection's, so none is set aside."""


@dataclass(frozen=True)
class LoggedEvent:
    notification_id: int
    stored: StoredEvent
    """The event as stored: its canonical JSON in ``stored.state``."""
    mapper: Mapper[Any]

    @cached_property
    def event(self) -> Any:
        """The domain event, decoded on first use (the history reads the JSON itself)."""
        return self.mapper.to_domain_event(self.stored)


class Projection(Protocol):
    name: str

    def begin(self, position: int) -> None:
        """A transaction starts at ``position`` (another worker may have moved it since)."""

    def apply(self, curs: Cursor, events: list[LoggedEvent], position_before: int) -> None:
        """Write the rows for ``events`` (in log order) through ``curs``."""

    def finish(self, curs: Cursor, position: int) -> None:
        """Write what was held back across pages, before the position moves to ``position``."""

    def forget(self) -> None:
        """Drop in-memory state: the transaction it belonged to did not commit."""


FaultHook = Callable[[str], None]
"""Called at named points of a transaction; tests raise from it to simulate a crash."""


class ProjectionRunner:
    """Catches one projection up with the event log."""

    def __init__(
        self,
        db: Database,
        mapper: Mapper[Any],
        events_table: str,
        projection: Projection,
        fault: FaultHook | None = None,
    ) -> None:
        self.db = db
        self.mapper = mapper
        self.projection = projection
        self.fault = fault or (lambda _point: None)
        self._lock = threading.Lock()  # one transaction at a time per runner in this process
        self._faults_in_a_row = 0
        number = db.log_position_column
        self._read_log = (
            f"SELECT {number} AS notification_id, originator_id, originator_version, topic, state"
            f" FROM {events_table} WHERE {number} > %s ORDER BY {number} LIMIT %s"
        )
        positions = db.table(POSITIONS)
        self._positions = positions
        self._select_position = f"SELECT position FROM {positions} WHERE projection = %s"
        self._count_log = f"SELECT COUNT(*) AS n, MAX(notification_id) AS head FROM {events_table}"
        self._move_position = f"UPDATE {positions} SET position = %s WHERE projection = %s"
        self._owes = (
            f"SELECT EXISTS (SELECT 1 FROM {events_table} WHERE {number} >"
            f" COALESCE((SELECT position FROM {positions} WHERE projection = %s), 0)) AS owed"
        )

    @property
    def name(self) -> str:
        return self.projection.name

    def position(self) -> int:
        with self.db.transaction() as curs:
            curs.execute(self._select_position, (self.name,))
            row = curs.fetchone()
        return int(row["position"]) if row else 0

    def run_transaction(self, max_events: int = PAGE_SIZE, page_size: int = PAGE_SIZE) -> int:
        """Project up to ``max_events`` new events in one transaction; returns how many.

        If the transaction fails for something the events can have caused, it is tried again
        in halves, and the event that fails alone is set aside as a fault (module doc).
        """
        with self._lock:
            if not self._owes_events():
                return 0
            try:
                return self._attempt(max_events, page_size)
            except Exception as error:
                if not _the_events_doing(error):
                    raise
                return self._isolate(max_events)

    def _owes_events(self) -> bool:
        """Whether the log holds an event past this projection's position, asked without a
        transaction or a lock. Where it holds none (every append wrote its own rows), the
        locked transaction is not begun: the background runner asks several times a second,
        and each such transaction locked the position row that every append locks too, and
        on SQLite took the database's write lock and synced the file. An event appended just
        after the question is found by the next one, as it would have been after the lock."""
        [row] = self.db.select(self._owes, (self.name,))
        return bool(row["owed"])

    def catch_up(self, max_events_per_transaction: int = PAGE_SIZE) -> int:
        """Project every event written so far; returns how many."""
        total = 0
        while True:
            done = self.run_transaction(max_events_per_transaction)
            total += done
            if done == 0:
                return total

    def maintain(self, work: Callable[[Cursor, int], int]) -> int:
        """Run ``work(curs, position)`` in a transaction that holds this projection's position
        (so no event is projected meanwhile, by this process or another); returns its count."""
        with self._lock:
            try:
                with self.db.transaction() as curs:
                    self._lock_and_read_position(curs)
                    row = curs.fetchone()
                    position = int(row["position"]) if row else 0
                    self.projection.begin(position)
                    return work(curs, position)
            except BaseException:
                self.projection.forget()
                raise

    def rebuild_at_once(self, rebuild: Callable[[Cursor, int], None]) -> int:
        """Project the whole log in one transaction with ``rebuild(curs, head)`` (which writes
        every row as of ``head`` into emptied tables); returns how many events it covered.

        REPEATABLE READ: the log read is exactly the log up to ``head``, whatever is appended
        meanwhile; those later events are the live runner's, from ``head`` on.
        """
        with self._lock:
            try:
                with self.db.transaction() as curs:
                    curs.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                    curs.execute(
                        "SELECT set_config('idle_in_transaction_session_timeout', %s, true)",
                        (REBUILD_IDLE_TIMEOUT,),
                    )
                    self._lock_and_read_position(curs)
                    row = curs.fetchone()
                    if row is None or int(row["position"]) != 0:
                        raise RuntimeError(f"{self.name}: rebuild needs emptied read models")
                    curs.execute(self._count_log)
                    counted = curs.fetchone()
                    assert counted is not None
                    done, head = int(counted["n"]), int(counted["head"] or 0)
                    if done:
                        rebuild(curs, head)
                        curs.execute(self._move_position, (head, self.name))
            except BaseException:
                self.projection.forget()
                raise
        return done

    def _attempt(self, max_events: int, page_size: int) -> int:
        try:
            applied = self._run_transaction(max_events, page_size)
        except BaseException:
            self.projection.forget()
            raise
        if applied:
            self._faults_in_a_row = 0
        return applied

    def _isolate(self, max_events: int) -> int:
        """Halve the transaction until the event that fails alone is found; set it aside.

        What applies before it commits on the way, so a rebuild's large transaction costs a
        few halvings, not one transaction per event.
        """
        done, size = 0, max(1, max_events // 2)
        while done < max_events:
            started_at = self.position()
            try:
                applied = self._attempt(min(size, max_events - done), PAGE_SIZE)
            except Exception as error:
                if not _the_events_doing(error):
                    raise
                if size == 1:
                    return done + self._set_aside(error, started_at)
                size //= 2
                continue
            if applied == 0:
                break
            done += applied
        return done

    def _set_aside(self, error: Exception, failed_at: int) -> int:
        """Record the event after ``failed_at`` as a fault and move past it; 0 if another
        worker moved the position meanwhile (that event is not known to be the culprit)."""
        self._faults_in_a_row += 1
        if self._faults_in_a_row > MAX_FAULTS_IN_A_ROW:
            raise TooManyFaults(
                f"projection {self.name} failed on {MAX_FAULTS_IN_A_ROW} events in a row, none"
                f" applied between: the cause is not in the events; stopped ({error!r})"
            ) from error
        with self.db.transaction() as curs:
            self._lock_and_read_position(curs)
            row = curs.fetchone()
            position = int(row["position"]) if row else 0
            if position != failed_at:
                return 0
            following = self._page(curs, position, 1)
            if not following:  # nothing left: the failure was not an event's
                raise error
            [poison] = following
            stored = poison.stored
            faults.record(
                curs,
                self.db,
                self.name,
                str(stored.originator_id),
                stored.originator_version,
                poison.notification_id,
                error,
            )
            curs.execute(self._move_position, (poison.notification_id, self.name))
        self.projection.forget()
        return 1

    def _run_transaction(self, max_events: int, page_size: int) -> int:
        done = 0
        with self.db.transaction() as curs:
            self._lock_and_read_position(curs)
            row = curs.fetchone()
            position = int(row["position"]) if row else 0
            self.projection.begin(position)
            while done < max_events:
                events = self._page(curs, position, min(page_size, max_events - done))
                if not events:
                    break
                self.fault("before-write")
                self.projection.apply(curs, events, position)
                position = events[-1].notification_id
                done += len(events)
                self.fault("after-page")
            if done:
                self.projection.finish(curs, position)
                curs.execute(self._move_position, (position, self.name))
                self.fault("before-commit")
        if done:
            self.fault("after-commit")
        return done

    def _lock_and_read_position(self, curs: Cursor) -> None:
        """This projection's position, locked until the transaction ends (fetch it)."""
        self.db.select_for_update(
            curs, self._positions, "position", "projection = %s", (self.name,)
        )

    def _page(self, curs: Cursor, after: int, limit: int) -> list[LoggedEvent]:
        curs.execute(self._read_log, (after, limit))
        return [
            LoggedEvent(
                int(row["notification_id"]),
                StoredEvent(
                    originator_id=_uuid(row["originator_id"]),
                    originator_version=int(row["originator_version"]),
                    topic=str(row["topic"]),
                    state=bytes(row["state"]),
                ),
                self.mapper,
            )
            for row in curs.fetchall()
        ]


def _uuid(value: Any) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))
