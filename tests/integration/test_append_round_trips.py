"""What a command costs in round trips to PostgreSQL, once its use case is held: its append
alone, one transaction in two exchanges (the statements up to the events' insert, whose
notification ids the rest needs; then the rest and the COMMIT). Round trips, not time: each
is a wait for the server, which bounds a sequential client however fast the rest becomes."""

from __future__ import annotations

from typing import Any

import psycopg._pipeline_base
import pytest

from domain import commands as c
from infra.bootstrap import Services
from infra.group_commit import GroupCommit
from tests.builders import PRIORITY, Journey, ctx


def test_a_command_on_a_held_use_case_is_its_append_in_two_round_trips(
    postgres_services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    grouped = GroupCommit(postgres_services.app)
    journey = Journey(postgres_services.app).register()
    grouped.execute(c.ScorePriority.parse({"key": journey.key, **PRIORITY}), ctx())
    exchanges: list[str] = []
    statements: list[str] = []
    # psycopg's pipeline ends each exchange with a Sync and waits for everything up to it:
    # in ``sync()``, and as a pipeline block (a nested one too) is left.
    pipeline = psycopg._pipeline_base.BasePipeline
    sync, leave = pipeline._sync_gen, pipeline._exit_gen

    def counted(kind: str, exchange: Any) -> Any:
        def run(self: Any) -> Any:
            exchanges.append(kind)
            return (yield from exchange(self))

        return run

    execute = psycopg.Cursor.execute

    def counted_statement(self: psycopg.Cursor[Any], *args: Any, **kwargs: Any) -> Any:
        if self.connection._pipeline is None:
            statements.append("outside a pipeline")  # an exchange of its own
        return execute(self, *args, **kwargs)

    monkeypatch.setattr(pipeline, "_sync_gen", counted("sync", sync))
    monkeypatch.setattr(pipeline, "_exit_gen", counted("end of a pipeline block", leave))
    monkeypatch.setattr(psycopg.Cursor, "execute", counted_statement)

    answer = grouped.execute(c.ScorePriority.parse({"key": journey.key, **PRIORITY}), ctx())

    assert answer.version == 3
    assert statements == []  # no read before the append: the use case and policy are held
    # The statements up to the events' insert; then the rest and the COMMIT. (psycopg's own
    # ``transaction()`` in a pipeline adds an exchange for its BEGIN, and one for each of the
    # pipeline blocks it opens.)
    assert exchanges == ["sync", "end of a pipeline block"]


def test_the_rows_written_after_the_events_go_in_three_statements(
    postgres_services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the events' insert: their hashes, with the NOTIFY that wakes followers of the
    log; the history, summary and the deletion of its child rows; its unmet codes and the
    projections' positions (the unmet codes' second write to their table starts a
    statement). Eight statements, before the writes were sent together."""
    grouped = GroupCommit(postgres_services.app)
    journey = Journey(postgres_services.app).register()
    grouped.execute(c.ScorePriority.parse({"key": journey.key, **PRIORITY}), ctx())
    statements: list[str] = []
    execute = psycopg.Cursor.execute

    def recorded(self: psycopg.Cursor[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
        text = query if isinstance(query, str) else query.as_string(self.connection)
        statements.append(" ".join(text.split()))
        return execute(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", recorded)
    grouped.execute(c.ScorePriority.parse({"key": journey.key, **PRIORITY}), ctx())
    monkeypatch.undo()

    events = next(i for i, s in enumerate(statements) if "INSERT INTO" in s and "_events" in s)
    after = statements[events + 1 :]
    assert len(after) == 3, after
    assert after[0].startswith("WITH ")
    assert "stagegate_event_hashes" in after[0]
    assert after[0].endswith("SELECT pg_notify(%s, %s)")
    assert after[1].startswith("WITH ")
    for table in ("stagegate_history", "stagegate_use_case_summaries", "DELETE FROM"):
        assert table in after[1]
    assert after[2].startswith("WITH ")
    assert 'stagegate_use_case_unmet" (use_case_id, code)' in after[2]
    assert "stagegate_projection_positions" in after[2]
