"""How stagegate uses its PostgreSQL connections, and what a read leaves in the aggregate cache.

The pool checks a connection only when it has been idle for a while (a round trip saved on
every busy checkout), so a connection the server dropped must still never reach a caller once
it has sat idle; JIT is off on every connection. Reads put a use case in the cache only on its
second read (PostgreSQL), and what they return is the same either way.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from domain import commands as c
from domain.errors import NotFound
from domain.usecase import use_case_id
from infra.bootstrap import Services, bootstrap
from infra.persistence import StagegatePostgresFactory
from infra.settings import Settings
from tests.builders import PRIORITY, Journey, ctx


@pytest.fixture
def pg_services(postgres_settings: Settings) -> Iterator[Services]:
    services = bootstrap(postgres_settings)
    yield services
    services.close()


@pytest.mark.postgres
def test_every_connection_has_jit_off(pg_services: Services) -> None:
    rows = pg_services.database.select("SHOW jit")
    assert rows == [{"jit": "off"}]
    with pg_services.app.recorder.datastore.transaction(commit=False) as curs:  # type: ignore[attr-defined]
        curs.execute("SHOW jit")
        assert curs.fetchone() == {"jit": "off"}


@pytest.mark.postgres
def test_connections_the_server_dropped_while_idle_are_replaced_unseen(
    pg_services: Services, postgres_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    journey = Journey(pg_services.app).register()
    pool = pg_services.app.recorder.datastore.pool  # type: ignore[attr-defined]
    stats_before = pool.get_stats()
    held = [pool.getconn() for _ in range(stats_before["pool_available"])]
    pids = [conn.info.backend_pid for conn in held]
    for conn in held:
        pool.putconn(conn)
    # Every pooled connection counts as idle from now on; then the server drops them all,
    # as a restart or an idle timeout would.
    monkeypatch.setattr(StagegatePostgresFactory, "CHECK_AFTER_IDLE_SECONDS", 0.0)
    with psycopg.connect(postgres_settings.database_url, autocommit=True) as admin:
        dropped = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", (pids,)
        ).fetchall()
    assert dropped == [(True,)] * len(pids)
    for _ in range(stats_before["pool_size"] + 1):  # each pooled connection in turn
        assert pg_services.app.use_case(journey.key, to_read=True).version == 1
        assert pg_services.database.select("SELECT 1 AS one") == [{"one": 1}]
    pg_services.app.execute(c.ScorePriority.parse({"key": journey.key, **PRIORITY}), ctx())
    assert pg_services.app.use_case(journey.key).version == 2


@pytest.mark.postgres
def test_a_use_case_read_once_is_not_cached_and_read_twice_is(pg_services: Services) -> None:
    app = pg_services.app
    key = Journey(app).register().key
    app.execute(c.ScorePriority.parse({"key": key, **PRIORITY}), ctx())
    reader = bootstrap(pg_services.settings)  # another process: nothing of it cached
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
