"""Acceptance 4: optimistic concurrency on PostgreSQL never loses an update.

Twenty writers race at one use case, round after round: exactly one wins each round, the
others get VersionConflict, the versions have no gaps, and the state equals a replay of the
stored events. Writers share a process or sit in separate application instances (as separate
``stagegate serve`` processes would).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from domain import commands as c
from domain.application import Stagegate
from domain.errors import VersionConflict
from domain.usecase import UseCase
from infra.bootstrap import Services, bootstrap
from infra.settings import Settings
from tests.builders import EDITOR, PRIORITY, Journey, ctx

pytestmark = pytest.mark.postgres

WRITERS = 20
ROUNDS = 8


@pytest.fixture
def instances(postgres_settings: Settings) -> Iterator[list[Services]]:
    """Four application instances on one database, as four server processes would have."""
    services = [bootstrap(postgres_settings) for _ in range(4)]
    yield services
    for s in services:
        s.close()


def _race(
    apps: list[Stagegate], key: str, expected_version: int | None, tag: str = "w"
) -> list[object]:
    """Twenty writers each raise alert ``<tag>-<writer>`` at once; returns each outcome."""
    barrier = threading.Barrier(WRITERS)

    def write(writer: int) -> object:
        app = apps[writer % len(apps)]
        command = c.RaiseQualityAlert.parse(
            {
                "key": key,
                "alertId": f"{tag}-{writer}",
                "severity": "low",
                "description": f"written by writer {writer}",
                "expectedVersion": expected_version,
            }
        )
        barrier.wait()
        try:
            return app.execute(command, ctx(EDITOR))
        except VersionConflict as conflict:
            return conflict

    with ThreadPoolExecutor(max_workers=WRITERS) as pool:
        return list(pool.map(write, range(WRITERS)))


def _replayed(app: Stagegate, use_case: UseCase) -> UseCase:
    """The use case rebuilt from every stored event, ignoring caches and snapshots."""
    aggregate = None
    for event in app.events.get(use_case.id):
        aggregate = event.mutate(aggregate)  # type: ignore[attr-defined]
    assert isinstance(aggregate, UseCase)
    return aggregate


def test_exactly_one_of_twenty_writers_wins_each_round(instances: list[Services]) -> None:
    apps = [s.app for s in instances]
    journey = Journey(apps[0]).register()

    for round_number in range(ROUNDS):
        version = apps[0].use_case(journey.key).version
        outcomes = _race(apps, journey.key, expected_version=version, tag=f"r{round_number}")

        winners = [o for o in outcomes if isinstance(o, UseCase)]
        conflicts = [o for o in outcomes if isinstance(o, VersionConflict)]
        assert len(winners) == 1, f"round {round_number}: {len(winners)} winners"
        assert len(conflicts) == WRITERS - 1
        assert winners[0].version == version + 1

    final = apps[1].use_case(journey.key)
    versions = [e.originator_version for e in apps[0].events.get(final.id)]
    assert versions == list(range(1, ROUNDS + 2)), "no gaps, no duplicates"
    assert final.version == ROUNDS + 1
    assert len(final.state.open_quality_alerts) == ROUNDS
    assert _replayed(apps[0], final) == final


def test_unconditional_writers_never_lose_an_update(instances: list[Services]) -> None:
    apps = [s.app for s in instances]
    journey = Journey(apps[0]).register()

    outcomes = _race(apps, journey.key, expected_version=None)

    winners = [o for o in outcomes if isinstance(o, UseCase)]
    conflicts = [o for o in outcomes if isinstance(o, VersionConflict)]
    assert winners, "at least one writer gets through"
    assert len(winners) + len(conflicts) == WRITERS
    final = apps[2].use_case(journey.key)
    # Every accepted write is in the log exactly once; every refused one is absent.
    assert final.version == 1 + len(winners)
    accepted = {f"w-{i}" for i, outcome in enumerate(outcomes) if isinstance(outcome, UseCase)}
    assert set(final.state.open_quality_alerts) == accepted
    assert _replayed(apps[0], final) == final


def test_a_write_in_one_instance_is_seen_by_the_next_read_in_another(
    instances: list[Services],
) -> None:
    first, second = instances[0].app, instances[1].app
    journey = Journey(first).register()
    assert second.use_case(journey.key).version == 1  # now cached in the second instance

    Journey(first, journey.key).issue(c.ScorePriority, **PRIORITY)

    assert second.use_case(journey.key).version == 2
    assert second.use_case(journey.key).state.priority is not None
