"""The history read model: one row per event, written from the log.

On PostgreSQL the rows are computed by the database itself from the stored JSON, a range of
the log at a time (``INSERT ... SELECT``): no event travels to Python and back, which is what
lets a rebuild and a busy ingest keep up. On SQLite, Python writes them from decoded events.
Both read the same fields: the event's ``meta``, its ``timestamp`` and, for use-case events,
the business time at the event class's ``business_time_path``.
"""

from __future__ import annotations

from eventsourcing.utils import get_topic

from domain.usecase import events as e
from infra.database import Cursor, Database
from infra.readmodels.runner import LoggedEvent
from infra.readmodels.schema import HISTORY
from projections.history import history_entry

_COLUMNS = (
    "notification_id, aggregate_id, version, event_type, recorded_at, business_time, actor_id,"
    " actor_role, channel, reason, correlation_id, source, delivery_id, corrects, payload"
)


def _business_time_cases() -> str:
    """A SQL CASE over the topic: the JSON path of each event class's business time."""
    classes = [
        cls
        for cls in vars(e).values()
        if isinstance(cls, type) and issubclass(cls, e.UseCaseEvent) and cls.business_time_path
    ]
    whens = " ".join(
        f"WHEN '{get_topic(cls)}' THEN (j #>> '{{{','.join(cls.business_time_path)}}}')"
        "::timestamptz"
        for cls in sorted(classes, key=lambda cls: cls.__name__)
    )
    return f"CASE topic {whens} END"


class HistoryProjection:
    name = "history"

    def __init__(self, db: Database, events_table: str) -> None:
        self.db = db
        self._insert = (
            f"INSERT INTO {db.table(HISTORY)} ({_COLUMNS}) VALUES ({', '.join(['%s'] * 15)})"
        )
        self.in_database = db.is_postgres
        """True: the runner hands this projection ranges of the log, not decoded events."""
        self._insert_range = (
            f"INSERT INTO {db.table(HISTORY)} ({_COLUMNS})"
            " SELECT notification_id, originator_id::text, originator_version,"
            "  regexp_replace(topic, '^.*[:.]', ''), (j ->> 'timestamp')::timestamptz,"
            f"  {_business_time_cases()},"
            "  j #>> '{meta,actor_id}', j #>> '{meta,actor_role}', j #>> '{meta,channel}',"
            "  j #>> '{meta,reason}', j #>> '{meta,correlation_id}', j #>> '{meta,source}',"
            "  j #>> '{meta,delivery_id}', (j #>> '{meta,corrects}')::bigint, payload"
            " FROM (SELECT notification_id, originator_id, originator_version, topic,"
            "   convert_from(state, 'UTF8') AS payload, "
            # jsonb refuses the escape \u0000, which no column here reads: drop it rather than
            # let one such event stop the projection.
            "   replace(convert_from(state, 'UTF8'), '\\u0000', '')::jsonb AS j"
            f"  FROM {events_table} WHERE notification_id > %s AND notification_id <= %s"
            # OFFSET 0 keeps the subquery whole: inlined, each j below would parse the JSON again.
            "  OFFSET 0) s"
        )

    def apply_range(self, curs: Cursor, after: int, upto: int) -> None:
        """Write the rows of the log's events ``after`` < notification id <= ``upto``."""
        curs.execute(self._insert_range, (after, upto))

    def apply(self, curs: Cursor, events: list[LoggedEvent], position_before: int) -> None:
        ts = self.db.ts
        rows = []
        for logged in events:
            entry = history_entry(logged.notification_id, logged.event, logged.stored)
            rows.append(
                (
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
            )
        curs.executemany(self._insert, rows)

    def begin(self, position: int) -> None:
        """Nothing is held between transactions."""

    def finish(self, curs: Cursor, position: int) -> None:
        """Every row is written with its page."""

    def forget(self) -> None:
        """Nothing is held in memory."""
