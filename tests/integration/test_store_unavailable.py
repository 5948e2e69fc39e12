"""On PostgreSQL, a write that cannot get the event table's lock in time is refused as
``StoreUnavailable`` (retryable), never an opaque error, and writes nothing."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from domain import commands as c
from domain.errors import StoreUnavailable
from infra.bootstrap import bootstrap
from infra.settings import Settings
from tests.builders import PRIORITY, Journey, ctx

pytestmark = pytest.mark.postgres


def test_a_write_blocked_by_a_held_table_lock_is_store_unavailable(
    postgres_settings: Settings,
) -> None:
    settings = postgres_settings.model_copy(update={"postgres_lock_timeout_seconds": 1})
    services = bootstrap(settings)
    journey = Journey(services.app).register()
    command = c.ScorePriority.parse({"key": journey.key, **PRIORITY})
    blocker = psycopg.connect(settings.database_url)
    try:
        blocker.execute(
            sql.SQL("LOCK TABLE {}.stagegate_events IN EXCLUSIVE MODE").format(
                sql.Identifier(settings.postgres_schema)
            )
        )
        with pytest.raises(StoreUnavailable):
            services.app.execute(command, ctx())
    finally:
        blocker.rollback()
        blocker.close()
    assert services.app.use_case(journey.key).version == 1
    services.app.execute(command, ctx())  # and once the lock is gone, it goes through
    assert services.app.use_case(journey.key).version == 2
    services.close()
