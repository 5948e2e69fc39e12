"""The read-model rows an append writes with its events (``infra.readmodels.inline``): a row
the database refuses never costs the command; the runners write it later, or set it aside."""

from __future__ import annotations

from typing import Any

import pytest

from domain import commands as c
from domain.usecase import use_case_id
from infra.bootstrap import Services
from infra.readmodels.inline import InlineReadModels
from infra.readmodels.schema import SUMMARIES
from tests.builders import PRIORITY, Journey


def test_a_read_model_row_the_database_refuses_does_not_cost_the_command(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    journey = Journey(services.app).register()
    real = InlineReadModels._write
    table = services.database.table(SUMMARIES)

    def refused(self: InlineReadModels, curs: Any, *args: Any) -> None:
        real(self, curs, *args)
        curs.execute(f"INSERT INTO {table} (id) VALUES (NULL)")  # NOT NULL: refused

    monkeypatch.setattr(InlineReadModels, "_write", refused)
    scored = journey.issue(c.ScorePriority, **PRIORITY)
    monkeypatch.undo()

    assert scored.version == 2
    assert services.app.use_case(journey.key).version == 2  # the events committed
    services.read_models.refresh()  # the append left its rows to the runners
    history = services.read_models.history(str(use_case_id(journey.key)), 10, None)
    assert [entry.version for entry in history.items] == [1, 2]
    assert services.read_models.projection_faults() == (0, [])
