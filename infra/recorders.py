"""The application recorders: the library's, plus what must be written with every event.

In the transaction that inserts events, the store also writes each event's audit hash
(``infra.chain``), the record of the delivery that caused it, if any (``infra.deliveries``),
and the notification other systems get of it, if they get one (``infra.outbox``). The
delivery record is written by the recorder on both stores; the hash and the outbox row, on
PostgreSQL, by row triggers, and on SQLite by the recorder.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor, SQLiteDatastore
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL

from infra import chain, deliveries, outbox
from infra.database import SQLiteCursor as SQLiteCursorAdapter


class StagegatePostgresRecorder(PostgresApplicationRecorder):
    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        schema = self.datastore.schema
        for part in (chain, deliveries, outbox):
            self.sql_create_statements += part.postgres_statements(schema, self.events_table_name)
        self._deliveries_table = f'"{schema}"."{deliveries.DELIVERIES_TABLE}"'
        # The library's own LOCK TABLE needs rights on the log that the service's role does
        # not have; the lock function takes the same lock (see infra.chain).
        [set_lock_timeout, _lock_table] = self.lock_table_statements
        self.lock_table_statements = [
            set_lock_timeout,
            SQL("SELECT {}()").format(chain.lock_function(schema)),
        ]

    def _insert_stored_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        super()._insert_stored_events(curs, stored_events, **kwargs)
        # After the events (under their table lock), in the same pipeline, before the library
        # syncs it: a duplicate delivery then fails on the record's key at that sync, as an
        # IntegrityError like any lost race. Another cursor: ``curs`` must keep the events'
        # notification ids for the library to fetch.
        with curs.connection.cursor() as records:
            deliveries.write(records, self._deliveries_table, stored_events)

    def select_latest_of_many(
        self, ids: Sequence[UUID], snapshots_table: str | None, known: dict[UUID, int]
    ) -> tuple[list[StoredEvent], list[StoredEvent]]:
        """For each aggregate: the events after the version the caller ``known``s, or else
        its latest snapshot (if any) and the events after that. Two queries in all, on one
        connection, where loading them one by one costs two each."""
        schema = self.datastore.schema
        events = f'"{schema}"."{self.events_table_name}"' if schema else self.events_table_name
        snapshots = None
        if snapshots_table is not None:
            snapshots = f'"{schema}"."{snapshots_table}"' if schema else snapshots_table
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            return select_latest_of_many(curs, events, snapshots, ids, known)


def select_latest_of_many(
    curs: Any,
    events_table: str,
    snapshots_table: str | None,
    ids: Sequence[UUID],
    known: dict[UUID, int],
) -> tuple[list[StoredEvent], list[StoredEvent]]:
    """``StagegatePostgresRecorder.select_latest_of_many`` on a given cursor (so within its
    transaction); the table names come qualified."""
    after: dict[Any, int] = dict(known)
    snapshots: list[StoredEvent] = []
    unknown = [i for i in ids if i not in known]
    if snapshots_table is not None and unknown:
        curs.execute(
            "SELECT s.originator_id, s.originator_version, s.topic, s.state"
            " FROM unnest(%s::uuid[]) AS wanted(id) CROSS JOIN LATERAL ("
            f"  SELECT * FROM {snapshots_table} WHERE originator_id = wanted.id"
            "   ORDER BY originator_version DESC LIMIT 1) s",
            (unknown,),
        )
        snapshots = [_stored(row) for row in curs.fetchall()]
        after.update((s.originator_id, s.originator_version) for s in snapshots)
    curs.execute(
        # LATERAL: an index scan per aggregate whatever the planner's statistics say
        # (a plain join chose to scan the whole table while they were missing).
        "SELECT e.originator_id, e.originator_version, e.topic, e.state"
        " FROM unnest(%s::uuid[], %s::bigint[]) WITH ORDINALITY AS wanted(id, after, n)"
        " CROSS JOIN LATERAL ("
        f"  SELECT * FROM {events_table} WHERE originator_id = wanted.id"
        "   AND originator_version > wanted.after ORDER BY originator_version) e"
        " ORDER BY wanted.n, e.originator_version",
        (list(ids), [after.get(i, 0) for i in ids]),
    )
    return snapshots, [_stored(row) for row in curs.fetchall()]


def _stored(row: Any) -> StoredEvent:
    return StoredEvent(
        originator_id=row["originator_id"],
        originator_version=row["originator_version"],
        topic=row["topic"],
        state=bytes(row["state"]),
    )


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
        deliveries.write(SQLiteCursorAdapter(c), deliveries.DELIVERIES_TABLE, stored_events)
        outbox.sqlite_write(c, stored_events)
        return notification_ids
