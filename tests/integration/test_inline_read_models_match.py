"""The SQL read models each append writes equal what ``projections.appended`` says they gain,
as an in-memory view keeps it: the SQL view is that function's rows, on both stores."""

from __future__ import annotations

import dataclasses
from typing import Any

from domain import commands as c
from domain.policy import POLICY_ID
from domain.state import UseCaseState
from domain.values import Stage
from infra.bootstrap import Services
from projections.appended import InMemoryView, project_append
from projections.readmodels import UseCaseFilter
from tests.builders import PRIORITY, Journey


def test_the_rows_written_with_each_append_are_the_projection_of_it(services: Services) -> None:
    app = services.app
    view = InMemoryView()
    record = app._record

    def record_and_project(processing_event: Any) -> Any:
        recordings = record(processing_event)
        project_append(
            view,
            [recording.notification.id for recording in recordings],
            [app.mapper.to_stored_event(event) for event in processing_event.events],
            processing_event.events,
            {i: a for i, a in processing_event.aggregates.items() if i != POLICY_ID},
            app.policy(),
        )
        return recordings

    app._record = record_and_project  # type: ignore[method-assign]
    journeys = [Journey(app).register() for _ in range(3)]
    journeys[0].reach(Stage.DEPLOYMENT)
    journeys[1].issue(c.ScorePriority, **PRIORITY)
    journeys[2].report_cost("7.25")
    services.read_models.refresh()

    records = services.read_models.use_cases(UseCaseFilter(), 100, None).items
    assert {r.id: (r.version, r.state) for r in records} == {
        s.id: (s.version, UseCaseState.model_validate_json(s.state_json))
        for s in view.summaries.values()
    }
    for journey in journeys:
        use_case_id = str(app.use_case(journey.key).id)
        stored = services.read_models.history(use_case_id, 1000, None).items
        projected = [e for e in view.history if e.aggregate_id == use_case_id]
        assert [dataclasses.astuple(e) for e in stored] == [
            dataclasses.astuple(e) for e in projected
        ]
