"""``projections.appended``: what the read models gain from each append, on an in-memory view.

The same function writes the SQL read models in each append's transaction
(``infra.readmodels.inline``); here it runs against plain collections, on the in-memory
store, with nothing else.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from domain import clock
from domain.application import Stagegate
from domain.gates import gate_status
from domain.policy import POLICY_ID
from domain.values import Stage
from infra.persistence import in_memory_env
from projections.appended import InMemoryView, project_append
from tests.builders import Journey


@pytest.fixture
def projected() -> tuple[Stagegate, InMemoryView]:
    """An in-memory application whose every append is projected into an ``InMemoryView``."""
    app = Stagegate(in_memory_env())
    view = InMemoryView()
    numbers = iter(range(1, 1_000_000))
    record = app._record

    def record_and_project(processing_event: Any) -> Any:
        recordings = record(processing_event)
        stored = [app.mapper.to_stored_event(event) for event in processing_event.events]
        project_append(
            view,
            [next(numbers) for _ in stored],
            stored,
            processing_event.events,
            {i: a for i, a in processing_event.aggregates.items() if i != POLICY_ID},
            app.policy(),
        )
        return recordings

    app._record = record_and_project  # type: ignore[method-assign]
    return app, view


def test_every_append_projects_its_summary_history_periods_and_costs(
    projected: tuple[Stagegate, InMemoryView],
) -> None:
    app, view = projected
    journey = Journey(app).register()
    journey.report_cost()
    journey.reach(Stage.ACCEPTANCE)
    use_case = app.use_case(journey.key)

    summary = view.summaries[str(use_case.id)]
    assert (summary.key, summary.stage, summary.version) == (
        journey.key,
        "acceptance",
        use_case.version,
    )
    gate = gate_status(use_case.state, app.policy(), clock.now())
    assert summary.unmet_codes == tuple(r.code.value for r in gate.unmet)

    entries = [entry for entry in view.history if entry.aggregate_id == str(use_case.id)]
    assert [entry.version for entry in entries] == list(range(1, use_case.version + 1))
    assert entries[0].event_type == "Registered"
    assert entries[1].event_type == "InferenceCostRecorded"

    stages = [(stage, left is None) for stage, _, left in view.periods[str(use_case.id)]]
    assert stages == [("proposed", False), ("pilot", False), ("acceptance", True)]
    [(cost_use_case, cost)] = view.costs.values()
    assert (cost_use_case, cost.amount, cost.currency) == (
        str(use_case.id),
        Decimal("12.50"),
        "EUR",
    )
