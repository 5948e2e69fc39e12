"""On PostgreSQL the database writes the history rows from the stored JSON; they must be the
rows Python writes from the decoded events (as it does on SQLite), column for column."""

from __future__ import annotations

import pytest

from infra.bootstrap import bootstrap
from infra.readmodels import schema
from infra.settings import Settings
from tests.integration.readside_workload import Workload, dump_read_models


@pytest.mark.postgres
def test_history_written_by_the_database_equals_history_written_by_python(
    postgres_settings: Settings,
) -> None:
    services = bootstrap(postgres_settings)
    try:
        stats = Workload(services.app, seed=41).run(300, use_cases=10)
        # Events with a business time, nested (a measurement) and not (a rollback).
        assert stats.commands["RecordMeasurement"]
        assert stats.commands["RollBack"]
        [history_runner] = [r for r in services.read_models.runners if r.name == "history"]
        assert history_runner.projection.in_database  # type: ignore[attr-defined]
        services.read_models.catch_up()
        by_database = dump_read_models(services.database)[schema.HISTORY]

        db = services.database
        with db.transaction() as curs:
            curs.execute(f"DELETE FROM {db.table(schema.HISTORY)}")
            curs.execute(
                f"UPDATE {db.table(schema.POSITIONS)} SET position = 0 WHERE projection = 'history'"
            )
        history_runner._in_database = False  # the SQLite path: decoded events, rows from Python
        history_runner.catch_up()
        by_python = dump_read_models(services.database)[schema.HISTORY]
    finally:
        services.close()

    assert len(by_database) == len(by_python) >= 300
    assert any(dict(row)["business_time"] is not None for row in by_python)
    assert by_database == by_python
