"""Choose and prepare the event store: SQLite (embedded default) or PostgreSQL."""

from __future__ import annotations

import contextlib
import sqlite3
import time
import weakref
from collections.abc import Iterator
from typing import Any
from weakref import WeakKeyDictionary

import psycopg
from eventsourcing.persistence import InterfaceError
from eventsourcing.postgres import ConnectionPool, PostgresFactory
from eventsourcing.sqlite import (
    SQLITE3_DEFAULT_LOCK_TIMEOUT,
    SQLiteConnection,
    SQLiteConnectionPool,
    SQLiteFactory,
)
from eventsourcing.utils import get_topic
from psycopg.conninfo import make_conninfo
from sqlalchemy import Connection, create_engine, event
from sqlalchemy.pool import NullPool

from domain.application import Stagegate
from infra.recorders import StagegatePostgresRecorder, StagegateSQLiteRecorder
from infra.serialization import CanonicalJSONTranscoder, PydanticMapper
from infra.settings import Settings

# Serialises schema creation when several processes start on one PostgreSQL database.
_SCHEMA_LOCK_KEY = 0x5374_6167  # "Stag"


class IdleCheckedPool(ConnectionPool[Any]):
    """eventsourcing's connection pool, checking a connection before use only when it has
    been idle for more than ``check_after_idle_seconds``.

    The library's pre-ping checks every checkout, a round trip each, and a request makes
    several: a connection used a moment ago is almost certainly alive. One that idled across a
    database restart is checked, and found dead; so is one a request found broken. Either way
    the server went away, so every idle connection is checked and replaced at once: otherwise
    the pool would try them one by one, backing off between each, and requests would time out
    or fail one per dead connection.
    """

    def __init__(self, *, check_after_idle_seconds: float, **kwargs: Any) -> None:
        self.check_after_idle_seconds = check_after_idle_seconds
        self._returned_at: WeakKeyDictionary[Any, float] = WeakKeyDictionary()
        # The callback holds the pool weakly, as eventsourcing's own callbacks do: no cycle.
        this = weakref.ref(self)

        def check_if_idle(conn: Any) -> None:
            pool = this()
            if pool is None:
                return
            idle_since = pool._returned_at.get(conn)
            if idle_since is not None and (
                time.monotonic() - idle_since <= pool.check_after_idle_seconds
            ):
                return
            try:
                pool.check_connection(conn)
            except Exception:
                pool.check()
                raise

        super().__init__(check=check_if_idle, **kwargs)

    def putconn(self, conn: Any) -> None:
        # Noted here, in the caller's thread: a ``reset`` callback would send every return
        # through the pool's background workers (slower, and the pool grows meanwhile).
        broken = conn.broken
        if not broken:
            self._returned_at[conn] = time.monotonic()
        super().putconn(conn)
        if broken and not self.closed:
            self.check()


class StagegatePostgresFactory(PostgresFactory):
    """eventsourcing's PostgreSQL factory, with two changes to its connection pool.

    JIT compilation is off on every connection: stagegate's statements are point lookups and
    small pages. Where the planner has no statistics (a table never analysed: autovacuum off,
    or just bulk-loaded) it estimates tens of thousands of rows for one use case's events and
    JIT-compiles a 0.2 ms lookup for about 17 ms.

    Connections are checked only after they idled (``IdleCheckedPool``).
    """

    CHECK_AFTER_IDLE_SECONDS = 2.0

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        datastore = self.datastore
        given = datastore.pool  # created closed: no connection has been made yet
        after_connect = datastore.after_connect_func()  # autocommit, idle-in-transaction limit

        def configure(conn: Any) -> None:
            after_connect(conn)
            # A session setting, not the ``options`` parameter: that would override an
            # operator's PGOPTIONS.
            conn.execute("SET jit = off")

        datastore.pool = IdleCheckedPool(
            check_after_idle_seconds=self.CHECK_AFTER_IDLE_SECONDS,
            get_password_func=given.get_password_func,
            connection_class=given.connection_class,
            kwargs=given.kwargs,
            min_size=given.min_size,
            max_size=given.max_size,
            open=False,
            configure=configure,
            timeout=given.timeout,
            max_waiting=given.max_waiting,
            max_lifetime=given.max_lifetime,
        )


class StatementCachingSQLitePool(SQLiteConnectionPool):
    """eventsourcing's SQLite connection pool, whose connections keep their prepared
    statements.

    The library opens each connection with ``cached_statements=True``, which Python's sqlite3
    reads as a cache of one statement: an append runs about fifteen, so SQLite parsed and
    planned nearly every one afresh (the summary's upsert is 2 KB of SQL). With a cache of
    ``STATEMENTS`` a command took 0.82 ms of CPU in process instead of 1.05 ms. The rest is the
    library's ``_create_connection``: autocommit (the library begins and commits itself),
    write-ahead logging on a file, rows by name.
    """

    STATEMENTS = 256

    def _create_connection(self) -> SQLiteConnection:
        try:
            connection = sqlite3.connect(
                database=self.db_name,
                uri=True,
                check_same_thread=False,
                isolation_level=None,
                cached_statements=self.STATEMENTS,
                timeout=self.lock_timeout or SQLITE3_DEFAULT_LOCK_TIMEOUT,
            )
        except (sqlite3.Error, TypeError) as error:
            raise InterfaceError(error) from error
        if not self.is_sqlite_memory_mode and not self.is_journal_mode_wal:
            (mode,) = connection.execute("PRAGMA journal_mode").fetchone()
            if mode.lower() != "wal":
                connection.execute("PRAGMA journal_mode=WAL")
                self.journal_mode_was_changed_to_wal = True
            self.is_journal_mode_wal = True
        connection.row_factory = sqlite3.Row
        return SQLiteConnection(sqlite_conn=connection, max_age=self.max_age)


class StagegateSQLiteFactory(SQLiteFactory):
    """eventsourcing's SQLite factory, its pool's connections keeping their statements
    (``StatementCachingSQLitePool``)."""

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        given = self.datastore.pool  # no connection made yet
        self.datastore.pool = StatementCachingSQLitePool(
            db_name=given.db_name,
            lock_timeout=given.lock_timeout,
            pool_size=given.pool_size,
            max_overflow=given.max_overflow,
            pool_timeout=given.pool_timeout,
            max_age=given.max_age,
            pre_ping=given.pre_ping,
        )
        given.close()


def _serialization_env() -> dict[str, str]:
    return {
        "MAPPER_TOPIC": get_topic(PydanticMapper),
        "TRANSCODER_TOPIC": get_topic(CanonicalJSONTranscoder),
    }


def in_memory_env() -> dict[str, str]:
    """An in-process store that keeps nothing: for unit tests and experiments."""
    return {**_serialization_env(), "PERSISTENCE_MODULE": "eventsourcing.popo"}


def eventsourcing_env(settings: Settings) -> dict[str, str]:
    """The eventsourcing library's configuration, derived from our settings only."""
    env = {
        **_serialization_env(),
        # The tables are created by infra.schema, once, not by every start: the service may
        # run as a role that cannot create anything.
        "CREATE_TABLE": "n",
        # Cache loaded aggregates; fast-forwarding from the store keeps them current when
        # another process writes to the same database.
        "AGGREGATE_CACHE_MAXSIZE": "1000",
        "AGGREGATE_CACHE_FASTFORWARD": "y",
    }
    if settings.is_postgres:
        params = settings.postgres_params()
        env.update(
            {
                "PERSISTENCE_MODULE": get_topic(StagegatePostgresFactory),
                "APPLICATION_RECORDER_TOPIC": get_topic(StagegatePostgresRecorder),
                "POSTGRES_DBNAME": params["dbname"],
                "POSTGRES_HOST": params["host"],
                "POSTGRES_PORT": params["port"],
                "POSTGRES_USER": params["user"],
                "POSTGRES_PASSWORD": params["password"],
                "POSTGRES_SCHEMA": settings.postgres_schema,
                "POSTGRES_POOL_SIZE": str(settings.postgres_pool_size),
                "POSTGRES_MAX_OVERFLOW": str(settings.postgres_max_overflow),
                "POSTGRES_LOCK_TIMEOUT": str(settings.postgres_lock_timeout_seconds),
                "POSTGRES_CONNECT_TIMEOUT": "10",
            }
        )
    else:
        path = settings.sqlite_path
        path.parent.mkdir(parents=True, exist_ok=True)
        env.update(
            {
                "PERSISTENCE_MODULE": get_topic(StagegateSQLiteFactory),
                "APPLICATION_RECORDER_TOPIC": get_topic(StagegateSQLiteRecorder),
                "SQLITE_DBNAME": str(path),
                "SQLITE_LOCK_TIMEOUT": "10",
            }
        )
    return env


def build_application(settings: Settings) -> Stagegate:
    """The application on the configured store; call inside ``schema_lock``."""
    return Stagegate(eventsourcing_env(settings), snapshot_interval=settings.snapshot_interval)


@contextlib.contextmanager
def schema_lock(settings: Settings) -> Iterator[None]:
    """Hold a PostgreSQL advisory lock while checking or creating the schema (no-op on SQLite)."""
    if not settings.is_postgres:
        yield
        return
    conninfo = make_conninfo(**settings.postgres_params())
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_SCHEMA_LOCK_KEY,))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_SCHEMA_LOCK_KEY,))


def migration_engine(settings: Settings) -> Any:
    """A SQLAlchemy engine on the configured database, for Alembic (``infra.migrations``):
    connections of its own, opened when a migration runs and closed after."""
    if settings.is_postgres:
        conninfo = make_conninfo(**settings.postgres_params())
        return create_engine(
            "postgresql+psycopg://",
            creator=lambda: psycopg.connect(conninfo),
            poolclass=NullPool,
        )
    engine = create_engine(f"sqlite:///{settings.sqlite_path}", poolclass=NullPool)

    # Python's sqlite3 module opens no transaction around DDL, so a migration would commit
    # statement by statement; SQLAlchemy's documented remedy: take over BEGIN ourselves.
    @event.listens_for(engine, "connect")
    def _no_implicit_transactions(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin_immediately(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
