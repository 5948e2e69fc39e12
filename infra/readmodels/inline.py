"""The read-model rows a reader needs the moment a writer is answered, written with the events.

An append hands the store its domain events and its aggregates as they stand (``Appended``);
from them the rows are built here before the append takes its lock: a summary per use case,
judged by the policy the command was judged by (which the store verifies is still in force),
the history entry of every event, stage periods and costs. Under the lock only the SQL runs,
in a savepoint of the appending transaction, and the projections' positions move past the
new events, so the rows and the events commit together or not at all.

The rows are written only where the read models were current just before the append (their
positions at the log's head): otherwise the runner (``infra.readmodels.runner``) is behind,
say after a rebuild or an event it set aside, and these events are left to it, in order. A
row the database refuses is undone alone (the savepoint); the events still commit and the
runner catches up, setting aside what it must. Either way the append is "left behind" and the
process catches up before answering a reader (``ReadModelService.refresh``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from eventsourcing.persistence import StoredEvent

from domain.application import Appended
from domain.usecase import events as e
from domain.values import InferenceCost
from infra.database import Cursor, Database
from infra.readmodels.history import COLUMNS as HISTORY_COLUMNS
from infra.readmodels.history import HistoryProjection
from infra.readmodels.schema import POSITIONS
from infra.readmodels.summaries import SummaryProjection
from projections.appended import project_append
from projections.history import HistoryEntry
from projections.summaries import UseCaseSummary

log = logging.getLogger(__name__)

Savepoint = Callable[[], AbstractContextManager[Any]]
"""Opens a savepoint in the appending transaction (each store's recorder knows how)."""


@dataclass
class ReadModelRows:
    """The rows of one append, built before its lock; notification ids are filled in under it."""

    history: list[tuple[Any, ...]]
    """History rows without their notification id (added at write)."""
    summaries: list[tuple[Any, ...]]
    unmet: list[tuple[str, str]]
    links: list[tuple[str, str, str]]
    transitions: dict[str, list[tuple[str, Any]]]
    costs: list[tuple[int, tuple[Any, ...]]]
    """(index of the event in the append, its costs row without the notification id)."""
    adoption: list[tuple[int, tuple[Any, ...]]]
    """(index of the event in the append, its adoption row without the notification id)."""
    written: bool = field(default=False)
    """Set in the transaction once the rows are written (reset by a retried attempt)."""


class PendingRows:
    """The read models as the rows an append will write (``projections.appended``'s
    ``ReadModelView`` in SQL rows): events are numbered by their places in the append, and
    ``InlineReadModels.write`` gives them their notification ids."""

    def __init__(self, summaries: SummaryProjection, history: HistoryProjection) -> None:
        self._summaries = summaries
        self._history = history
        self.rows = ReadModelRows([], [], [], [], {}, [], [])

    def write_summary(self, summary: UseCaseSummary) -> None:
        self.rows.summaries.append(self._summaries.row(summary))
        self.rows.unmet.extend((summary.id, code) for code in summary.unmet_codes)
        self.rows.links.extend(
            (summary.id, system, name) for system, name in summary.external_models
        )

    def append_history(self, entry: HistoryEntry) -> None:
        assert entry.notification_id == len(self.rows.history), "history out of order"
        self.rows.history.append(self._history.row(entry)[1:])

    def enter_stage(self, use_case_id: str, stage: str, at: datetime) -> None:
        self.rows.transitions.setdefault(use_case_id, []).append((stage, at))

    def record_cost(self, number: int, use_case_id: str, cost: InferenceCost) -> None:
        self.rows.costs.append((number, self._summaries.cost_values(use_case_id, cost)))

    def record_adoption(self, number: int, event: e.AdoptionRecorded) -> None:
        self.rows.adoption.append((number, self._summaries.adoption_row(number, event)[1:]))


class InlineReadModels:
    """Builds and writes the read-model rows of each append (see the module docstring)."""

    def __init__(
        self,
        db: Database,
        summaries: SummaryProjection,
        history: HistoryProjection,
        behind: Callable[[], None],
    ) -> None:
        self.db = db
        self._summaries = summaries
        self._history = history
        self._behind = behind
        """Called after an append committed without its rows (the process must catch up)."""
        self._names = (summaries.name, history.name)
        self._lock_positions = (
            f"SELECT projection, position FROM {db.table(POSITIONS)}"
            f" WHERE projection IN (%s, %s){db.row_lock}"
        )
        self._move_positions = (
            f"UPDATE {db.table(POSITIONS)} SET position = %s WHERE projection IN (%s, %s)"
        )

    def rows(self, stored_events: Sequence[StoredEvent], appended: Any) -> ReadModelRows | None:
        """The rows of these events, or None where they are the runner's to write: events
        that change the policy (every summary must be judged again), events saved without
        what the rows are built from, or a row that cannot be built."""
        if not isinstance(appended, Appended) or appended.judged_by is None:
            return None
        if len(appended.events) != len(stored_events):
            return None
        try:
            return self._rows(stored_events, appended)
        except Exception as error:  # the runner meets it again, and sets the event aside
            log.warning("read-model rows of an append could not be built: %r", error)
            return None

    def _rows(self, stored_events: Sequence[StoredEvent], appended: Appended) -> ReadModelRows:
        policy = appended.judged_by
        assert policy is not None
        view = PendingRows(self._summaries, self._history)
        places = range(len(stored_events))  # the notification ids are not known yet
        project_append(view, places, stored_events, appended.events, appended.aggregates, policy)
        return view.rows

    def lock_positions(self, curs: Cursor) -> None:
        """In the appending transaction, under its lock: lock the projections' positions
        (their rows come back through ``curs``, for ``write``)."""
        curs.execute(self._lock_positions, self._names)

    def write(
        self,
        curs: Cursor,
        rows: ReadModelRows,
        notification_ids: Sequence[int],
        head_before: int,
        positions: dict[str, int],
        savepoint: Savepoint,
    ) -> None:
        """In the appending transaction, under its lock: the rows, if the read models stood
        at ``head_before`` (the log's last notification before these events), as
        ``positions`` (locked by ``lock_positions``) say."""
        rows.written = False
        if any(positions.get(name) != head_before for name in self._names):
            return
        try:
            with savepoint(), self.db.writes_together(curs) as writes:
                self._write(writes, rows, notification_ids)
        except Exception as error:
            log.warning(
                "read-model rows of notifications %s..%s were not written with them; the"
                " projections will catch up: %r",
                notification_ids[0],
                notification_ids[-1],
                error,
            )
            return
        rows.written = True

    def _write(self, curs: Cursor, rows: ReadModelRows, notification_ids: Sequence[int]) -> None:
        history = [(n, *row) for n, row in zip(notification_ids, rows.history, strict=True)]
        self.db.insert_rows(curs, self._history.table, HISTORY_COLUMNS, history)
        self._summaries.write_summaries(curs, rows.summaries, rows.unmet, rows.links)
        self._summaries.write_transitions(curs, rows.transitions)
        self._summaries.write_costs(
            curs, [(notification_ids[index], *row) for index, row in rows.costs]
        )
        self._summaries.write_adoption(
            curs, [(notification_ids[index], *row) for index, row in rows.adoption]
        )
        curs.execute(self._move_positions, (notification_ids[-1], *self._names))

    def committed(self, rows: ReadModelRows | None) -> None:
        """After the append committed: note it if its rows were left to the runner."""
        if rows is None or not rows.written:
            self._behind()


class CatchUpNeeded:
    """Whether this process's appends left the read models behind (so a reader of its writes
    must catch them up first), counted so that a catch-up clears only what it covered."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._left_behind = 1
        """Appends committed without their rows; 1 at start, when nothing is known."""
        self._covered = 0

    def note(self) -> None:
        with self._lock:
            self._left_behind += 1

    def pending(self) -> int | None:
        """None if every append so far has its rows; else a mark to pass to ``covered``."""
        with self._lock:
            return None if self._left_behind == self._covered else self._left_behind

    def covered(self, mark: int) -> None:
        """A catch-up that started after ``pending`` returned ``mark`` has finished."""
        with self._lock:
            self._covered = max(self._covered, mark)
