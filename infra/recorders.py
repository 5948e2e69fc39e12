"""The application recorders: the library's, plus what must be written with every event.

In the transaction that inserts events, each store also writes what ``infra.appends`` plans
for them (audit hashes, delivery records, outbox rows, read-model rows) and checks the policy
their commands were judged by. The plan is the same on both stores; what differs, and lives
here, is how each runs it: PostgreSQL inside the library's pipeline, under its table lock,
SQLite under its database lock.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import DataError, IntegrityError, StoredEvent
from eventsourcing.postgres import (
    PostgresAggregateRecorder,
    PostgresApplicationRecorder,
    PostgresDatastore,
)
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor, SQLiteDatastore
from psycopg import Cursor, Transaction
from psycopg.rows import DictRow
from psycopg.sql import SQL

from infra import chain, deliveries, outbox
from infra.appends import AppendPlan, Appends
from infra.database import Database
from infra.database import SQLiteCursor as SQLiteCursorAdapter


class StagegatePostgresRecorder(PostgresApplicationRecorder):
    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        schema = self.datastore.schema
        for part in (chain, deliveries, outbox):
            self.sql_create_statements += part.postgres_statements(schema, self.events_table_name)
        db = Database(datastore)
        self.appends = Appends(db, db.table(self.events_table_name))
        # One lookup by primary key per aggregate, whatever the statistics say. A join (even a
        # LATERAL one) the planner may turn into a hash join over the whole table: psycopg
        # prepares the statement after five runs, and PostgreSQL's generic plan for a table
        # never analysed (autovacuum off) was a sequential scan, 44 pages read per append and
        # a fifth of the database's time per command. A scalar subquery per key is never
        # turned into a join; OFFSET 0 keeps it from being evaluated twice for the filter.
        self.hash_question = (
            "SELECT originator_id, originator_version, hash FROM (SELECT"
            " k.id AS originator_id, k.version AS originator_version,"
            f" (SELECT h.hash FROM {self.appends.hashes_table} h"
            "  WHERE h.originator_id = k.id AND h.originator_version = k.version) AS hash"
            " FROM unnest(%s::uuid[], %s::bigint[]) AS k(id, version) OFFSET 0) found"
            " WHERE hash IS NOT NULL"
        )
        # The library's own LOCK TABLE needs rights on the log that the service's role does
        # not have; the lock function takes the same lock (see infra.chain).
        [set_lock_timeout, _lock_table] = self.lock_table_statements
        self.lock_table_statements = [
            set_lock_timeout,
            SQL("SELECT {}()").format(chain.lock_function(schema)),
        ]

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if not stored_events:
            return None
        # Before the transaction and its lock: what needs no notification id.
        plan = self.appends.plan(stored_events, kwargs.get("appended"))
        try:
            notification_ids = self._insert_planned(stored_events, plan, **kwargs)
        except (DataError, IntegrityError) as error:
            # No savepoint guards the read-model rows here (it would cost a round trip per
            # append): where the commit refused them, the append is made again without them.
            if not self.appends.without_read_models(plan, error):
                raise
            notification_ids = self._insert_planned(stored_events, plan, **kwargs)
        self.appends.committed(plan)
        return notification_ids

    def _insert_planned(
        self, stored_events: Sequence[StoredEvent], plan: AppendPlan, **kwargs: Any
    ) -> Sequence[int] | None:
        try:
            return self._append(stored_events, append_plan=plan, **kwargs)
        except _Undone as undone:
            raise undone.error from None

    def _append(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        """The library's ``insert_events`` (without database functions, which stagegate does
        not use), but a failure rolls the transaction back. The library catches it inside the
        transaction and raises it after, so the transaction ends in a COMMIT the server turns
        into a rollback: psycopg then keeps the statements it meant to prepare in the failed
        pipeline as prepared, and that connection's next append failed with 'prepared
        statement "_pg3_N" does not exist' (CloudEvents racing for one use case, under load).
        A rollback clears psycopg's record of them."""
        with (
            self.datastore.get_connection() as conn,
            conn.pipeline() as pipeline,
            # Not ``conn.transaction()``: in a pipeline, that one syncs after its BEGIN, a
            # round trip of its own (three per append instead of two). The BEGIN is sent
            # with the statements instead; should it fail, they fail with it.
            Transaction(conn),
        ):
            with conn.cursor() as curs:
                self._insert_events(curs, stored_events, **kwargs)
            with conn.cursor() as curs:
                self._insert_stored_events(curs, stored_events, **kwargs)
                # A uniqueness violation is raised here, as an IntegrityError.
                pipeline.sync()
                return self._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
        raise AssertionError("unreachable: the transaction lets every exception through")

    def _ask_hashes(self, curs: Any, wanted: list[tuple[str, int]]) -> None:
        curs.execute(
            self.hash_question, ([key for key, _ in wanted], [version for _, version in wanted])
        )

    def _insert_stored_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        # The library's application recorder here takes the lock, sends a NOTIFY and inserts.
        # The NOTIFY is left out: nothing listens (its subscriptions are not used), and each
        # one serialises commits on a cluster-wide lock. Between the lock and the insert go
        # the append's own questions, answered with the insert (``Appends.check``).
        self._lock_table(curs)
        plan: AppendPlan | None = kwargs.get("append_plan")
        if plan is not None:
            self.appends.check(curs.connection.cursor, plan, self._ask_hashes)
        PostgresAggregateRecorder._insert_stored_events(self, curs, stored_events, **kwargs)
        # After the events (under their table lock), in the same pipeline, before the library
        # syncs it: a duplicate delivery then fails on the record's key at that sync, as an
        # IntegrityError like any lost race. Another cursor: ``curs`` must keep the events'
        # notification ids for the library to fetch.
        with curs.connection.cursor() as records:
            self.appends.write_deliveries(records, stored_events)

    def _fetch_ids_after_insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        notification_ids = super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
        plan: AppendPlan | None = kwargs.get("append_plan")
        if plan is not None and notification_ids:
            # Still in the appending transaction, in the library's pipeline: what is written
            # here commits with the events, and an error here undoes them.
            connection = curs.connection
            try:
                with connection.cursor() as cursor:
                    self.appends.write(cursor, plan, notification_ids, contextlib.nullcontext)
                for lookup in plan.lookups():
                    lookup.close()  # type: ignore[attr-defined]
            except Exception as error:
                # The library catches an Exception here and commits before raising it (it
                # expects only errors that already doomed the transaction); this must not
                # commit (``PolicyChanged``, or anything unforeseen), so it leaves as
                # something the library lets pass, which rolls the transaction back.
                raise _Undone(error) from error
        return notification_ids

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

    def latest_versions(self, ids: Sequence[UUID]) -> dict[UUID, int]:
        """The version each of these aggregates has in the store (none for one it lacks)."""
        schema = self.datastore.schema
        events = f'"{schema}"."{self.events_table_name}"' if schema else self.events_table_name
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                # LATERAL: one index lookup per aggregate whatever the statistics say.
                "SELECT wanted.id, e.version FROM unnest(%s::uuid[]) AS wanted(id)"
                " CROSS JOIN LATERAL ("
                f"  SELECT MAX(originator_version) AS version FROM {events}"
                "   WHERE originator_id = wanted.id) e WHERE e.version IS NOT NULL",
                (list(ids),),
            )
            return {row["id"]: int(row["version"]) for row in curs.fetchall()}


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
        self.appends = Appends(Database(datastore), events_table_name)

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            *chain.SQLITE_STATEMENTS,
            *deliveries.SQLITE_STATEMENTS,
            *outbox.SQLITE_STATEMENTS,
        ]

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        plans: list[AppendPlan] = []
        notification_ids = super().insert_events(stored_events, append_plans=plans, **kwargs)
        for plan in plans:
            self.appends.committed(plan)
        return notification_ids

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if not stored_events:
            return super()._insert_events(c, stored_events, **kwargs)
        cursor = SQLiteCursorAdapter(c)
        # SQLite's one writer holds the database already: nothing is gained by planning
        # before the transaction, as PostgreSQL does.
        plan = self.appends.plan(stored_events, kwargs.get("appended"))
        connection = c.sqlite_cursor.connection
        self.appends.check(
            lambda: _ReadAtOnce(SQLiteCursorAdapter(connection.cursor())), plan, self._ask_hashes
        )
        notification_ids = super()._insert_events(c, stored_events, **kwargs)
        assert notification_ids
        self.appends.write_deliveries(cursor, stored_events)
        self.appends.write(cursor, plan, notification_ids, lambda: _savepoint(c))
        kwargs.get("append_plans", []).append(plan)
        return notification_ids

    def _ask_hashes(self, curs: Any, wanted: list[tuple[str, int]]) -> None:
        # No arrays to pass the keys in: an OR of them (an append holds at most a few hundred
        # aggregates, well below SQLite's limit on parameters).
        where = " OR ".join(["(originator_id = %s AND originator_version = %s)"] * len(wanted))
        curs.execute(
            "SELECT originator_id, originator_version, hash"
            f" FROM {self.appends.hashes_table} WHERE {where}",
            [part for pair in wanted for part in pair],
        )


class _ReadAtOnce:
    """A cursor whose rows are read the moment it executes: sqlite3 steps through a
    result lazily, and the statements that follow in the transaction change the tables."""

    def __init__(self, cursor: SQLiteCursorAdapter) -> None:
        self._cursor = cursor
        self._rows: list[dict[str, Any]] = []

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._cursor.execute(sql, params)
        self._rows = self._cursor.fetchall()

    def executemany(self, sql: str, params_seq: Iterable[Sequence[Any]]) -> None:
        self._cursor.executemany(sql, params_seq)

    def fetchall(self) -> list[dict[str, Any]]:
        return self._rows

    def fetchone(self) -> dict[str, Any] | None:
        return self._rows[0] if self._rows else None


@contextlib.contextmanager
def _savepoint(c: SQLiteCursor) -> Iterator[None]:
    """A savepoint in SQLite's open transaction: what fails in it is undone alone."""
    c.execute("SAVEPOINT stagegate_appended")
    try:
        yield
    except BaseException:
        c.execute("ROLLBACK TO SAVEPOINT stagegate_appended")
        c.execute("RELEASE SAVEPOINT stagegate_appended")
        raise
    c.execute("RELEASE SAVEPOINT stagegate_appended")


class _Undone(BaseException):
    """Carries an error out of the library's appending transaction, undoing it."""

    def __init__(self, error: Exception) -> None:
        super().__init__(error)
        self.error = error
