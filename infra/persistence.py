"""Choose and prepare the event store: SQLite (embedded default) or PostgreSQL."""

from __future__ import annotations

import contextlib
import time
import weakref
from collections.abc import Iterator
from typing import Any
from weakref import WeakKeyDictionary

import psycopg
from eventsourcing.postgres import ConnectionPool, PostgresFactory
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
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
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
