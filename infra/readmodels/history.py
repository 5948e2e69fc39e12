"""The history read model: one row per event, written from the log by ``history_entry``."""

from __future__ import annotations

from typing import Any

from infra.database import Cursor, Database
from infra.readmodels.runner import LoggedEvent
from infra.readmodels.schema import HISTORY
from projections.appended import project_history
from projections.history import HistoryEntry

COLUMNS = (
    "notification_id",
    "aggregate_id",
    "version",
    "event_type",
    "recorded_at",
    "business_time",
    "actor_id",
    "actor_role",
    "channel",
    "reason",
    "correlation_id",
    "source",
    "delivery_id",
    "corrects",
    "payload",
)


class HistoryProjection:
    name = "history"

    def __init__(self, db: Database) -> None:
        self.db = db
        self.table = db.table(HISTORY)

    def row(self, entry: HistoryEntry) -> tuple[Any, ...]:
        """The table row of an entry (raises ValueError for a time the store cannot hold)."""
        ts = self.db.ts
        return (
            entry.notification_id,
            entry.aggregate_id,
            entry.version,
            entry.event_type,
            ts(entry.recorded_at),
            ts(entry.business_time),
            entry.actor_id,
            entry.actor_role,
            entry.channel,
            entry.reason,
            entry.correlation_id,
            entry.source,
            entry.delivery_id,
            entry.corrects,
            entry.payload,
        )

    def apply(self, curs: Cursor, events: list[LoggedEvent], position_before: int) -> None:
        rows = _Rows(self)
        project_history(rows, [e.notification_id for e in events], [e.stored for e in events])
        self.db.insert_many(curs, self.table, COLUMNS, rows)

    def begin(self, position: int) -> None:
        """Nothing is held between transactions."""

    def finish(self, curs: Cursor, position: int) -> None:
        """Every row is written with its page."""

    def forget(self) -> None:
        """Nothing is held in memory."""


class _Rows(list[tuple[Any, ...]]):
    """The history as table rows (a ``HistoryView``), to be written in one go."""

    def __init__(self, projection: HistoryProjection) -> None:
        super().__init__()
        self._row = projection.row

    def append_history(self, entry: HistoryEntry) -> None:
        self.append(self._row(entry))
