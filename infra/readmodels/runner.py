"""Running a projection exactly once per event: its rows and its position in one transaction.

Each transaction locks the projection's position row, reads the log after it in pages,
applies them, and moves the position, so a crash at any point rolls back to a consistent
position and a second worker for the same projection waits instead of applying an event twice.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.persistence import Mapper, StoredEvent

from infra.database import Cursor, Database
from infra.readmodels.schema import POSITIONS

log = logging.getLogger(__name__)

PAGE_SIZE = 1000


@dataclass(frozen=True)
class LoggedEvent:
    notification_id: int
    event: Any
    stored: bytes
    """The event's stored bytes (canonical JSON)."""


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
        self._in_database = bool(getattr(projection, "in_database", False))
        """The projection writes its rows from ranges of the log by SQL (``apply_range``)."""
        self._lock = threading.Lock()  # one transaction at a time per runner in this process
        number = "notification_id" if db.is_postgres else "rowid"
        self._read_log = (
            f"SELECT {number} AS notification_id, originator_id, originator_version, topic, state"
            f" FROM {events_table} WHERE {number} > %s ORDER BY {number} LIMIT %s"
        )
        positions = db.table(POSITIONS)
        self._lock_position = (
            f"SELECT position FROM {positions} WHERE projection = %s FOR UPDATE"
            if db.is_postgres
            # SQLite locks the file on the first write: take it before reading the position.
            else f"UPDATE {positions} SET position = position WHERE projection = %s"
        )
        self._select_position = f"SELECT position FROM {positions} WHERE projection = %s"
        self._count_log = f"SELECT COUNT(*) AS n, MAX(notification_id) AS head FROM {events_table}"
        self._range_end = (
            f"SELECT COUNT(*) AS n, MAX(notification_id) AS upto FROM (SELECT notification_id"
            f" FROM {events_table} WHERE notification_id > %s ORDER BY notification_id LIMIT %s) s"
        )
        self._move_position = f"UPDATE {positions} SET position = %s WHERE projection = %s"

    @property
    def name(self) -> str:
        return self.projection.name

    def position(self) -> int:
        with self.db.transaction() as curs:
            curs.execute(self._select_position, (self.name,))
            row = curs.fetchone()
        return int(row["position"]) if row else 0

    def run_transaction(self, max_events: int = PAGE_SIZE, page_size: int = PAGE_SIZE) -> int:
        """Project up to ``max_events`` new events in one transaction; returns how many."""
        with self._lock:
            try:
                return self._run_transaction(max_events, page_size)
            except BaseException:
                self.projection.forget()
                raise

    def catch_up(self, max_events_per_transaction: int = PAGE_SIZE) -> int:
        """Project every event written so far; returns how many."""
        total = 0
        while True:
            done = self.run_transaction(max_events_per_transaction)
            total += done
            if done == 0:
                return total

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
                    curs.execute(self._lock_position, (self.name,))
                    curs.execute(self._select_position, (self.name,))
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

    def _run_transaction(self, max_events: int, page_size: int) -> int:
        done = 0
        with self.db.transaction() as curs:
            curs.execute(self._lock_position, (self.name,))
            curs.execute(self._select_position, (self.name,))
            row = curs.fetchone()
            position = int(row["position"]) if row else 0
            self.projection.begin(position)
            if self._in_database:
                done, position = self._project_range(curs, position, max_events)
            else:
                done, position = self._project_pages(curs, position, max_events, page_size)
            if done:
                self.projection.finish(curs, position)
                curs.execute(self._move_position, (position, self.name))
                self.fault("before-commit")
        if done:
            self.fault("after-commit")
        return done

    def _project_range(self, curs: Cursor, position: int, max_events: int) -> tuple[int, int]:
        """The database projects the next range of the log itself: nothing is decoded here."""
        curs.execute(self._range_end, (position, max_events))
        row = curs.fetchone()
        done = int(row["n"]) if row else 0
        if not done:
            return 0, position
        assert row is not None
        self.fault("before-write")
        self.projection.apply_range(curs, position, int(row["upto"]))  # type: ignore[attr-defined]
        self.fault("after-page")
        return done, int(row["upto"])

    def _project_pages(
        self, curs: Cursor, position: int, max_events: int, page_size: int
    ) -> tuple[int, int]:
        done = 0
        while done < max_events:
            events = self._page(curs, position, min(page_size, max_events - done))
            if not events:
                break
            self.fault("before-write")
            self.projection.apply(curs, events, position)
            position = events[-1].notification_id
            done += len(events)
            self.fault("after-page")
        return done, position

    def _page(self, curs: Cursor, after: int, limit: int) -> list[LoggedEvent]:
        curs.execute(self._read_log, (after, limit))
        page = []
        for row in curs.fetchall():
            originator_id = row["originator_id"]
            state = bytes(row["state"])
            stored = StoredEvent(
                originator_id=originator_id
                if isinstance(originator_id, UUID)
                else UUID(str(originator_id)),
                originator_version=int(row["originator_version"]),
                topic=str(row["topic"]),
                state=state,
            )
            page.append(
                LoggedEvent(int(row["notification_id"]), self.mapper.to_domain_event(stored), state)
            )
        return page
