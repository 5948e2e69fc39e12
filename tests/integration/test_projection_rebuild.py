"""Read side, acceptance 1: a rebuilt read model equals the live one, row for row.

A randomised (seeded) workload runs on each store while the projections are kept current the
way a server keeps them: inline after batches of commands, by the background worker, or by two
services on one database (two servers). Then every row of every read-model table is dumped,
the read models are rebuilt from the log, dumped again, and the two dumps must be equal.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

from domain import commands as c
from domain.application import Stagegate
from infra.bootstrap import Services
from infra.persistence import in_memory_env
from infra.readmodels import schema
from infra.readmodels import service as service_module
from infra.readmodels.service import ReadModelService
from tests.builders import ADMIN, Journey, ctx
from tests.integration.readside_workload import (
    Rows,
    Workload,
    WorkloadStats,
    describe_differences,
    log_event_types,
    log_notification_ids,
    positions,
    read_models_as_read,
)

CATCH_UP_WAIT = 60.0
"""Seconds a background worker gets to catch up before the test gives up (never asserted on)."""


def _rebuild(services: Services) -> Rows:
    db = services.database
    started = db.select("SELECT now() AS t")[0]["t"] if db.is_postgres else None
    services.read_models.rebuild()
    _assert_current(services)
    if started is not None:
        _assert_analysed_since(services, started)
    return read_models_as_read(services)


def _assert_analysed_since(services: Services, started: object) -> None:
    """A rebuild bulk-writes the tables; it leaves fresh planner statistics of them."""
    tables = [t for name in schema.PROJECTIONS for t in schema.tables_of(name)]
    rows = services.database.select(
        "SELECT relname FROM pg_stat_user_tables"
        " WHERE schemaname = %s AND relname = ANY(%s) AND last_analyze >= %s",
        (services.settings.postgres_schema, tables, started),
    )
    assert sorted(r["relname"] for r in rows) == sorted(tables)


def _rebuild_and_compare(services: Services, live: Rows, what: str) -> Rows:
    rebuilt = _rebuild(services)
    assert rebuilt == live, f"{what}:\n{describe_differences(live, rebuilt)}"
    return rebuilt


def _assert_current(services: Services) -> None:
    head = log_notification_ids(services.database, services.app)[-1]
    assert positions(services.database) == {name: head for name in schema.PROJECTIONS}


def _assert_covers_the_read_models(services: Services, stats: WorkloadStats, live: Rows) -> None:
    """The workload exercised what the read models hold, so equality says something."""
    events = log_notification_ids(services.database, services.app)
    types = log_event_types(services.database, services.app)
    assert stats.commands["SetPolicy"] >= 2
    assert {"retired", "scale", "measurement", "deployment", "pilot"} <= set(stats.stages_reached)
    for event_type in (
        "ReturnedToStage",
        "ChangeApproved",
        "RolledBack",
        "QualityAlertResolved",
        "InferenceCostRecorded",
        "AdoptionRecorded",
        "MeasurementRecorded",
        "ValueStated",
    ):
        assert any(t.endswith(event_type) for t in types), f"no {event_type} in the log"
    assert len(live[schema.HISTORY]) == len(events)
    assert len(live[schema.SUMMARIES]) == stats.commands["RegisterUseCase"]
    assert live[schema.UNMET], "no use case had an unmet requirement"
    assert live[schema.COSTS]
    assert live[schema.ADOPTION], "no adoption reading"
    assert len(live[schema.PERIODS]) > len(live[schema.SUMMARIES])


@pytest.mark.parametrize("seed", [13])
def test_rebuild_equals_projections_kept_current_inline(services: Services, seed: int) -> None:
    read_models = services.read_models
    workload = Workload(services.app, seed)
    stats = workload.run(500, use_cases=15, after_batch=read_models.catch_up)
    _assert_current(services)
    live = read_models_as_read(services)
    _assert_covers_the_read_models(services, stats, live)

    # Each comparison is reported, so one difference does not hide the others.
    failures = []
    rebuilt = _rebuild(services)
    if rebuilt != live:
        failures.append(f"rebuild after the workload:\n{describe_differences(live, rebuilt)}")
    again = _rebuild(services)
    if again != rebuilt:
        failures.append(f"a second rebuild:\n{describe_differences(rebuilt, again)}")

    # More events on top of the rebuilt read models, kept current inline again.
    workload.run(120, use_cases=4, after_batch=read_models.catch_up, policy_changes=1)
    _assert_current(services)
    live = read_models_as_read(services)
    assert len(live[schema.HISTORY]) > len(rebuilt[schema.HISTORY])
    rebuilt = _rebuild(services)
    if rebuilt != live:
        failures.append(f"rebuild after more events:\n{describe_differences(live, rebuilt)}")
    assert not failures, "\n".join(failures)


@pytest.mark.postgres
def test_a_large_rebuild_writes_the_history_in_a_process_of_its_own_with_the_same_rows(
    postgres_services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = postgres_services
    Workload(services.app, 7).run(200, use_cases=8, after_batch=services.read_models.catch_up)
    live = read_models_as_read(services)
    monkeypatch.setattr(service_module, "REBUILD_ELSEWHERE_FROM", 1)  # this log is "large"
    processes: list[int] = []
    elsewhere = services.read_models._rebuild_history_elsewhere
    assert elsewhere is not None

    def counted() -> int:
        processes.append(1)
        return elsewhere()

    monkeypatch.setattr(services.read_models, "_rebuild_history_elsewhere", counted)

    rebuilt = _rebuild(services)

    assert processes == [1]
    assert rebuilt == live, describe_differences(live, rebuilt)


@pytest.mark.postgres
def test_a_rebuild_may_work_between_its_statements_longer_than_the_idle_timeout(
    postgres_services: Services,
) -> None:
    """The rebuild decodes a chunk of use cases in Python between two statements of its one
    transaction; on a busy host that took over the connections' 5 s idle-in-transaction
    timeout, and PostgreSQL ended the rebuild (and ``db upgrade``) part-way."""
    services = postgres_services
    Workload(services.app, 7).run(20, use_cases=2, after_batch=services.read_models.catch_up)
    services.read_models.empty()
    seen: list[object] = []

    def rebuild(curs: Any, head: int) -> None:
        curs.execute("SHOW idle_in_transaction_session_timeout")
        seen.append(curs.fetchone()["idle_in_transaction_session_timeout"])

    services.read_models._runner("summaries").rebuild_at_once(rebuild)

    assert seen == ["2min"]
    with services.database.transaction() as curs:  # only that transaction's
        curs.execute("SHOW idle_in_transaction_session_timeout")
        assert curs.fetchone()["idle_in_transaction_session_timeout"] == "5s"


def _wait_until_current(services: Services, worker: ReadModelService) -> None:
    head = log_notification_ids(services.database, services.app)[-1]
    deadline = time.monotonic() + CATCH_UP_WAIT
    while any(runner.position() < head for runner in worker.runners):
        if time.monotonic() > deadline:
            pytest.fail(f"the background worker did not reach event {head}")
        time.sleep(0.05)


def _failed_transactions(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        f"{r.getMessage()}: {r.exc_text or ''}"
        for r in caplog.records
        if r.name.startswith("infra.readmodels") and r.levelno >= logging.ERROR
    ]


@pytest.mark.parametrize("seed", [109])
def test_rebuild_equals_projections_kept_current_by_the_background_worker(
    services: Services, seed: int, caplog: pytest.LogCaptureFixture
) -> None:
    """``serve`` keeps its read models current from a thread while commands are written."""
    caplog.set_level(logging.ERROR, logger="infra.readmodels")
    read_models = services.read_models
    seen: list[dict[str, int]] = []
    read_models.start()
    try:
        stats = Workload(services.app, seed).run(
            300, use_cases=10, after_batch=lambda: seen.append(positions(services.database))
        )
        _wait_until_current(services, read_models)
    finally:
        read_models.stop()
    assert not _failed_transactions(caplog)
    assert any(p["summaries"] > 0 for p in seen[:-1]), "the worker did nothing during the workload"
    assert read_models.catch_up() == 0
    live = read_models_as_read(services)
    _assert_covers_the_read_models(services, stats, live)
    _rebuild_and_compare(services, live, "rebuild after the background worker")


@pytest.mark.parametrize("seed", [101])
def test_rebuild_equals_projections_kept_current_by_two_services(
    services: Services, seed: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Two servers on one database: one projects after its writes, the other in the background.

    Each service holds its own cache of use cases; whichever moved the position last, the
    other must notice its cache is stale and not apply an event on top of an old summary.
    """
    caplog.set_level(logging.ERROR, logger="infra.readmodels")
    other = ReadModelService(services.database, services.app)
    other.start()
    try:
        stats = Workload(services.app, seed).run(
            300, use_cases=10, after_batch=services.read_models.catch_up, batch_size=(1, 25)
        )
        _wait_until_current(services, other)
    finally:
        other.stop()
    assert not _failed_transactions(caplog)
    assert services.read_models.catch_up() == 0
    _assert_current(services)
    live = read_models_as_read(services)
    _assert_covers_the_read_models(services, stats, live)
    _rebuild_and_compare(services, live, "rebuild after two services kept the read models")


def test_rebuild_equals_live_when_the_policy_changes_after_a_retirement(
    services: Services,
) -> None:
    """The smallest case of what the randomised workloads run into.

    Live, a policy change re-judges every summary except the retired ones, which keep the
    policy version they were last written under; a rebuild projects the whole log in one
    transaction and writes every summary, retired ones included, under the final policy.
    """
    read_models = services.read_models
    retired = Journey(services.app).register()
    retired.issue(c.Retire, reason="No longer a priority.")
    Journey(services.app).register()
    read_models.catch_up()
    services.app.set_policy(c.SetPolicy.parse({"min_adoption": 0.6}), ctx(ADMIN))
    read_models.catch_up()
    live = read_models_as_read(services)
    _rebuild_and_compare(services, live, "rebuild after a policy change that followed a retirement")


def test_the_workload_is_reproducible_from_its_seed() -> None:
    """The same seed writes the same log (use case, version, event type), another seed not."""

    def log_of(seed: int) -> list[tuple[str, int, str]]:
        app = Stagegate(in_memory_env(), snapshot_interval=10)
        try:
            Workload(app, seed).run(250, use_cases=8)
            return [
                (str(n.originator_id), n.originator_version, n.topic)
                for n in app.recorder.select_notifications(start=1, limit=10_000)
            ]
        finally:
            app.close()

    first = log_of(3)
    assert len(first) >= 250
    assert log_of(3) == first
    assert log_of(4) != first
