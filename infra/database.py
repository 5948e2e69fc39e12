"""Plain SQL on the event store's own connection pool, for stagegate's non-event tables.

One small seam over the two datastores eventsourcing gives us, so the token table (and later
read models) are written with the same SQL on SQLite and PostgreSQL: ``%s`` placeholders,
table names through ``table()``.

This is the one module that branches on the kind of database: where the two stores differ
(a type, a value's stored form, a lock, an SQL function), ``Database`` has a member named by
what it means, and the code calling it reads the same for both stores.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore
from psycopg import Connection, sql

from infra.chain import LOCK_FUNCTION, append_only, refuse_function


class Cursor(Protocol):
    """What stagegate's SQL needs of a cursor: psycopg's, or sqlite3's through ``SQLiteCursor``."""

    def execute(self, sql: str, params: Sequence[Any] = (), /) -> Any: ...
    def executemany(self, sql: str, params_seq: Iterable[Sequence[Any]], /) -> Any: ...
    def fetchall(self) -> list[dict[str, Any]]: ...
    def fetchone(self) -> dict[str, Any] | None: ...


class SQLiteCursor:
    """Adapts sqlite3 to the psycopg conventions used in our SQL."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._cursor.execute(sql.replace("%s", "?"), tuple(params))

    def executemany(self, sql: str, params_seq: Iterable[Sequence[Any]]) -> None:
        self._cursor.executemany(sql.replace("%s", "?"), [tuple(p) for p in params_seq])

    def fetchall(self) -> list[dict[str, Any]]:
        return [dict(row) for row in self._cursor.fetchall()]

    def fetchone(self) -> dict[str, Any] | None:
        row = self._cursor.fetchone()
        return dict(row) if row is not None else None


APPENDS_CHANNEL = "stagegate_appends"
"""The PostgreSQL channel an append notifies, with its schema's name as the payload."""


class AppendSignal(Protocol):
    """What a follower of the log (``infra.live``) waits on: a wake-up each time an append
    has committed. It carries nothing; the follower reads the log itself."""

    def wait(self, timeout: float) -> bool:
        """Whether an append committed since the last wake-up (waiting up to ``timeout``
        seconds for one). Raises where the store cannot be heard (a dropped connection)."""

    def appended(self) -> None:
        """This process's append has just committed (``infra.appends``)."""

    def close(self) -> None: ...


class Database:
    """A transaction on whichever store the application was built on."""

    def __init__(self, datastore: SQLiteDatastore | PostgresDatastore) -> None:
        self.datastore = datastore
        self._postgres = isinstance(datastore, PostgresDatastore)

    @property
    def is_postgres(self) -> bool:
        """Whether this is PostgreSQL. Outside this module, prefer the named member that says
        what differs; this stays only until the remaining callers have moved to them."""
        return self._postgres

    def table(self, name: str) -> str:
        """A table name, qualified by the PostgreSQL schema (validated at settings time)."""
        if isinstance(self.datastore, PostgresDatastore):
            return f'"{self.datastore.schema}"."{name}"'
        return name

    @property
    def namespace(self) -> str | None:
        """The PostgreSQL schema stagegate's tables are in; None on SQLite (no namespaces)."""
        if isinstance(self.datastore, PostgresDatastore):
            return str(self.datastore.schema)
        return None

    def drop_row_trigger(self, table: str, trigger: str, function: str) -> list[str]:
        """Statements that drop a row trigger on ``table`` and its function, if they exist:
        PL/pgSQL that releases before schema version 2 used on PostgreSQL. SQLite never had
        them: nothing to run."""
        if not isinstance(self.datastore, PostgresDatastore):
            return []
        schema = sql.Identifier(self.datastore.schema)
        return [
            sql.SQL("DROP TRIGGER IF EXISTS {} ON {}.{}")
            .format(sql.Identifier(trigger), schema, sql.Identifier(table))
            .as_string(None),
            sql.SQL("DROP FUNCTION IF EXISTS {}.{}()")
            .format(schema, sql.Identifier(function))
            .as_string(None),
        ]

    def transaction(self) -> contextlib.AbstractContextManager[Cursor]:
        """A transaction that commits when the block ends without an exception."""
        return self._transaction(writes=True)

    def _reading(self) -> contextlib.AbstractContextManager[Cursor]:
        """A transaction that only reads. On SQLite it is on one of the pool's readers'
        connections, ended by a rollback: the pool hands its one writer's connection to one
        caller at a time, so a read that took it waited for every append in flight (and its
        file sync) and for every other read. In write-ahead-log mode a reader sees what was
        committed when it first reads, whatever commits meanwhile."""
        return self._transaction(writes=False)

    @contextlib.contextmanager
    def _transaction(self, *, writes: bool) -> Iterator[Cursor]:
        if isinstance(self.datastore, PostgresDatastore):
            with self.datastore.transaction(commit=True) as curs:
                yield curs
        else:
            with self.datastore.transaction(commit=writes) as curs:
                yield SQLiteCursor(curs)

    def select(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """The rows of one read-only statement.

        On PostgreSQL it runs on its own, outside any transaction block (the pool's connections
        are in autocommit mode): a statement sees one snapshot anyway, and BEGIN and COMMIT
        would be two more round trips, as many as the query itself costs.
        """
        if isinstance(self.datastore, PostgresDatastore):
            with self.datastore.get_connection() as conn, conn.cursor() as curs:
                curs.execute(sql, params)
                return curs.fetchall()
        with self._reading() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    # --- values that the two drivers store differently ---------------------------------------

    def ts(self, value: datetime | None) -> Any:
        """A timestamp parameter, in UTC: timestamptz on PostgreSQL, ISO text on SQLite.

        ValueError for a time that has no UTC form (a year-1 time east of Greenwich): the
        edge refuses such business times, but an event stored before it did must not pass
        into a read model that could never read it back.
        """
        if value is None:
            return None
        try:
            utc = value.astimezone(UTC)
        except OverflowError:
            raise ValueError(
                f"{value.isoformat()} cannot be stored: it has no UTC form in years 1 to 9999"
            ) from None
        return utc if self._postgres else utc.isoformat(timespec="microseconds")

    def read_ts(self, value: Any) -> datetime | None:
        if value is None or isinstance(value, datetime):
            return value
        return datetime.fromisoformat(str(value))

    def read_required_ts(self, value: Any) -> datetime:
        read = self.read_ts(value)
        if read is None:
            raise ValueError("a required timestamp is NULL")
        return read

    def money(self, value: Decimal | None) -> Any:
        """A decimal parameter: numeric on PostgreSQL, exact text on SQLite."""
        return value if value is None or self._postgres else str(value)

    def uuid(self, value: UUID) -> Any:
        """A UUID parameter for a uuid column of stagegate's own tables (the audit chain's
        hashes): uuid on PostgreSQL; SQLite has no uuid type, and the rows keep the canonical
        text form (with hyphens)."""
        return value if self._postgres else str(value)

    def stored_uuid(self, value: UUID) -> Any:
        """An originator id as the library stores it in the events and snapshots tables, to
        compare with those tables' ``originator_id`` (as a parameter, or formatted into a
        literal): uuid on PostgreSQL (its text form as a literal); on SQLite the library keeps
        it as bare hex (no hyphens), which the canonical form would not equal."""
        return value if self._postgres else value.hex

    def type_of(self, kind: str) -> str:
        """A column type by what it holds: timestamp, money, float, bool, bigint."""
        types = _POSTGRES_TYPES if self._postgres else _SQLITE_TYPES
        return types[kind]

    # --- SQL that the two dialects spell differently -----------------------------------------

    @property
    def log_position_column(self) -> str:
        """The events table's column that numbers the log (a notification's id).

        The library gives PostgreSQL's events table a ``notification_id`` column; on SQLite
        the table's ``rowid`` is that number (no column is named for it)."""
        return "notification_id" if self._postgres else "rowid"

    def days_between(self, start: str, end: str) -> str:
        """An SQL expression: the days (fractional) from timestamp expression ``start`` to
        ``end``. PostgreSQL subtracts timestamptz values to an interval, counted in seconds;
        SQLite keeps timestamps as ISO text, which ``julianday`` turns into day numbers."""
        if self._postgres:
            return f"EXTRACT(EPOCH FROM ({end} - {start})) / 86400.0"
        return f"julianday({end}) - julianday({start})"

    def median_by_group(self, rows: str, group: str, value: str) -> str:
        """A query: per ``group`` of ``rows`` (a table and its WHERE), the median of the SQL
        expression ``value``, as columns ``group`` and ``median``. PostgreSQL has
        ``percentile_cont``; SQLite has none, so there the middle row (or the mean of the two
        middle rows) is found by window functions: about five times slower on PostgreSQL,
        which is why it has its own."""
        if self._postgres:
            return (
                f"SELECT {group}, percentile_cont(0.5) WITHIN GROUP (ORDER BY {value})"
                f" AS median FROM {rows} GROUP BY {group}"
            )
        return (
            f"WITH ranked AS (SELECT {group}, {value} AS v,"
            f" ROW_NUMBER() OVER (PARTITION BY {group} ORDER BY {value}) AS n,"
            f" COUNT(*) OVER (PARTITION BY {group}) AS c FROM {rows})"
            f" SELECT {group}, AVG(v) AS median FROM ranked"
            f" WHERE n IN ((c + 1) / 2, (c + 2) / 2) GROUP BY {group}"
        )

    def summable_money(self, column: str) -> str:
        """An SQL expression: a money column as a number to SUM. PostgreSQL's numeric sums
        exactly as it is; SQLite keeps money as exact text (see ``money``), cast to REAL to
        add it up."""
        return column if self._postgres else f"CAST({column} AS REAL)"

    # --- telling followers of the log --------------------------------------------------------

    def append_signal(self) -> AppendSignal:
        """A new wake-up for one follower of the log: on PostgreSQL a connection of its own
        listening for the appends' notifications (``writes_together``'s
        ``announcing_append``; the caller closes it); on SQLite an event this process's
        appends set."""
        if isinstance(self.datastore, PostgresDatastore):
            pool = self.datastore.pool
            params = dict(pool.kwargs) if isinstance(pool.kwargs, dict) else {}
            if pool.get_password_func is not None:
                params["password"] = pool.get_password_func()
            return _AppendNotifications(params, self.datastore.schema)
        return _AppendsInProcess()

    # --- transactions and locks --------------------------------------------------------------

    @contextlib.contextmanager
    def consistent_read(self) -> Iterator[Cursor]:
        """A read-only transaction whose statements all see one snapshot of the database.

        PostgreSQL's default (READ COMMITTED) gives each statement its own snapshot, so the
        transaction asks for REPEATABLE READ. An SQLite transaction reads one snapshot from
        its first read on (write-ahead logging keeps it while writers commit), so it needs
        nothing more.
        """
        with self._reading() as curs:
            if self._postgres:
                curs.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            yield curs

    def lock_log(self, curs: Cursor) -> None:
        """Take the lock every append takes on the events table, until the transaction ends.

        A row written under it (an outbox entry with no event) gets its sequence number and
        commits in the same order as the appends, which a reader moving past a position relies
        on. PostgreSQL hands out sequence numbers to concurrent transactions, which may commit
        in another order: the lock (a function stagegate's schema defines, see
        ``infra.chain.lock_statements``) serializes them. SQLite has one writer at a time
        already: nothing to take.
        """
        if self._postgres:
            curs.execute(f"SELECT {self.table(LOCK_FUNCTION)}()")

    @property
    def row_lock(self) -> str:
        """The clause ending a SELECT whose rows this transaction will update: " FOR UPDATE"
        on PostgreSQL, which locks them until the transaction ends. Nothing on SQLite, which
        has no row locks: a transaction there holds the whole database's write lock from its
        first write, so this serves a transaction that has written already (before a first
        write, ``select_for_update`` takes the lock)."""
        return " FOR UPDATE" if self._postgres else ""

    def select_for_update(
        self, curs: Cursor, table: str, column: str, where: str, params: Sequence[Any]
    ) -> None:
        """Select ``column`` of the rows of a qualified ``table`` matching ``where``, locked
        against other writers until the transaction ends; the caller fetches them.

        PostgreSQL locks the rows (FOR UPDATE). SQLite has no row locks, and a transaction
        takes the database's write lock only at its first write, after this read: a write
        that changes nothing takes the lock first, so no other writer can change the rows
        between the read and this transaction's own write.
        """
        if not self._postgres:
            curs.execute(f"UPDATE {table} SET {column} = {column} WHERE {where}", params)
        curs.execute(f"SELECT {column} FROM {table} WHERE {where}{self.row_lock}", params)

    def for_update_skip_locked(self, of: str) -> str:
        """The clause ending a SELECT that claims rows (of the table aliased ``of``) for this
        transaction, passing over rows another transaction has claimed: several workers then
        claim different rows side by side. Nothing on SQLite, which has no row locks: there a
        claimer takes the write lock first (``take_write_lock``), so claimers take turns."""
        return f" FOR UPDATE OF {of} SKIP LOCKED" if self._postgres else ""

    def take_write_lock(self, curs: Cursor, table: str, column: str) -> None:
        """On SQLite, take the database's write lock now, not at the transaction's first real
        write: by a write that changes nothing (on ``column`` of a qualified ``table``, any
        will do). Rows chosen after it cannot be chosen by another writer meanwhile. Nothing
        on PostgreSQL, which locks rows as each statement asks (``for_update_skip_locked``)."""
        if not self._postgres:
            curs.execute(f"UPDATE {table} SET {column} = {column} WHERE 0 = 1")

    def rows_by_keys(
        self,
        curs: Cursor,
        table: str,
        key_columns: Sequence[str],
        keys: Sequence[Sequence[str]],
    ) -> list[dict[str, Any]]:
        """The rows of a qualified ``table`` whose text ``key_columns`` equal one of ``keys``.

        PostgreSQL: one statement, looking each key up by the table's primary key whatever the
        count (a long OR is slow to plan) and whatever the statistics say (a join may scan the
        whole table). SQLite has no arrays to pass the keys in: an OR of up to 200 keys a
        statement (well below its limit on parameters).
        """
        if not keys:
            return []
        if self._postgres:
            arrays = ", ".join(["%s::text[]"] * len(key_columns))
            match = " AND ".join(f"{c} = k.{c}" for c in key_columns)
            curs.execute(
                f"SELECT d.* FROM unnest({arrays}) AS k({', '.join(key_columns)})"
                f" CROSS JOIN LATERAL (SELECT * FROM {table} WHERE {match}) d",
                [[key[i] for key in keys] for i in range(len(key_columns))],
            )
            return curs.fetchall()
        rows: list[dict[str, Any]] = []
        match = " AND ".join(f"{c} = %s" for c in key_columns)
        per_statement = max(1, 400 // len(key_columns))
        for start in range(0, len(keys), per_statement):
            chunk = keys[start : start + per_statement]
            where = " OR ".join([f"({match})"] * len(chunk))
            curs.execute(
                f"SELECT * FROM {table} WHERE {where}", [part for key in chunk for part in key]
            )
            rows.extend(curs.fetchall())
        return rows

    def create_schema(self) -> None:
        """Create stagegate's PostgreSQL schema (its namespace) if it is missing. SQLite has
        no namespaces: a database file holds its tables directly."""
        datastore = self.datastore
        if isinstance(datastore, PostgresDatastore) and not self.schema_exists():
            with datastore.transaction(commit=True) as curs:
                curs.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(datastore.schema)))

    def make_append_only(self, table_name: str) -> None:
        """Refuse UPDATE, DELETE and TRUNCATE on a table of the schema from now on, as the
        log's own tables are (``infra.chain.append_only``). On PostgreSQL, triggers do; an
        SQLite file can be rewritten by whoever can write it, so there the hash chain and its
        exported head are the protection, and nothing is done."""
        datastore = self.datastore
        if not isinstance(datastore, PostgresDatastore):
            return
        table = sql.SQL("{}.{}").format(
            sql.Identifier(datastore.schema), sql.Identifier(table_name)
        )
        with datastore.transaction(commit=True) as curs:
            for statement in append_only(table, refuse_function(datastore.schema)):
                curs.execute(statement)

    @property
    def has_roles(self) -> bool:
        """Whether the store has roles to grant rights to (PostgreSQL; SQLite has none)."""
        return self._postgres

    @property
    def rebuilds_beside(self) -> bool:
        """Whether a rebuild of the read models can write them side by side, in bulk: on
        PostgreSQL, summaries loaded from many use cases at once (arrays) and written by COPY
        in one REPEATABLE READ transaction, while another connection writes the history. On
        SQLite there are neither arrays nor COPY, and one writer at a time: a rebuild is the
        projection runners catching up."""
        return self._postgres

    def analyze(self, tables: Sequence[str]) -> None:
        """Fresh planner statistics for these qualified tables, as after any bulk load: on
        PostgreSQL, where autovacuum is off or has not run yet, a rebuilt table without them
        is planned as if empty or huge. SQLite's planner is left as it is: every query
        stagegate makes there is by key or index, and ANALYZE would change its plans."""
        if not self._postgres:
            return
        with self.transaction() as curs:
            curs.execute(f"ANALYZE {', '.join(tables)}")

    def insert_rows(
        self,
        curs: Cursor,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        on_conflict: str = "",
    ) -> None:
        """Insert rows into a qualified ``table``, ``on_conflict`` appended to the INSERT.

        It runs in a pipeline, where COPY (``insert_many``) cannot. PostgreSQL: one statement
        whatever the count, the rows passed as one JSON array that the table's own row type
        reads (each value by its column's type): under the append lock, a hundred single-row
        statements cost several times more, and a hundred-row VALUES list is parsed afresh by
        psycopg each time. SQLite, in process: one short statement executed per row.
        """
        if not rows:
            return
        names = ", ".join(columns)
        suffix = f" {on_conflict}" if on_conflict else ""
        if self._postgres:
            records = json.dumps(
                [dict(zip(columns, row, strict=True)) for row in rows], default=_json_value
            )
            curs.execute(
                f"INSERT INTO {table} ({names}) SELECT {names}"
                f" FROM json_populate_recordset(NULL::{table}, %s::json){suffix}",
                (records,),
            )
            return
        curs.executemany(
            f"INSERT INTO {table} ({names}) VALUES ({', '.join(['%s'] * len(columns))}){suffix}",
            rows,
        )

    @contextlib.contextmanager
    def writes_together(self, curs: Cursor, *, announcing_append: bool = False) -> Iterator[Cursor]:
        """A cursor for writes whose results nobody reads (INSERT, UPDATE, DELETE without
        RETURNING), in the order given. On PostgreSQL they are sent as few statements as
        their tables allow: consecutive writes become one statement, each a data-modifying
        ``WITH`` part, until a write meets a table an earlier part of that statement writes
        (the parts of one statement all see the database as it stood before it, so the
        second write to a table starts the next statement). What an append writes after
        its events was eight statements, and is three; psycopg spends about 23 µs of the
        server's CPU on each statement in a pipeline, and PostgreSQL its own. SQLite, in
        process, runs each write as it comes; on PostgreSQL nothing held is sent if the
        block raises. Anything but such a write is refused (ValueError), on both stores.

        ``announcing_append``, in an appending transaction: have every process that follows
        the log woken once it commits (``append_signal``). PostgreSQL delivers a NOTIFY sent
        in a transaction at its commit, to every listening connection (other processes'
        too), and never for one undone; it is sent by the last statement. A SQLite file is
        served by one process: nothing to send, its appends wake its follower themselves,
        after their commit (``AppendSignal.appended``)."""
        group = _WritesTogether(curs, hold=self._postgres)
        yield group
        datastore = self.datastore
        if announcing_append and isinstance(datastore, PostgresDatastore):
            group.send((APPENDS_CHANNEL, datastore.schema))
        else:
            group.send()

    def insert_many(
        self, curs: Cursor, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        """Insert rows into a qualified ``table``: COPY on PostgreSQL (several times faster
        than a batch of INSERTs, which a rebuild feels), a batch of INSERTs on SQLite."""
        if not rows:
            return
        names = ", ".join(columns)
        if isinstance(self.datastore, PostgresDatastore):
            with curs.copy(f"COPY {table} ({names}) FROM STDIN") as copy:  # type: ignore[attr-defined]
                for row in rows:
                    copy.write_row(row)
            return
        placeholders = ", ".join(["%s"] * len(columns))
        curs.executemany(f"INSERT INTO {table} ({names}) VALUES ({placeholders})", rows)

    def table_exists(self, name: str) -> bool:
        """Whether the table exists (in the schema, on PostgreSQL); needs no rights on it."""
        if isinstance(self.datastore, PostgresDatastore):
            rows = self.select("SELECT to_regclass(%s) AS found", (self.table(name),))
        else:
            rows = self.select(
                "SELECT name AS found FROM sqlite_master WHERE type = 'table' AND name = %s",
                (name,),
            )
        return bool(rows) and rows[0]["found"] is not None

    def tables_exist(self, names: Sequence[str]) -> bool:
        """Whether every one of these tables exists (in the schema, on PostgreSQL), asked in
        one query: of PostgreSQL's information_schema, which lists only the tables the role
        has some right on; of SQLite's catalogue, sqlite_master."""
        if isinstance(self.datastore, PostgresDatastore):
            rows = self.select(
                "SELECT COUNT(*) AS n FROM information_schema.tables"
                " WHERE table_schema = %s AND table_name = ANY(%s)",
                (self.datastore.schema, list(names)),
            )
        else:
            rows = self.select(
                "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table'"
                f" AND name IN ({', '.join(['%s'] * len(names))})",
                names,
            )
        return bool(rows) and int(rows[0]["n"]) == len(set(names))

    def schema_exists(self) -> bool:
        """Whether stagegate's PostgreSQL schema exists (SQLite has none: always True)."""
        if not isinstance(self.datastore, PostgresDatastore):
            return True
        rows = self.select(
            "SELECT 1 AS found FROM pg_namespace WHERE nspname = %s", (self.datastore.schema,)
        )
        return bool(rows)

    def pool_usage(self) -> dict[str, int]:
        """The connection pool's figures now (psycopg_pool's ``get_stats``: ``pool_size``,
        ``pool_available``, ``pool_max``, ``requests_waiting``); empty on SQLite, which has no
        pool (one file, one connection per thread)."""
        if not isinstance(self.datastore, PostgresDatastore):
            return {}
        stats = self.datastore.pool.get_stats()
        return {
            name: int(stats.get(name, 0))
            for name in ("pool_size", "pool_available", "pool_max", "requests_waiting")
        }

    def ping(self) -> None:
        """Raise unless the database answers a query."""
        with self.transaction() as curs:
            curs.execute("SELECT 1 AS ok")
            curs.fetchall()


class _AppendsInProcess:
    """An append's wake-up where only this process appends (SQLite)."""

    def __init__(self) -> None:
        self._appended = threading.Event()

    def wait(self, timeout: float) -> bool:
        if not self._appended.wait(timeout):
            return False
        # Cleared before the follower reads: an append committing after this wakes it again.
        self._appended.clear()
        return True

    def appended(self) -> None:
        self._appended.set()

    def close(self) -> None:
        """Nothing is held."""


class _AppendNotifications:
    """A connection LISTENing to ``APPENDS_CHANNEL``, woken by the notifications of appends
    to this schema (those of other schemas on the same database pass by)."""

    def __init__(self, params: dict[str, Any], schema: str) -> None:
        self._schema = schema
        self._connection: Connection[Any] = Connection.connect(
            autocommit=True, connect_timeout=10, **params
        )
        try:
            self._connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(APPENDS_CHANNEL)))
        except BaseException:
            self._connection.close()
            raise

    def wait(self, timeout: float) -> bool:
        for notification in self._connection.notifies(timeout=timeout):
            if notification.payload == self._schema:
                return True
        return False

    def appended(self) -> None:
        """The append's own notification wakes this connection, as any other process's."""

    def close(self) -> None:
        self._connection.close()


_POSTGRES_TYPES = {
    "timestamp": "timestamptz",
    "money": "numeric",
    "float": "double precision",
    "bool": "boolean",
    "bigint": "bigint",
}
_SQLITE_TYPES = {
    "timestamp": "TEXT",
    "money": "TEXT",
    "float": "REAL",
    "bool": "INTEGER",
    "bigint": "INTEGER",
}


_RETURNING = re.compile(r"\bRETURNING\b", re.IGNORECASE)
_WRITTEN_TABLE = re.compile(r"\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+(\S+)", re.IGNORECASE)


@functools.lru_cache(maxsize=512)
def _written_table(sql: str) -> str:
    """The table an INSERT, UPDATE or DELETE without RETURNING writes; ValueError for any
    other statement. Cached: the statements are stagegate's own, a few hundred texts at
    most, and searching a summary's 2 KB upsert took a tenth of a command's time."""
    written = _WRITTEN_TABLE.match(sql)
    if written is None or _RETURNING.search(sql):
        raise ValueError(f"not a write whose result nobody reads: {sql[:80]!r}")
    return written.group(1)


class _WritesTogether:
    """``Database.writes_together``: on PostgreSQL (``hold``) writes held, then sent as one
    statement per run of writes to distinct tables; on SQLite each run as it comes."""

    def __init__(self, curs: Cursor, hold: bool) -> None:
        self._curs = curs
        self._hold = hold
        self._held: list[tuple[str, Sequence[Any]]] = []
        self._tables: set[str] = set()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        table = _written_table(sql)
        if not self._hold:
            self._curs.execute(sql, params)
            return
        if table in self._tables:
            self.send()
        self._held.append((sql, params))
        self._tables.add(table)

    def executemany(self, sql: str, params_seq: Iterable[Sequence[Any]]) -> None:
        if not self._hold:
            _written_table(sql)
            self._curs.executemany(sql, params_seq)
            return
        for params in params_seq:
            self.execute(sql, params)

    def fetchall(self) -> list[dict[str, Any]]:
        raise TypeError("writes sent together return no rows")

    def fetchone(self) -> dict[str, Any] | None:
        raise TypeError("writes sent together return no rows")

    def send(self, notify: tuple[str, str] | None = None) -> None:
        """Send what is held, as one statement; with ``notify`` (channel, payload), that
        statement (or one of its own, if nothing is held) also sends the NOTIFY."""
        held, self._held, self._tables = self._held, [], set()
        last = "SELECT pg_notify(%s, %s)" if notify else "SELECT 1"
        if not held:
            if notify:
                self._curs.execute(last, notify)
        elif len(held) == 1 and not notify:
            self._curs.execute(*held[0])
        else:
            parts = ", ".join(f"w{n} AS ({sql})" for n, (sql, _) in enumerate(held))
            # psycopg numbers the %s placeholders in the order they appear: the parts' own,
            # then the NOTIFY's.
            values = [value for _, params in held for value in params]
            self._curs.execute(f"WITH {parts} {last}", [*values, *(notify or ())])


def _json_value(value: Any) -> Any:
    """A parameter value as JSON that PostgreSQL reads back exactly as its column's type."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (Decimal, UUID)):
        return str(value)
    raise TypeError(f"no JSON form for a {type(value).__name__}")


def database_of(datastore: Any) -> Database:
    if not isinstance(datastore, (SQLiteDatastore, PostgresDatastore)):
        raise TypeError(f"no SQL database behind {type(datastore).__name__}")
    return Database(datastore)
