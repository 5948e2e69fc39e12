"""Plain SQL on the event store's own connection pool, for stagegate's non-event tables.

One small seam over the two datastores eventsourcing gives us, so the token table (and later
read models) are written with the same SQL on SQLite and PostgreSQL: ``%s`` placeholders,
table names through ``table()``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore


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


class Database:
    """A transaction on whichever store the application was built on."""

    def __init__(self, datastore: SQLiteDatastore | PostgresDatastore) -> None:
        self.datastore = datastore
        self.is_postgres = isinstance(datastore, PostgresDatastore)

    def table(self, name: str) -> str:
        """A table name, qualified by the PostgreSQL schema (validated at settings time)."""
        if isinstance(self.datastore, PostgresDatastore):
            return f'"{self.datastore.schema}"."{name}"'
        return name

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Cursor]:
        """A transaction that commits when the block ends without an exception."""
        if isinstance(self.datastore, PostgresDatastore):
            with self.datastore.transaction(commit=True) as curs:
                yield curs
        else:
            with self.datastore.transaction(commit=True) as curs:
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
        with self.transaction() as cursor:
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
        return utc if self.is_postgres else utc.isoformat(timespec="microseconds")

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
        return value if value is None or self.is_postgres else str(value)

    def type_of(self, kind: str) -> str:
        """A column type by what it holds: timestamp, money, float, bool, bigint."""
        types = _POSTGRES_TYPES if self.is_postgres else _SQLITE_TYPES
        return types[kind]

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

    def schema_exists(self) -> bool:
        """Whether stagegate's PostgreSQL schema exists (SQLite has none: always True)."""
        if not isinstance(self.datastore, PostgresDatastore):
            return True
        rows = self.select(
            "SELECT 1 AS found FROM pg_namespace WHERE nspname = %s", (self.datastore.schema,)
        )
        return bool(rows)

    def ping(self) -> None:
        """Raise unless the database answers a query."""
        with self.transaction() as curs:
            curs.execute("SELECT 1 AS ok")
            curs.fetchall()


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


def database_of(datastore: Any) -> Database:
    if not isinstance(datastore, (SQLiteDatastore, PostgresDatastore)):
        raise TypeError(f"no SQL database behind {type(datastore).__name__}")
    return Database(datastore)
