"""The read-model rows an append writes with its events (``infra.readmodels.inline``): a row
the database refuses never costs the command; the runners write it later, or set it aside."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from domain import commands as c
from domain.usecase import use_case_id
from infra import database
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


def test_a_runner_with_nothing_to_project_takes_no_lock_and_writes_nothing(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every append writes its own rows, so the background runner, which asks several times
    a second, usually finds nothing: it must not then lock the position row each append
    locks (nor, on SQLite, take the database's write lock and sync the file)."""
    journey = Journey(services.app).register()
    journey.issue(c.ScorePriority, **PRIORITY)
    services.read_models.catch_up()
    sent: list[str] = []
    for cursor_class in (psycopg.Cursor, database.SQLiteCursor):
        execute = cursor_class.execute

        def counted(self: Any, query: Any, *args: Any, _execute: Any = execute) -> Any:
            sent.append(str(query))
            return _execute(self, query, *args)

        monkeypatch.setattr(cursor_class, "execute", counted)

    assert [runner.run_transaction() for runner in services.read_models.runners] == [0, 0]

    assert len(sent) == 2, sent  # one look at the log per runner
    assert not [sql for sql in sent if "UPDATE" in sql.upper()], sent
