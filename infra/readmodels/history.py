"""The history read model: one row per event, written from the log."""

from __future__ import annotations

from infra.database import Cursor, Database
from infra.readmodels.runner import LoggedEvent
from infra.readmodels.schema import HISTORY
from projections.history import history_entry

_COLUMNS = (
    "notification_id, aggregate_id, version, event_type, recorded_at, business_time, actor_id,"
    " actor_role, channel, reason, correlation_id, source, delivery_id, corrects, payload"
)


class HistoryProjection:
    name = "history"

    def __init__(self, db: Database) -> None:
        self.db = db
        self._insert = (
            f"INSERT INTO {db.table(HISTORY)} ({_COLUMNS}) VALUES ({', '.join(['%s'] * 15)})"
        )

    def apply(self, curs: Cursor, events: list[LoggedEvent], position_before: int) -> None:
        ts = self.db.ts
        rows = []
        for logged in events:
            e = history_entry(logged.notification_id, logged.event, logged.stored)
            rows.append(
                (
                    e.notification_id,
                    e.aggregate_id,
                    e.version,
                    e.event_type,
                    ts(e.recorded_at),
                    ts(e.business_time),
                    e.actor_id,
                    e.actor_role,
                    e.channel,
                    e.reason,
                    e.correlation_id,
                    e.source,
                    e.delivery_id,
                    e.corrects,
                    e.payload,
                )
            )
        curs.executemany(self._insert, rows)

    def begin(self, position: int) -> None:
        """Nothing is held between transactions."""

    def finish(self, curs: Cursor, position: int) -> None:
        """Every row is written with its page."""

    def forget(self) -> None:
        """Nothing is held in memory."""
