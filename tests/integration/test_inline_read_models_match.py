"""The SQL read models each append writes equal what ``projections.appended`` says they gain,
as an in-memory view keeps it: the SQL view is that function's rows, on both stores."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
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
    # Two readings, the later one measured first: the series is in measuring order.
    now = datetime.now(UTC)
    for active, measured_at in ((30, now - timedelta(days=1)), (20, now - timedelta(days=2))):
        journeys[2].issue(
            c.RecordAdoption, active_users=active, target_users=50, measured_at=measured_at
        )
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

    ids = [str(app.use_case(journey.key).id) for journey in journeys]
    series = services.read_models.adoption_series(ids, 100, None)
    stored_readings = sorted(
        (use_case_id, r.version, r.active_users, r.target_users, r.measured_at)
        for use_case_id, page in series.items()
        for r in page.items
    )
    projected_readings = sorted(
        (use_case_id, version, a.active_users, a.target_users, a.measured_at)
        for use_case_id, version, a in view.adoption.values()
    )
    assert len(projected_readings) == 2
    assert stored_readings == projected_readings
    assert [r.active_users for r in series[ids[2]].items] == [20, 30]
