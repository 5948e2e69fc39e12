"""How stagegate uses its PostgreSQL connections, and what a read leaves in the aggregate cache.

The pool checks a connection only when it has been idle for a while (a round trip saved on
every busy checkout); a connection the server dropped must still never reach a caller once it
has sat idle, and one found broken has the others replaced at once. JIT is off on every
connection. Reads put a use case in the cache only on its
second read (PostgreSQL), and what they return is the same either way.
"""

from __future__ import annotations

import psycopg
import psycopg_pool.pool
import pytest
from eventsourcing.persistence import OperationalError

from domain import commands as c
from domain.errors import NotFound
from domain.usecase import use_case_id
from infra.bootstrap import Services, bootstrap
from infra.persistence import IdleCheckedPool
from infra.settings import Settings
from tests.builders import PRIORITY, Journey, ctx


@pytest.fixture
def back_offs(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The pauses the pool takes between attempts to hand out a working connection."""
    pauses: list[float] = []
    monkeypatch.setattr(psycopg_pool.pool, "sleep", pauses.append)
    return pauses


def _pool(services: Services) -> IdleCheckedPool:
    pool = services.app.recorder.datastore.pool  # type: ignore[attr-defined]
    assert isinstance(pool, IdleCheckedPool)
    return pool


def _drop_idle_connections(services: Services, url: str) -> int:
    """Have the server end every idle pooled connection, as a restart would; how many."""
    pool = _pool(services)
    held = [pool.getconn() for _ in range(pool.get_stats()["pool_available"])]
    pids = [conn.info.backend_pid for conn in held]
    for conn in held:
        pool.putconn(conn)
    with psycopg.connect(url, autocommit=True) as admin:
        dropped = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", (pids,)
        ).fetchall()
    assert dropped == [(True,)] * len(pids)
    return len(pids)


@pytest.mark.postgres
def test_every_connection_has_jit_off_and_keeps_the_librarys_settings(
    postgres_services: Services,
) -> None:
    rows = postgres_services.database.select("SHOW jit")
    assert rows == [{"jit": "off"}]
    with postgres_services.app.recorder.datastore.transaction(commit=False) as curs:  # type: ignore[attr-defined]
        curs.execute("SHOW jit")
        assert curs.fetchone() == {"jit": "off"}
        curs.execute("SHOW idle_in_transaction_session_timeout")
        assert curs.fetchone() == {"idle_in_transaction_session_timeout": "5s"}


@pytest.mark.postgres
def test_a_connection_used_a_moment_ago_is_not_checked(
    postgres_services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool = _pool(postgres_services)
    held = [pool.getconn() for _ in range(pool.get_stats()["pool_available"])]
    for conn in held:  # every pooled connection has now been used
        pool.putconn(conn)
    checked: list[object] = []
    real_check = IdleCheckedPool.check_connection
    monkeypatch.setattr(
        IdleCheckedPool,
        "check_connection",
        staticmethod(lambda conn: checked.append(real_check(conn))),
    )
    for _ in range(10):
        assert postgres_services.database.select("SELECT 1 AS one") == [{"one": 1}]
    assert checked == []
    pool.check_after_idle_seconds = 0.0  # now every checkout counts as after idling
    postgres_services.database.select("SELECT 1 AS one")
    assert len(checked) == 1


@pytest.mark.postgres
def test_connections_the_server_dropped_while_idle_are_replaced_unseen(
    postgres_services: Services, postgres_settings: Settings, back_offs: list[float]
) -> None:
    journey = Journey(postgres_services.app).register()
    pool = _pool(postgres_services)
    pool.check_after_idle_seconds = 0.0  # every pooled connection has idled long enough
    dropped = _drop_idle_connections(postgres_services, postgres_settings.database_url)
    assert postgres_services.database.select("SELECT 1 AS one") == [{"one": 1}]
    # All replaced at the first dead one found, not tried one by one with pauses between.
    assert pool.get_stats()["connections_lost"] == dropped
    assert [pause for pause in back_offs if pause > 0] == []
    for _ in range(pool.get_stats()["pool_size"] + 1):  # each pooled connection in turn
        assert postgres_services.app.use_case(journey.key, to_read=True).version == 1
    postgres_services.app.execute(c.ScorePriority.parse({"key": journey.key, **PRIORITY}), ctx())
    assert postgres_services.app.use_case(journey.key).version == 2


@pytest.mark.postgres
def test_after_a_restart_under_load_one_request_fails_and_the_rest_reconnect(
    postgres_services: Services, postgres_settings: Settings, back_offs: list[float]
) -> None:
    """Connections used a moment ago are not checked, so the first request to meet a dead one
    fails (a retryable error); its broken connection has the others replaced."""
    pool = _pool(postgres_services)
    dropped = _drop_idle_connections(postgres_services, postgres_settings.database_url)
    with pytest.raises(OperationalError, match="terminating connection"):
        postgres_services.database.select("SELECT 1 AS one")
    assert pool.get_stats()["connections_lost"] == dropped - 1  # the others, found by check()
    for _ in range(pool.get_stats()["pool_size"] + 1):
        assert postgres_services.database.select("SELECT 1 AS one") == [{"one": 1}]
    assert [pause for pause in back_offs if pause > 0] == []


@pytest.mark.postgres
def test_a_use_case_read_once_is_not_cached_and_read_twice_is(postgres_services: Services) -> None:
    app = postgres_services.app
    key = Journey(app).register().key
    app.execute(c.ScorePriority.parse({"key": key, **PRIORITY}), ctx())
    reader = bootstrap(postgres_services.settings)  # another process: nothing of it cached
    try:
        cache = reader.app.repository.cache
        assert cache is not None
        aggregate_id = use_case_id(key)

        first = reader.app.use_case(key, to_read=True)
        assert aggregate_id not in cache.cache
        second = reader.app.use_case(key, to_read=True)
        assert aggregate_id in cache.cache
        third = reader.app.use_case(key, to_read=True)
        assert first == second == third == app.use_case(key)
        assert first.version == 2

        # The cached copy is brought up to date by a write from elsewhere.
        app.execute(c.AssignOwner.parse(_owner(key)), ctx())
        assert reader.app.use_case(key, to_read=True) == app.use_case(key)
        assert reader.app.use_case(key, to_read=True).version == 3
        with pytest.raises(NotFound):
            reader.app.use_case("no-such-use-case", to_read=True)
    finally:
        reader.close()


def _owner(key: str) -> dict[str, object]:
    return {
        "key": key,
        "role": "business",
        "person": {"id": "olga@example.com", "name": "Olga Owner"},
    }
