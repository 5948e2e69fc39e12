"""Group commit (``infra.group_commit``): commands arriving together commit together, each
caller gets its own answer, and one command's refusal or conflict fails only that command."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from domain import commands as c
from domain.application import BatchItem, BatchOutcome
from domain.errors import DomainError, GateBlocked, VersionConflict
from domain.usecase import UseCase
from infra.bootstrap import Services, bootstrap
from infra.group_commit import GroupCommit
from infra.settings import Settings
from tests.builders import Journey, ctx

CLIENTS = 12


def _alert(key: str, n: int, expected: int | None = None) -> c.RaiseQualityAlert:
    fields: dict[str, Any] = {
        "key": key,
        "alertId": f"alert-{n}",
        "severity": "low",
        "description": "drift",
    }
    if expected is not None:
        fields["expectedVersion"] = expected
    return c.RaiseQualityAlert.parse(fields)


def _held_first_commit(
    services: Services, grouped: GroupCommit, others: int
) -> tuple[list[int], Callable[[], None]]:
    """Holds the first group's commit until ``others`` commands wait behind it, so they
    must form the next group; returns the sizes of the groups committed."""
    sizes: list[int] = []
    real = services.app.execute_batch

    def execute_batch(items: list[BatchItem]) -> list[BatchOutcome]:
        if not sizes:
            deadline = time.monotonic() + 10
            while len(grouped._queue) < others and time.monotonic() < deadline:
                time.sleep(0.005)
        sizes.append(len(items))
        return real(items)

    services.app.execute_batch = execute_batch  # type: ignore[method-assign]

    def undo() -> None:
        del services.app.execute_batch

    return sizes, undo


def _run_together(
    commands: list[c.Command], grouped: GroupCommit, *, in_order: bool = False
) -> list[UseCase | DomainError]:
    """The first command leads; the rest arrive while it commits. ``in_order``: each of the
    rest arrives only once the one before waits in the queue (threads started one after
    another may otherwise reach it in any order)."""

    def run(command: c.Command) -> UseCase | DomainError:
        try:
            return grouped.execute(command, ctx())
        except DomainError as error:
            return error

    with ThreadPoolExecutor(max_workers=len(commands)) as pool:
        first = pool.submit(run, commands[0])
        time.sleep(0.05)
        rest = []
        for waiting, command in enumerate(commands[1:], start=1):
            rest.append(pool.submit(run, command))
            deadline = time.monotonic() + 10
            while in_order and len(grouped._queue) < waiting and time.monotonic() < deadline:
                time.sleep(0.001)
        return [first.result(), *(future.result() for future in rest)]


def test_commands_arriving_during_a_commit_are_committed_together_each_answered(
    services: Services,
) -> None:
    journey = Journey(services.app).register()
    grouped = GroupCommit(services.app)
    sizes, undo = _held_first_commit(services, grouped, CLIENTS - 1)
    try:
        answers = _run_together([_alert(journey.key, n) for n in range(CLIENTS)], grouped)
    finally:
        undo()

    assert sizes == [1, CLIENTS - 1]
    assert all(isinstance(answer, UseCase) for answer in answers), answers
    versions = [answer.version for answer in answers if isinstance(answer, UseCase)]
    assert sorted(versions) == list(range(2, CLIENTS + 2))
    # Each answer is the use case as its own command left it, in the order they committed.
    for answer in answers:
        assert isinstance(answer, UseCase)
        assert len(answer.state.open_quality_alerts) == answer.version - 1
    stored = services.app.use_case(journey.key)
    assert stored.version == CLIENTS + 1
    assert sorted(stored.state.open_quality_alerts) == sorted(f"alert-{n}" for n in range(CLIENTS))
    page = services.read_models.history(str(stored.id), 100, None)
    assert [entry.version for entry in page.items] == list(range(1, CLIENTS + 2))


def test_a_refusal_or_a_conflict_in_a_group_fails_only_its_own_command(
    services: Services,
) -> None:
    journey = Journey(services.app).register()
    blocked = Journey(services.app).register()
    grouped = GroupCommit(services.app)
    commands: list[c.Command] = [
        _alert(journey.key, 0),
        _alert(journey.key, 1, expected=2),  # right, once the first committed
        c.AdvanceStage.parse({"key": blocked.key}),  # unscored: the gate refuses it
        _alert(journey.key, 2, expected=2),  # the same expectation, too late: a conflict
        _alert(journey.key, 3),
    ]
    sizes, undo = _held_first_commit(services, grouped, len(commands) - 1)
    try:
        first, expected, refused, conflict, last = _run_together(commands, grouped, in_order=True)
    finally:
        undo()

    assert sizes == [1, 4]
    assert isinstance(first, UseCase)
    assert first.version == 2
    assert isinstance(refused, GateBlocked)
    assert isinstance(conflict, VersionConflict)
    assert isinstance(expected, UseCase)
    assert isinstance(last, UseCase)
    assert sorted([expected.version, last.version]) == [3, 4]
    stored = services.app.use_case(journey.key)
    assert sorted(stored.state.open_quality_alerts) == ["alert-0", "alert-1", "alert-3"]
    assert services.app.use_case(blocked.key).version == 1


def test_a_group_that_loses_a_race_with_another_process_is_run_one_by_one(
    services: Services, settings: Settings
) -> None:
    journey = Journey(services.app).register()
    other_process = bootstrap(settings)
    grouped = GroupCommit(services.app)
    source = services.app.use_case_source
    real = source.check_out
    raced: list[str] = []

    def check_out(keys: Sequence[str]) -> dict[str, UseCase]:
        found = real(keys)
        if not raced:  # another process appends between this group's read and its write
            raced.append("raced")
            Journey(other_process.app, key=journey.key).issue(
                c.RaiseQualityAlert, alertId="elsewhere", severity="low", description="drift"
            )
        return found

    source.check_out = check_out  # type: ignore[method-assign]
    try:
        answer = grouped.execute(_alert(journey.key, 0), ctx())
    finally:
        del source.check_out
        other_process.close()

    assert raced == ["raced"]
    assert isinstance(answer, UseCase)
    assert answer.version == 3
    assert sorted(services.app.use_case(journey.key).state.open_quality_alerts) == [
        "alert-0",
        "elsewhere",
    ]
