"""A use case this process saved is changed next from the copy it kept, without reading the
store again (``infra.caches.CachedUseCases``), and stays correct when another process has
changed it since: a change made to the stale copy conflicts at its commit and is judged
again, and a refusal judged on it is answered only once the copy is found current.

Both stores keep copies so; the test that counts reads of the store does so on PostgreSQL,
where a batch's use cases are read in one query.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from domain import commands as c
from domain.errors import GateBlocked, VersionConflict
from domain.gates import RequirementCode
from domain.values import OwnerRole
from infra.bootstrap import Services, bootstrap
from infra.group_commit import GroupCommit
from infra.recorders import StagegatePostgresRecorder
from infra.settings import Settings
from tests.builders import PRIORITY, Journey, ctx


@pytest.fixture
def other_process(settings: Settings) -> Iterator[Services]:
    """A second application on the same database, as another server process would be."""
    other = bootstrap(settings)
    yield other
    other.close()


def _alert(key: str, alert_id: str, expected: int | None = None) -> c.RaiseQualityAlert:
    fields: dict[str, Any] = {
        "key": key,
        "alertId": alert_id,
        "severity": "low",
        "description": "drift",
    }
    if expected is not None:
        fields["expectedVersion"] = expected
    return c.RaiseQualityAlert.parse(fields)


def test_a_use_case_saved_here_is_changed_next_without_reading_the_store(
    postgres_services: Services,
) -> None:
    services = postgres_services
    grouped = GroupCommit(services.app)
    journey = Journey(services.app).register()
    grouped.execute(_alert(journey.key, "first"), ctx())  # read from the store, then held
    recorder = services.app.recorder
    assert isinstance(recorder, StagegatePostgresRecorder)
    reads: list[Any] = []
    real = recorder.select_latest_of_many

    def counted(*args: Any, **kwargs: Any) -> Any:
        reads.append(args)
        return real(*args, **kwargs)

    recorder.select_latest_of_many = counted  # type: ignore[method-assign]
    try:
        answer = grouped.execute(_alert(journey.key, "second"), ctx())
    finally:
        del recorder.select_latest_of_many

    assert reads == []
    assert answer.version == 3
    assert sorted(services.app.use_case(journey.key).state.open_quality_alerts) == [
        "first",
        "second",
    ]


def test_a_change_to_a_copy_another_process_made_stale_is_judged_again(
    services: Services, other_process: Services
) -> None:
    grouped = GroupCommit(services.app)
    journey = Journey(services.app).register()
    grouped.execute(_alert(journey.key, "here"), ctx())  # held here at version 2
    Journey(other_process.app, key=journey.key).issue(
        c.RaiseQualityAlert, alertId="elsewhere", severity="low", description="drift"
    )

    answer = grouped.execute(_alert(journey.key, "again"), ctx())

    assert answer.version == 4
    assert sorted(services.app.use_case(journey.key).state.open_quality_alerts) == [
        "again",
        "elsewhere",
        "here",
    ]


def test_a_refusal_is_not_judged_on_a_copy_another_process_made_stale(
    services: Services, other_process: Services
) -> None:
    grouped = GroupCommit(services.app)
    journey = Journey(services.app).register()
    grouped.execute(_alert(journey.key, "here"), ctx())  # held here at version 2
    Journey(other_process.app, key=journey.key).issue(
        c.RaiseQualityAlert, alertId="elsewhere", severity="low", description="drift"
    )

    # The held copy says version 2; the store has 3, which is what the caller expects.
    answer = grouped.execute(_alert(journey.key, "expected", expected=3), ctx())

    assert answer.version == 4


def test_a_gate_refusal_on_a_stale_copy_is_judged_again_on_the_store(
    services: Services, other_process: Services
) -> None:
    grouped = GroupCommit(services.app)
    journey = Journey(services.app).register()
    grouped.execute(
        c.AssignOwner.parse(
            {
                "key": journey.key,
                "role": OwnerRole.TECHNICAL,
                "person": {"id": "tess@example.com", "team": "AI platform"},
            }
        ),
        ctx(),
    )
    # Held here without a priority score; another process scores it.
    Journey(other_process.app, key=journey.key).issue(c.ScorePriority, **PRIORITY)

    moved = grouped.execute(c.AdvanceStage.parse({"key": journey.key}), ctx())

    assert moved.version == 4  # judged on the store's version 3, not refused on the copy


def test_a_refusal_on_a_current_copy_is_answered(services: Services) -> None:
    grouped = GroupCommit(services.app)
    journey = Journey(services.app).register()
    grouped.execute(_alert(journey.key, "here"), ctx())

    with pytest.raises(VersionConflict):
        grouped.execute(_alert(journey.key, "late", expected=1), ctx())
    with pytest.raises(GateBlocked) as blocked:
        grouped.execute(c.AdvanceStage.parse({"key": journey.key}), ctx())
    assert RequirementCode.PRIORITY_SCORED in [r.code for r in blocked.value.unmet]
    assert services.app.use_case(journey.key).version == 2
