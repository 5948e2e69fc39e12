"""The chain's previous hashes are read by primary key, whatever PostgreSQL's statistics say.

psycopg prepares a statement once it has run five times, and PostgreSQL may then keep a
generic plan, costed on the table's statistics: on a table never analysed (autovacuum off), a
join of the keys against the hashes became a sequential scan of every hash, per append."""

from __future__ import annotations

import json
from typing import Any

from psycopg.sql import SQL, Literal

from domain import commands as c
from domain.usecase.aggregate import use_case_id as id_of
from infra.bootstrap import Services
from infra.recorders import StagegatePostgresRecorder
from tests.builders import PRIORITY, Journey, ctx


def _scans(plan: dict[str, Any]) -> list[tuple[str, str]]:
    """(node type, relation) of every node of an EXPLAIN (FORMAT JSON) plan."""
    found = [(plan["Node Type"], plan.get("Relation Name", ""))]
    for child in plan.get("Plans", []):
        found += _scans(child)
    return found


def test_the_generic_plan_reads_each_previous_hash_by_its_key(
    postgres_services: Services,
) -> None:
    journey = Journey(postgres_services.app).register()
    for _ in range(3):
        postgres_services.app.execute(
            c.ScorePriority.parse({"key": journey.key, **PRIORITY}), ctx()
        )
    recorder = postgres_services.app.recorder
    assert isinstance(recorder, StagegatePostgresRecorder)
    use_case_id = str(id_of(journey.key))
    question = recorder.hash_question.replace("%s", "$1", 1).replace("%s", "$2", 1)
    with recorder.datastore.get_connection() as conn:
        conn.execute("SET plan_cache_mode = force_generic_plan")
        conn.execute(SQL("PREPARE hash_question (uuid[], bigint[]) AS ") + SQL(question))  # type: ignore[arg-type]
        keys = Literal([use_case_id, use_case_id]), Literal([2, 99])
        explain = SQL("EXPLAIN (FORMAT JSON) EXECUTE hash_question ({}, {})").format(*keys)
        row = conn.execute(explain).fetchone()
        assert row is not None
        plan = row["QUERY PLAN"]
        answer = conn.execute(SQL("EXECUTE hash_question ({}, {})").format(*keys)).fetchall()
        conn.execute("DEALLOCATE hash_question")
        conn.rollback()
    document = plan if isinstance(plan, list) else json.loads(plan)
    scans = _scans(document[0]["Plan"])
    hashes = [node for node in scans if node[1] == "stagegate_event_hashes"]
    assert hashes, scans
    assert all(kind.startswith("Index") for kind, _ in hashes), scans
    # The stored version is found; the version that does not exist is left out, not NULL.
    assert [(str(row["originator_id"]), row["originator_version"]) for row in answer] == [
        (use_case_id, 2)
    ]
