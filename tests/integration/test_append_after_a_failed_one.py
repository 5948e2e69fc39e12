"""An append that fails part-way leaves its connection fit for the next append.

psycopg prepares a statement on the server the sixth time it runs on a connection, noting the
name before the server answers. An append runs its statements in one pipeline; when one fails,
those queued after it are never run, and psycopg hears no answer for them. The library's
append then ended its transaction with a COMMIT (which the server turns into a rollback), so
psycopg kept the names of statements the server never prepared, and the connection's next
append failed with 'prepared statement "_pg3_N" does not exist': a 500 to a CloudEvent that
raced a duplicate of itself. The recorder rolls the failed transaction back, which makes
psycopg forget them.

One connection in the pool, so every append here shares it. The failing append is the events'
insert of a version that exists, in an event that records a delivery: the delivery's insert
is queued after it, and so is skipped. It fails after 2 to 8 earlier appends of deliveries, so
that for one of them the skipped insert is the very run psycopg would prepare.
"""

from __future__ import annotations

import uuid

import pytest
from eventsourcing.persistence import IntegrityError

from domain import commands as c
from domain.metadata import CommandContext
from domain.values import Channel
from infra.bootstrap import bootstrap
from infra.settings import Settings
from tests.builders import EDITOR, Journey

pytestmark = pytest.mark.postgres


def _delivered(n: int) -> CommandContext:
    return CommandContext(
        actor=EDITOR,
        channel=Channel.CLOUDEVENTS,
        correlation_id=f"c-{n}",
        source="https://monitoring.example.com",
        delivery_id=f"delivery-{n}-{uuid.uuid4()}",
        delivery_fingerprint=f"{n:064x}",
    )


def _alert(key: str, n: int) -> c.RaiseQualityAlert:
    return c.RaiseQualityAlert.parse(
        {"key": key, "alertId": f"alert-{n}", "severity": "low", "description": "drift"}
    )


@pytest.mark.parametrize("appends_before", range(2, 9))
def test_an_append_after_one_that_failed_part_way_succeeds(
    postgres_settings: Settings, appends_before: int
) -> None:
    settings = postgres_settings.model_copy(
        update={"postgres_pool_size": 1, "postgres_max_overflow": 0}
    )
    services = bootstrap(settings)
    try:
        app = services.app
        journey = Journey(app).register()
        for n in range(appends_before):
            app.execute(_alert(journey.key, n), _delivered(n))
        use_case = app.use_case(journey.key)
        [last] = app.recorder.select_events(use_case.id, gt=use_case.version - 1)

        with pytest.raises(IntegrityError):
            app.recorder.insert_events([last])  # that version again, with its delivery

        for n in range(100, 108):
            app.execute(_alert(journey.key, n), _delivered(n))
        assert app.use_case(journey.key).version == use_case.version + 8
    finally:
        services.close()
