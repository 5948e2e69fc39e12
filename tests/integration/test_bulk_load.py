"""Loading many use cases at once (how a batch of posted events loads them) equals loading
each on its own: with and without snapshots, past a snapshot, and skipping unknown keys."""

from __future__ import annotations

from domain import commands as c
from domain.application import Accepted, BatchItem
from domain.metadata import Actor
from domain.usecase import use_case_id
from domain.values import Role, Stage
from infra.bootstrap import Services
from tests.builders import Journey, ctx, unique_key


def test_many_at_once_equals_one_by_one(services: Services) -> None:
    app = services.app
    fresh = Journey(app).register()
    in_pilot = Journey(app).register().reach(Stage.PILOT)
    in_deployment = Journey(app).register().reach(Stage.DEPLOYMENT)
    journeys = [fresh, in_pilot, in_deployment]
    assert app.snapshots is not None
    assert list(app.snapshots.get(use_case_id(in_deployment.key))), "no snapshot to start from"
    missing = unique_key()

    found = services.app.use_case_source.check_out([j.key for j in journeys] + [missing, fresh.key])

    assert set(found) == {j.key for j in journeys}
    for journey in journeys:
        alone = app.use_case(journey.key)
        assert (found[journey.key].version, found[journey.key].state) == (
            alone.version,
            alone.state,
        )


def _adoption(key: str, active: int) -> BatchItem:
    command = c.RecordAdoption(key=key, active_users=active, target_users=50)
    return BatchItem(key=key, command=lambda _state: command, ctx=ctx())


def test_a_batch_builds_on_writes_made_since_the_last_batch(services: Services) -> None:
    """Batches keep the use cases they saved for the next batch; a write made meanwhile by
    another path (or another server) is read before the next batch applies its own."""
    app = services.app
    journey = Journey(app).register()
    [first] = app.execute_batch([_adoption(journey.key, 10)])
    assert isinstance(first, Accepted)
    app.execute(c.RecordAdoption(key=journey.key, active_users=20, target_users=50), ctx())

    [second] = app.execute_batch([_adoption(journey.key, 30)])

    assert isinstance(second, Accepted)
    assert second.version == first.version + 2
    stored = app.use_case(journey.key)
    assert stored.version == second.version
    assert stored.state.latest_adoption is not None
    assert stored.state.latest_adoption.active_users == 30


def test_a_refused_item_leaves_no_trace_on_the_next_batch(services: Services) -> None:
    app = services.app
    journey = Journey(app).register()
    refused = BatchItem(
        key=journey.key,
        command=lambda _state: c.RecordAdoption(key=journey.key, active_users=1, target_users=1),
        ctx=ctx(Actor(id="reader@example.com", role=Role.VIEWER)),
    )
    outcomes = app.execute_batch([_adoption(journey.key, 10), refused])
    assert isinstance(outcomes[0], Accepted)
    assert not isinstance(outcomes[1], Accepted)

    [after] = app.execute_batch([_adoption(journey.key, 40)])

    assert isinstance(after, Accepted)
    stored = app.use_case(journey.key)
    assert (stored.version, stored.state.latest_adoption.active_users) == (after.version, 40)  # type: ignore[union-attr]
