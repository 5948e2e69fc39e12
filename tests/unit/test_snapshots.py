"""Snapshots round-trip through the store's serialisation to the very use case they were taken
of: the typed kind taken now, and the dict-based kind stored before it (still loadable)."""

from __future__ import annotations

import json

import pytest

from domain.application import Stagegate
from domain.eventmodel import StateSnapshot, TypedStateSnapshot
from domain.usecase import UseCase, UseCaseSnapshot
from domain.values import Stage
from tests.builders import Journey


@pytest.fixture
def far_along(memory_app: Stagegate) -> UseCase:
    """A use case in measurement: owners, baselines, evaluations, a sign-off, a deployment."""
    return Journey(memory_app).register().reach(Stage.MEASUREMENT).use_case


@pytest.mark.parametrize("kind", [UseCaseSnapshot, StateSnapshot])
def test_a_snapshot_loads_as_the_use_case_it_was_taken_of(
    memory_app: Stagegate, far_along: UseCase, kind: type[UseCaseSnapshot | StateSnapshot]
) -> None:
    mapper = memory_app.snapshots.mapper  # type: ignore[union-attr]
    stored = mapper.to_stored_event(kind.take(far_along))
    assert stored.topic.endswith(kind.__name__)
    loaded = mapper.to_domain_event(stored).mutate(None)
    assert isinstance(loaded, UseCase)
    assert loaded == far_along
    assert loaded.state.evaluations  # there was state to keep
    assert loaded.state.deployments


def test_both_kinds_store_the_same_state(far_along: UseCase, memory_app: Stagegate) -> None:
    mapper = memory_app.snapshots.mapper  # type: ignore[union-attr]
    typed = json.loads(mapper.to_stored_event(UseCaseSnapshot.take(far_along)).state)
    plain = json.loads(mapper.to_stored_event(StateSnapshot.take(far_along)).state)
    assert typed["state"]["state"] == plain["state"]["state"]
    assert typed["topic"] == plain["topic"]


def test_the_use_case_takes_typed_snapshots(far_along: UseCase) -> None:
    assert UseCase.Snapshot is UseCaseSnapshot
    assert isinstance(UseCase.Snapshot.take(far_along), UseCaseSnapshot)


@pytest.mark.parametrize("kind", [UseCaseSnapshot, StateSnapshot])
def test_a_snapshot_keeps_the_state_as_it_was_when_taken(
    memory_app: Stagegate, kind: type[UseCaseSnapshot | StateSnapshot]
) -> None:
    use_case = Journey(memory_app).register().reach(Stage.MEASUREMENT).use_case
    snapshot = kind.take(use_case)
    expected = use_case.state.model_dump()
    use_case.state.owners.clear()  # the aggregate's state changes after the snapshot...
    use_case.state.evaluations.clear()
    mapper = memory_app.snapshots.mapper  # type: ignore[union-attr]
    loaded = mapper.to_domain_event(mapper.to_stored_event(snapshot)).mutate(None)
    assert loaded.state.model_dump() == expected  # ...and the snapshot does not


def test_the_generic_typed_snapshot_refuses_to_load_a_state_it_cannot_type(
    memory_app: Stagegate, far_along: UseCase
) -> None:
    """``TypedStateSnapshot`` itself does not know the state model: a subclass must name it."""
    mapper = memory_app.snapshots.mapper  # type: ignore[union-attr]
    untyped = mapper.to_domain_event(mapper.to_stored_event(TypedStateSnapshot.take(far_along)))
    with pytest.raises(AssertionError, match="dict"):
        untyped.mutate(None)


def test_a_save_snapshots_the_use_case_as_saved_without_reading_it_back(
    memory_app: Stagegate, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every fifth event here: the snapshot is of the aggregate in hand, equal to what the
    store's events replay to. The store is not read to take it: the library's way read the
    use case back at the snapshot's version (``lte``), where commands read the latest."""
    journey = Journey(memory_app).register()
    reads: list[dict[str, object]] = []
    select_events = memory_app.recorder.select_events

    def counted(*args: object, **kwargs: object) -> object:
        if kwargs.get("lte") is not None:
            reads.append(kwargs)
        return select_events(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(memory_app.recorder, "select_events", counted)
    use_case = journey.reach(Stage.MEASUREMENT).use_case
    snapshots = memory_app.snapshots
    assert snapshots is not None
    taken = list(snapshots.get(use_case.id))
    assert [snapshot.originator_version for snapshot in taken] == list(
        range(5, use_case.version + 1, 5)
    )
    assert reads == []
    monkeypatch.undo()
    for snapshot in taken:
        replayed = memory_app.repository.get(
            use_case.id, version=snapshot.originator_version, deepcopy_from_cache=True
        )
        assert snapshot.mutate(None) == replayed
