"""Issue 8, findings 3 and 4: integrity covers everything an auditor reads, not only the chain.

Each tampering here leaves the hash chain intact, so only checking the snapshots at every
version (beyond the head too) and the history rows against the chained log finds it. Both
are edits the application's own database role can make: snapshots and history rows are
inserted by it, and the history is a read model it rewrites.
"""

from __future__ import annotations

import json
from typing import Any

from domain import commands as c
from domain.usecase import use_case_id
from domain.values import Stage
from infra.audit import verify_all, verify_chain
from infra.bootstrap import Services
from infra.readmodels.schema import HISTORY
from tests.builders import PRIORITY, Journey


def _snapshots_table(services: Services) -> str:
    snapshots = services.app.snapshots
    assert snapshots is not None
    return services.database.table(snapshots.recorder.events_table_name)  # type: ignore[attr-defined]


def _stored_id(services: Services, key: str) -> Any:
    # The library keeps SQLite ids as bare hex.
    return use_case_id(key) if services.database.is_postgres else use_case_id(key).hex


def _plant_snapshot(services: Services, source_key: str, key: str, version: int) -> None:
    """INSERT (nothing else) a snapshot of ``key`` at ``version``, forged from a real one of
    ``source_key`` with another title: what loading the use case then shows."""
    table = _snapshots_table(services)
    with services.database.transaction() as curs:
        curs.execute(
            f"SELECT topic, state FROM {table} WHERE originator_id = %s"
            " ORDER BY originator_version DESC LIMIT 1",
            (_stored_id(services, source_key),),
        )
        row = curs.fetchone()
        assert row is not None, "the journey is long enough to have been snapshotted"
        state = json.loads(bytes(row["state"]))
        state["state"]["state"]["title"] = "Forged title"
        state["state"]["state"]["key"] = key
        curs.execute(
            f"INSERT INTO {table} (originator_id, originator_version, topic, state)"
            " VALUES (%s, %s, %s, %s)",
            (
                _stored_id(services, key),
                version,
                row["topic"],
                json.dumps(state, sort_keys=True, separators=(",", ":")).encode(),
            ),
        )


def _snapshotted(services: Services) -> Journey:
    journey = Journey(services.app).register().reach(Stage.DEPLOYMENT)  # past 10 events
    services.read_models.catch_up()
    return journey


def test_a_snapshot_planted_beyond_the_head_is_found(services: Services) -> None:
    journey = _snapshotted(services)
    head = journey.use_case.version
    _plant_snapshot(services, journey.key, journey.key, 99)
    services.app.repository.cache.cache.clear()  # type: ignore[union-attr]
    assert services.app.use_case(journey.key).state.title == "Forged title"  # what it forges

    report = verify_chain(services.app, use_case_id(journey.key))

    assert not report.intact
    assert report.first_bad_version == 99
    assert report.reason == f"a snapshot at version 99 lies beyond the last event (version {head})"
    [found] = [r for r in verify_all(services.app) if r.subject == journey.key]
    assert found.report == report


def test_a_use_case_that_exists_only_as_a_planted_snapshot_is_found(services: Services) -> None:
    journey = _snapshotted(services)
    _plant_snapshot(services, journey.key, "never-registered", 30)

    [forged] = [
        r for r in verify_all(services.app) if r.originator_id == use_case_id("never-registered")
    ]

    assert not forged.report.intact
    assert forged.report.first_bad_version == 30
    assert forged.report.reason == "a snapshot at version 30 lies beyond the last event (version 0)"


def _edit_history(services: Services, statement: str, params: tuple[Any, ...]) -> None:
    with services.database.transaction() as curs:
        curs.execute(statement.replace("{history}", services.database.table(HISTORY)), params)


def test_an_edited_history_row_is_found_and_named(services: Services) -> None:
    journey = Journey(services.app).register()
    journey.issue(c.ScorePriority, **PRIORITY)
    services.read_models.catch_up()
    aggregate_id = str(use_case_id(journey.key))
    _edit_history(
        services,
        "UPDATE {history} SET actor_id = %s WHERE aggregate_id = %s AND version = 2",
        ("someone.else@example.com", aggregate_id),
    )

    report = verify_chain(services.app, use_case_id(journey.key))

    assert not report.intact
    assert report.first_bad_version == 2
    assert report.reason == "the history entry of version 2 does not match the log: actor_id"


def test_a_deleted_history_row_is_found(services: Services) -> None:
    journey = Journey(services.app).register()
    journey.issue(c.ScorePriority, **PRIORITY)
    journey.issue(c.Retire, reason="superseded")
    services.read_models.catch_up()
    _edit_history(
        services,
        "DELETE FROM {history} WHERE aggregate_id = %s AND version = 2",
        (str(use_case_id(journey.key)),),
    )

    report = verify_chain(services.app, use_case_id(journey.key))

    assert (report.intact, report.first_bad_version) == (False, 2)
    assert report.reason == "the history lacks version 2"


def test_a_history_row_added_for_a_version_the_log_lacks_is_found(services: Services) -> None:
    journey = Journey(services.app).register()
    services.read_models.catch_up()
    _edit_history(
        services,
        "INSERT INTO {history} SELECT notification_id + 1000000, aggregate_id, 2, event_type,"
        " recorded_at, business_time, actor_id, actor_role, channel, 'approved by Ada',"
        " correlation_id, source, delivery_id, corrects, payload FROM {history}"
        " WHERE aggregate_id = %s AND version = 1",
        (str(use_case_id(journey.key)),),
    )

    report = verify_chain(services.app, use_case_id(journey.key))

    assert (report.intact, report.first_bad_version) == (False, 2)
    assert report.reason == "the history shows version 2, which the log does not have"


def test_an_untouched_history_is_intact_and_one_not_yet_projected_is_not_judged(
    services: Services,
) -> None:
    journey = Journey(services.app).register().reach(Stage.PILOT)
    services.read_models.catch_up()
    assert verify_chain(services.app, use_case_id(journey.key)).intact

    # The fixture runs no background projector: the next event stays unprojected.
    journey.issue(c.Retire, reason="superseded")

    assert verify_chain(services.app, use_case_id(journey.key)).intact


def test_a_history_row_planted_under_an_id_that_is_no_history_is_reported(
    services: Services,
) -> None:
    journey = Journey(services.app).register()
    services.read_models.catch_up()
    _edit_history(
        services,
        "INSERT INTO {history} SELECT notification_id + 1000000, 'not-a-uuid', version,"
        " event_type, recorded_at, business_time, actor_id, actor_role, channel, reason,"
        " correlation_id, source, delivery_id, corrects, payload FROM {history}"
        " WHERE aggregate_id = %s",
        (str(use_case_id(journey.key)),),
    )

    results = {r.subject: r.report for r in verify_all(services.app)}

    assert results[journey.key].intact
    planted = results["not-a-uuid"]
    assert not planted.intact
    assert planted.reason == (
        "the history holds rows for 'not-a-uuid', which is not the id of any history"
    )
