"""Issue 8, finding 6: a committed write is answered as written, and a store that fails while
a command reads is a retryable "unavailable", never an opaque error.

The store retries an insert whose connection failed; when that failure came after the commit,
the retry meets the write's own events and the database says "duplicate key". That was
answered as a version conflict (the write was stored) and, for a command sent without
``expectedVersion``, judged again and written a second time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError, OperationalError, StoredEvent

from domain import commands as c
from domain.errors import StoreUnavailable, VersionConflict
from domain.usecase import use_case_id
from infra.bootstrap import Services
from tests.builders import PRIORITY, Journey, ctx


def _commit_then_report_a_duplicate(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """The next insert commits, and is then answered as the store's retry would answer it."""
    recorder = services.app.recorder
    real = recorder.insert_events
    calls: list[int] = []

    def insert_events(stored_events: Sequence[StoredEvent], **kwargs: Any) -> Any:
        result = real(stored_events, **kwargs)
        calls.append(len(stored_events))
        if len(calls) == 1:
            raise IntegrityError("duplicate key value violates unique constraint (retried)")
        return result

    monkeypatch.setattr(recorder, "insert_events", insert_events)


def _scores_recorded(services: Services, key: str) -> int:
    return sum(
        type(event).__name__ == "PriorityScored"
        for event in services.app.events.get(use_case_id(key))
    )


@pytest.mark.parametrize("expected_version", [None, 1])
def test_a_write_whose_commit_came_back_as_a_duplicate_is_answered_as_written_once(
    services: Services, monkeypatch: pytest.MonkeyPatch, expected_version: int | None
) -> None:
    journey = Journey(services.app).register()
    _commit_then_report_a_duplicate(services, monkeypatch)
    fields: dict[str, Any] = {"key": journey.key, **PRIORITY}
    if expected_version is not None:
        fields["expectedVersion"] = expected_version

    answered = services.app.execute(c.ScorePriority.parse(fields), ctx())

    assert answered.version == 2
    assert _scores_recorded(services, journey.key) == 1
    assert services.app.use_case(journey.key).version == 2


def test_a_registration_whose_commit_came_back_as_a_duplicate_is_registered(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    _commit_then_report_a_duplicate(services, monkeypatch)

    answered = services.app.execute(
        c.RegisterUseCase.parse({"key": "ambiguous-commit", "title": "Ambiguous"}), ctx()
    )

    assert (answered.state.key, answered.version) == ("ambiguous-commit", 1)


def test_another_writers_event_at_the_same_version_is_still_a_conflict(
    services: Services,
) -> None:
    journey = Journey(services.app).register()
    stale = services.app.use_case(journey.key)
    journey.issue(c.ScorePriority, **PRIORITY)  # another writer gets version 2 first
    stale.retire(ctx().meta(reason="superseded"))

    with pytest.raises(VersionConflict):
        services.app._save(stale, conflict=VersionConflict(journey.key, None, None), judged_by=None)

    assert _scores_recorded(services, journey.key) == 1


def test_a_store_that_fails_while_a_command_reads_is_unavailable(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    journey = Journey(services.app).register()

    def lost_connection(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(services.app.repository, "get", lost_connection)
    monkeypatch.setattr(services.app.use_case_source, "check_out", lost_connection)
    command = c.ScorePriority.parse({"key": journey.key, **PRIORITY})

    with pytest.raises(StoreUnavailable):
        services.app.execute(command, ctx())
    monkeypatch.undo()
    assert services.app.use_case(journey.key).version == 1


def _insert_then_lose_the_connection(
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
    *,
    commits: bool,
    stays_down: bool = False,
) -> None:
    """The store gives up on the next insert (after its own retries), having committed it
    or not; with ``stays_down``, nothing can be read from it afterwards either."""
    recorder = services.app.recorder
    real = recorder.insert_events

    def unreachable(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("the database is down")

    def insert_events(stored_events: Sequence[StoredEvent], **kwargs: Any) -> Any:
        monkeypatch.setattr(recorder, "insert_events", real)  # once
        if commits:
            real(stored_events, **kwargs)
        if stays_down:
            monkeypatch.setattr(recorder, "select_events", unreachable)
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(recorder, "insert_events", insert_events)


def test_a_write_committed_before_the_connection_went_is_answered_as_written(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    journey = Journey(services.app).register()
    _insert_then_lose_the_connection(services, monkeypatch, commits=True)

    answered = services.app.execute(c.ScorePriority.parse({"key": journey.key, **PRIORITY}), ctx())

    assert answered.version == 2
    assert _scores_recorded(services, journey.key) == 1


def test_a_write_not_committed_is_unavailable_with_nothing_written(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    journey = Journey(services.app).register()
    _insert_then_lose_the_connection(services, monkeypatch, commits=False)

    with pytest.raises(StoreUnavailable) as unavailable:
        services.app.execute(c.ScorePriority.parse({"key": journey.key, **PRIORITY}), ctx())

    assert unavailable.value.written is False
    assert "nothing was written" in unavailable.value.message
    assert services.app.use_case(journey.key).version == 1


def test_a_write_whose_outcome_cannot_be_read_back_says_it_may_be_stored(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    journey = Journey(services.app).register()
    _insert_then_lose_the_connection(services, monkeypatch, commits=True, stays_down=True)

    with pytest.raises(StoreUnavailable) as unavailable:
        services.app.execute(c.ScorePriority.parse({"key": journey.key, **PRIORITY}), ctx())

    assert unavailable.value.written is None
    assert "may have been stored" in unavailable.value.message
