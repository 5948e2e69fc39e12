"""Issue 8, defence in depth: an event a read model cannot hold is set aside and named; it
never stops the projections, a restart, a rebuild or the commands after it.

The event is planted as an earlier release could have stored it, before business times were
bounded at the edge: a year-1 adoption measurement with a positive offset, which has no UTC
form (on SQLite the history could not convert it; on PostgreSQL it could not be read back).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from eventsourcing.persistence import ProgrammingError

from domain import commands as c
from domain.usecase import use_case_id
from infra.audit import verify_chain
from infra.bootstrap import Services, bootstrap
from infra.readmodels import faults
from infra.readmodels.runner import MAX_FAULTS_IN_A_ROW, ProjectionRunner, TooManyFaults
from projections.readmodels import UseCaseFilter
from tests.builders import PRIORITY, Journey, ctx
from tests.lagging import left_to_the_runners

YEAR_ONE = datetime(1, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1)))


def _plant_legacy_event(journey: Journey) -> int:
    """Store a year-1 adoption through the aggregate, past the commands' validation."""
    use_case = journey.use_case
    use_case.record_adoption(1, 2, YEAR_ONE, ctx().meta())
    journey.app.save(use_case)
    return use_case.version


def _history_versions(services: Services, key: str) -> list[int]:
    page = services.read_models.history(str(use_case_id(key)), 100, None)
    return [entry.version for entry in page.items]


def test_an_event_the_history_cannot_hold_is_set_aside_and_named(services: Services) -> None:
    journey = Journey(services.app).register()
    planted = _plant_legacy_event(journey)
    journey.issue(c.ScorePriority, **PRIORITY)
    other = Journey(services.app).register()

    services.read_models.catch_up()

    count, found = services.read_models.projection_faults()
    # The history cannot hold it, nor can the adoption readings (the summaries' table): each
    # projection names it.
    assert count == 2
    assert sorted((f.projection, f.aggregate_id, f.version) for f in found) == [
        (projection, str(use_case_id(journey.key)), planted)
        for projection in ("history", "summaries")
    ]
    assert all(f.notification_id is not None for f in found)
    assert all("0001-01-01T00:30:00+01:00" in f.reason for f in found)
    assert _history_versions(services, journey.key) == [1, 3]
    assert _history_versions(services, other.key) == [1]
    summaries = services.read_models.use_cases(UseCaseFilter(), 100, None).items
    assert {(s.state.key, s.version) for s in summaries} == {(journey.key, 3), (other.key, 1)}


def test_commands_after_a_set_aside_event_are_projected(services: Services) -> None:
    journey = Journey(services.app).register()
    _plant_legacy_event(journey)
    services.read_models.catch_up()

    journey.issue(c.Retire, reason="superseded")
    services.read_models.catch_up()

    assert _history_versions(services, journey.key) == [1, 3]
    [summary] = services.read_models.use_cases(UseCaseFilter(), 100, None).items
    assert (summary.version, summary.state.stage.value) == (3, "retired")


def test_a_restart_and_a_rebuild_go_past_the_event_and_name_it_again(services: Services) -> None:
    journey = Journey(services.app).register()
    planted = _plant_legacy_event(journey)
    journey.issue(c.ScorePriority, **PRIORITY)
    services.read_models.catch_up()

    restarted = bootstrap(services.settings)
    try:
        assert restarted.read_models.catch_up() == 0
        rebuilt = restarted.read_models.rebuild()
        count, found = restarted.read_models.projection_faults()
    finally:
        restarted.close()

    assert rebuilt >= 3
    assert count == 2
    assert sorted((f.projection, f.version) for f in found) == [
        ("history", planted),
        ("summaries", planted),
    ]
    assert _history_versions(services, journey.key) == [1, 3]


def test_without_a_faulty_event_nothing_is_set_aside(services: Services) -> None:
    journey = Journey(services.app).register()
    journey.issue(c.ScorePriority, **PRIORITY)
    services.read_models.catch_up()

    assert services.read_models.projection_faults() == (0, [])
    assert _history_versions(services, journey.key) == [1, 2]


def _history_runner(services: Services) -> ProjectionRunner:
    [runner] = [r for r in services.read_models.runners if r.name == "history"]
    return runner


def test_an_error_that_is_not_the_events_is_raised_and_sets_nothing_aside(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    with left_to_the_runners(services):
        Journey(services.app).register()
    runner = _history_runner(services)

    def missing_right(*args: object, **kwargs: object) -> None:
        raise ProgrammingError("permission denied for table stagegate_history")

    monkeypatch.setattr(runner.projection, "apply", missing_right)
    with pytest.raises(ProgrammingError):
        runner.catch_up()

    assert services.read_models.projection_faults() == (0, [])
    assert runner.position() == 0


def test_event_after_event_failing_stops_the_runner_instead_of_setting_them_all_aside(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    with left_to_the_runners(services):
        for _ in range(MAX_FAULTS_IN_A_ROW + 5):
            Journey(services.app).register()
    runner = _history_runner(services)

    def broken(*args: object, **kwargs: object) -> None:
        raise ValueError("a bug in the projection, not in any event")

    monkeypatch.setattr(runner.projection, "apply", broken)
    with pytest.raises(TooManyFaults):
        runner.catch_up()

    count, _ = services.read_models.projection_faults()
    assert count == MAX_FAULTS_IN_A_ROW


def test_an_event_another_worker_set_aside_meanwhile_is_not_followed_by_a_good_one(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two workers meet the same bad event; the second must not set aside the next one."""
    journey = Journey(services.app).register()
    planted = _plant_legacy_event(journey)
    other = bootstrap(services.settings)
    runner = _history_runner(services)
    real_attempt = runner._attempt
    raced: list[bool] = []

    def another_worker_between(max_events: int, page_size: int) -> int:
        try:
            return real_attempt(max_events, page_size)
        except ValueError:
            if max_events == 1 and not raced:  # this worker's single try of the bad event
                raced.append(True)
                other.read_models.catch_up()  # the other worker sets it aside, goes on
                journey.issue(c.ScorePriority, **PRIORITY)  # a good event comes next
            raise

    monkeypatch.setattr(runner, "_attempt", another_worker_between)
    try:
        runner.run_transaction()
        monkeypatch.undo()
        runner.catch_up()
    finally:
        other.close()

    assert raced == [True]
    count, found = services.read_models.projection_faults()
    # Set aside once by the history (and once by the summaries, for its adoption reading).
    assert count == 2
    assert sorted((f.projection, f.version) for f in found) == [
        ("history", planted),
        ("summaries", planted),
    ]
    assert _history_versions(services, journey.key) == [1, 3]


def test_two_faults_of_one_event_keep_both_reasons(services: Services) -> None:
    db = services.database
    with db.transaction() as curs:
        faults.record(curs, db, "summaries", "some-id", 7, 42, ValueError("its cost row"))
        faults.record(curs, db, "summaries", "some-id", 7, 42, ValueError("its summary"))

    _, [fault] = services.read_models.projection_faults()
    assert fault.reason == "ValueError: its cost row; ValueError: its summary"


def test_the_audit_says_which_history_entry_was_set_aside_rather_than_deleted(
    services: Services,
) -> None:
    journey = Journey(services.app).register()
    planted = _plant_legacy_event(journey)
    services.read_models.catch_up()

    report = verify_chain(services.app, use_case_id(journey.key))

    assert (report.intact, report.first_bad_version) == (False, planted)
    assert report.reason is not None
    assert report.reason.startswith(
        f"the history lacks version {planted}: the history projection set it aside (ValueError:"
    )
