"""The application recorders: the library's, plus what must be written with every event.

In the transaction that inserts events, the store also writes each event's audit hash
(``infra.chain``), the record of the delivery that caused it, if any (``infra.deliveries``),
and the notification other systems get of it, if they get one (``infra.outbox``). On
PostgreSQL, row triggers do it, so nothing extra travels through the library's pipelined
insert; on SQLite, the recorder does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor, SQLiteDatastore

from infra import chain, deliveries, outbox


class StagegatePostgresRecorder(PostgresApplicationRecorder):
    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        schema = self.datastore.schema
        for part in (chain, deliveries, outbox):
            self.sql_create_statements += part.postgres_statements(schema, self.events_table_name)


class StagegateSQLiteRecorder(SQLiteApplicationRecorder):
    def __init__(self, datastore: SQLiteDatastore, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name)

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            *chain.SQLITE_STATEMENTS,
            *deliveries.SQLITE_STATEMENTS,
            *outbox.SQLITE_STATEMENTS,
        ]

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        notification_ids = super()._insert_events(c, stored_events, **kwargs)
        chain.sqlite_write(c, stored_events)
        deliveries.sqlite_write(c, stored_events)
        outbox.sqlite_write(c, stored_events)
        return notification_ids
