"""Read side, acceptance 2: a projection killed anywhere resumes with no gap and no duplicate.

In process, on both stores: in at least 50 seeded trials a projection worker crashes (an
exception from its ``fault`` hook) before its write, after a page, after its writes before the
commit, or between transactions; it is restarted (a fresh ``ReadModelService`` with empty
caches, as a restarted process has, or the same one, as ``run_forever`` retries) and catches
up. Small, random transaction and page sizes put crashes between batches as well as inside
them. After each trial the read models must equal a clean rebuild row for row, history must
hold exactly one row per event, and every position must be at the head of the log.

On PostgreSQL, with real processes: ``stagegate projections run`` is SIGKILLed at random
moments while it projects a log of a few thousand events, restarted until it has caught up,
and compared with a rebuild; and two workers for the same projections run side by side
(processes, and threads with separate services) and never both apply an event.
"""

from __future__ import annotations

import logging
import os
import random
import select
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from domain import commands as c
from infra.bootstrap import Services, bootstrap
from infra.database import Cursor
from infra.readmodels import schema
from infra.readmodels.runner import LoggedEvent, ProjectionRunner
from infra.readmodels.service import ReadModelService
from infra.settings import Settings
from tests.builders import PRIORITY, Journey
from tests.integration.readside_workload import (
    Rows,
    Workload,
    describe_differences,
    dump_read_models,
    log_notification_ids,
    positions,
    reset_read_models,
)
from tests.lagging import left_to_the_runners

POINTS = ("before-write", "after-page", "before-commit", "after-commit")
CRASHED_TRIALS = 50
KILLS = 10
WAIT = 60.0
REPOSITORY = Path(__file__).resolve().parents[2]
"""Seconds a worker gets to do what it must before the test gives up (never asserted on)."""


class SimulatedCrash(BaseException):
    """Raised by the fault hook: the worker dies at that point of its transaction.

    A BaseException, as a kill is: not an error of an event that the runner would set aside.
    """


@dataclass
class CrashPlan:
    """A fault hook that crashes at the ``after``-th time ``point`` is reached."""

    point: str
    after: int
    seen: Counter[str] = field(default_factory=Counter)
    fired: bool = False

    def __call__(self, point: str) -> None:
        self.seen[point] += 1
        if not self.fired and point == self.point and self.seen[point] == self.after:
            self.fired = True
            raise SimulatedCrash(f"crash at {point} #{self.after}")


def _build_log(services: Services, seed: int, commands: int) -> None:
    """A workload whose policy changes all come before its first retirement.

    Retired use cases are not re-judged when the policy changes later (see
    ``test_rebuild_equals_live_when_the_policy_changes_after_a_retirement``); keeping that
    case out of these logs keeps the failures here about crashes only.
    """
    workload = Workload(services.app, seed, key_prefix="crash")
    first = commands * 2 // 3
    workload.run(first, use_cases=max(commands // 40, 4), retirements=False)
    workload.run(commands - first, use_cases=2, policy_changes=0)


def _check_exactly_once(services: Services, reference: Rows, what: str) -> None:
    """No event missed, none applied twice: history, positions and every row as rebuilt."""
    log = log_notification_ids(services.database, services.app)
    actual = dump_read_models(services.database)
    history = [dict(row)["notification_id"] for row in actual[schema.HISTORY]]
    assert sorted(history) == log, f"{what}: history is not one row per event"
    assert positions(services.database) == {name: log[-1] for name in schema.PROJECTIONS}, what
    assert actual == reference, f"{what}:\n{describe_differences(reference, actual)}"


def _drive(worker: ReadModelService, rng: random.Random) -> None:
    """Run the worker's projections in small random transactions until there is nothing left."""
    while True:
        runners = list(worker.runners)
        rng.shuffle(runners)
        done = 0
        for runner in runners:
            done += runner.run_transaction(
                max_events=rng.randint(1, 80), page_size=rng.randint(1, 25)
            )
        if done == 0:
            return


def _run_each(worker: ReadModelService, max_events: int, page_size: int) -> None:
    for runner in worker.runners:
        runner.run_transaction(max_events=max_events, page_size=page_size)


# --- in process, both stores ------------------------------------------------------------------


def test_a_projection_crashed_anywhere_and_restarted_applies_every_event_once(
    services: Services,
) -> None:
    _build_log(services, seed=5, commands=220)
    db, app = services.database, services.app
    log = log_notification_ids(db, app)
    services.read_models.rebuild()
    reference = dump_read_models(db)
    assert len(reference[schema.HISTORY]) == len(log) > 200

    crashes: Counter[str] = Counter()
    crashed_trials = trial = 0
    while crashed_trials < CRASHED_TRIALS:  # trials whose hook fired too late do not count
        trial += 1
        assert trial < CRASHED_TRIALS * 2, f"only {crashed_trials} of {trial} trials crashed"
        rng = random.Random(trial)
        reset_read_models(db)
        start = rng.randint(0, len(log) - 1)
        if start:  # a clean worker got this far first, in one transaction per projection
            clean = ReadModelService(db, app)
            for runner in clean.runners:
                runner.run_transaction(max_events=start, page_size=rng.randint(50, 1000))
        worker: ReadModelService | None = None
        crashed = False
        for _ in range(rng.randint(1, 3)):
            plan = CrashPlan(rng.choice(POINTS), after=rng.randint(1, 8))
            if worker is None or rng.random() < 0.7:
                worker = ReadModelService(db, app, fault=plan)  # a restarted process
            else:  # the same process carries on after the failed transaction
                for runner in worker.runners:
                    runner.fault = plan
            try:
                _drive(worker, rng)
            except SimulatedCrash:
                crashes[plan.point] += 1
                crashed = True
        crashed_trials += crashed
        restarted = ReadModelService(db, app)
        restarted.catch_up()
        _check_exactly_once(services, reference, f"trial {trial} (start at {start})")

    assert all(crashes[point] >= 10 for point in POINTS), crashes


def test_a_crash_mid_transaction_writes_nothing_and_keeps_the_position(
    services: Services,
) -> None:
    """Directly: whatever a crashed transaction wrote is gone, and the position did not move."""
    _build_log(services, seed=6, commands=90)
    db, app = services.database, services.app
    reset_read_models(db)
    # The second page of the first transaction, or the first commit.
    for point, after in (("before-write", 2), ("after-page", 2), ("before-commit", 1)):
        worker = ReadModelService(db, app, fault=CrashPlan(point, after=after))
        with pytest.raises(SimulatedCrash):
            _run_each(worker, max_events=60, page_size=20)
        assert positions(db) == {name: 0 for name in schema.PROJECTIONS}
        assert all(not rows for rows in dump_read_models(db).values())
    worker = ReadModelService(db, app, fault=CrashPlan("after-commit", after=1))
    with pytest.raises(SimulatedCrash):
        worker.runners[0].run_transaction(max_events=60, page_size=20)
    assert positions(db)[worker.runners[0].name] == log_notification_ids(db, app)[59]


# --- real processes, PostgreSQL ---------------------------------------------------------------


@dataclass
class BigLog:
    services: Services
    reference: Rows
    """The read models as a clean rebuild makes them."""


@pytest.fixture(scope="module")
def big_log(postgres_database_url: str) -> Iterator[BigLog]:
    """A few thousand events on PostgreSQL, shared by the process tests of this module."""
    settings = Settings(
        database_url=postgres_database_url,
        postgres_schema=f"crash_{uuid.uuid4().hex[:12]}",
        postgres_pool_size=4,
        postgres_max_overflow=8,
    )
    services = bootstrap(settings)
    _build_log(services, seed=77, commands=2000)
    services.read_models.rebuild()
    yield BigLog(services, dump_read_models(services.database))
    services.close()


class Worker:
    """``stagegate projections run`` as a separate process on the same database."""

    def __init__(self, settings: Settings) -> None:
        env = {
            **os.environ,
            "STAGEGATE_DATABASE_URL": settings.database_url,
            "STAGEGATE_POSTGRES_SCHEMA": settings.postgres_schema,
            "STAGEGATE_PROJECTIONS": "external",
            "PYTHONUNBUFFERED": "1",
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "infra.cli", "projections", "run", "--poll", "0.05"],
            env=env,
            cwd=REPOSITORY,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.output = b""

    def wait_until_projecting(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        deadline = time.monotonic() + WAIT
        while b"projecting events" not in self.output:
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.kill()
                pytest.fail(f"the worker did not start:\n{self.output.decode()}")
            ready, _, _ = select.select([stdout], [], [], 0.1)
            if ready:
                self.output += os.read(stdout.fileno(), 65536)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self._finish()

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self._finish()

    def _finish(self) -> int:
        out, _ = self.process.communicate(timeout=WAIT)
        self.output += out
        return self.process.returncode

    def failures(self) -> list[str]:
        return [
            line
            for line in self.output.decode(errors="replace").splitlines()
            if "ERROR" in line or "Traceback" in line
        ]


def _wait_until_current(services: Services) -> None:
    head = log_notification_ids(services.database, services.app)[-1]
    deadline = time.monotonic() + WAIT
    while min(positions(services.database).values()) < head:
        if time.monotonic() > deadline:
            pytest.fail(f"the workers did not reach event {head}: {positions(services.database)}")
        time.sleep(0.05)


@pytest.fixture
def spawn(big_log: BigLog) -> Iterator[Callable[[], Worker]]:
    """Start worker processes on the big log; any still running at the end are killed."""
    workers: list[Worker] = []

    def start() -> Worker:
        workers.append(Worker(big_log.services.settings))
        return workers[-1]

    yield start
    for worker in workers:
        if worker.process.poll() is None:
            worker.kill()


@pytest.mark.postgres
def test_a_worker_process_killed_at_random_and_restarted_applies_every_event_once(
    big_log: BigLog, spawn: Callable[[], Worker]
) -> None:
    services = big_log.services
    db = services.database
    reset_read_models(db)
    rng = random.Random(2024)
    head = log_notification_ids(db, services.app)[-1]
    assert head >= 2000

    # How long a worker takes to project the whole log here: kills are timed within it.
    worker = spawn()
    worker.wait_until_projecting()
    started = time.monotonic()
    _wait_until_current(services)
    catch_up_seconds = time.monotonic() - started
    assert worker.stop() == 0, worker.output.decode()
    reset_read_models(db)

    # Kill until KILLS kills have hit a worker with work left (a kill of a worker that had
    # caught up already proves little); the read models start over once caught up.
    kills = killed_with_work_left = 0
    while killed_with_work_left < KILLS:
        assert kills < KILLS * 3, f"only {killed_with_work_left} of {kills} kills hit work"
        if min(positions(db).values()) == head:  # caught up between kills: start over
            reset_read_models(db)
        worker = spawn()
        worker.wait_until_projecting()
        if rng.random() < 0.5:
            time.sleep(rng.uniform(0.0, catch_up_seconds))  # anywhere in a transaction
        else:  # just after a commit, as the next transaction begins
            before = positions(db)
            deadline = time.monotonic() + WAIT
            while positions(db) == before and time.monotonic() < deadline:
                time.sleep(0.005)
            time.sleep(rng.uniform(0.0, 0.05))
        worker.kill()
        kills += 1
        assert not worker.failures(), worker.output.decode()
        killed_with_work_left += min(positions(db).values()) < head

    worker = spawn()
    worker.wait_until_projecting()
    _wait_until_current(services)
    assert worker.stop() == 0, worker.output.decode()
    assert not worker.failures(), worker.output.decode()
    _check_exactly_once(services, big_log.reference, "after the kills")


@pytest.mark.postgres
def test_two_worker_processes_side_by_side_apply_every_event_once(
    big_log: BigLog, spawn: Callable[[], Worker]
) -> None:
    """Both workers start on current read models, which are then emptied under them.

    (Starting one while the other is inside a projection transaction can deadlock: see
    ``test_a_process_starting_while_a_projection_transaction_is_open_does_not_deadlock``.)
    """
    services = big_log.services
    services.read_models.catch_up()
    workers = [spawn(), spawn()]
    for worker in workers:
        worker.wait_until_projecting()
    reset_read_models(services.database)
    _wait_until_current(services)
    for worker in workers:
        assert worker.stop() == 0, worker.output.decode()
        assert not worker.failures(), worker.output.decode()
    _check_exactly_once(services, big_log.reference, "two worker processes")


def _record_applied(runner: ProjectionRunner, applied: list[int]) -> None:
    """Make the runner's projection note each event it applies in ``applied``."""
    projection = runner.projection
    apply = projection.apply

    def recording(curs: Cursor, events: list[LoggedEvent], position_before: int) -> None:
        apply(curs, events, position_before)
        applied.extend(logged.notification_id for logged in events)

    projection.apply = recording  # type: ignore[method-assign]


@pytest.mark.postgres
def test_two_workers_never_both_apply_an_event(
    big_log: BigLog, caplog: pytest.LogCaptureFixture
) -> None:
    """Two services (own pools, own caches), one thread each, small transactions, one log.

    Each worker records the events it applied in the transactions that committed: for each
    projection the two records are disjoint and together cover the log exactly.
    """
    caplog.set_level(logging.ERROR)
    services = big_log.services
    reset_read_models(services.database)
    log = log_notification_ids(services.database, services.app)
    instances = [bootstrap(services.settings) for _ in range(2)]
    committed: list[dict[str, list[int]]] = [{}, {}]
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def work(index: int) -> None:
        rng = random.Random(index)
        pending: list[int] = []
        runners = instances[index].read_models.runners
        for runner in runners:
            _record_applied(runner, pending)
        try:
            barrier.wait()
            idle = 0
            while idle < 2:
                done = 0
                for runner in runners:
                    pending.clear()
                    done += runner.run_transaction(
                        max_events=rng.randint(20, 150), page_size=rng.randint(10, 60)
                    )
                    committed[index].setdefault(runner.name, []).extend(pending)
                idle = idle + 1 if done == 0 else 0
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=WAIT * 2)
    finally:
        for instance in instances:
            instance.close()
    assert not any(thread.is_alive() for thread in threads)
    assert not errors, errors
    for name in schema.PROJECTIONS:
        first, second = (committed[i].get(name, []) for i in range(2))
        assert first, f"{name}: the second worker did all the work; nothing was contended"
        assert second, f"{name}: the first worker did all the work; nothing was contended"
        assert not set(first) & set(second), f"{name}: both workers applied an event"
        assert sorted(first + second) == log, f"{name}: an event was missed or applied twice"
    _check_exactly_once(services, big_log.reference, "two workers in threads")


@pytest.mark.postgres
def test_a_process_starting_while_a_projection_transaction_is_open_does_not_deadlock(
    postgres_settings: Settings,
) -> None:
    """A second worker (or server) starts while the first is inside a projection transaction.

    Starting bootstraps the read-model tables (``CREATE INDEX IF NOT EXISTS`` takes a SHARE
    lock on each table in turn, in one transaction); the projection has written the costs
    table and is about to write stage periods and summaries. The start must wait for the
    transaction, not deadlock with it.
    """
    services = bootstrap(postgres_settings)
    started: list[Services] = []
    try:
        with left_to_the_runners(services):
            journey = Journey(services.app).register()
            journey.report_cost()
            journey.issue(c.ScorePriority, **PRIORITY)
        paused, release = threading.Event(), threading.Event()

        def hold(point: str) -> None:
            if point == "after-page" and not paused.is_set():
                paused.set()
                release.wait(WAIT)

        summaries = ReadModelService(services.database, services.app, fault=hold).runners[0]
        outcomes: dict[str, object] = {}

        def project() -> None:
            try:
                outcomes["projection"] = summaries.run_transaction()
            except Exception as error:
                outcomes["projection"] = error

        def start_another_process() -> None:
            try:
                started.append(bootstrap(postgres_settings))
                outcomes["start"] = "started"
            except Exception as error:
                outcomes["start"] = error

        projecting = threading.Thread(target=project)
        projecting.start()
        assert paused.wait(WAIT)
        starting = threading.Thread(target=start_another_process)
        starting.start()
        deadline = time.monotonic() + WAIT
        while starting.is_alive() and not _lock_waits(services) and time.monotonic() < deadline:
            time.sleep(0.01)
        release.set()
        projecting.join(WAIT)
        starting.join(WAIT)
        assert outcomes == {"projection": 3, "start": "started"}
    finally:
        for other in started:
            other.close()
        services.close()


def _lock_waits(services: Services) -> int:
    with services.database.transaction() as curs:
        curs.execute(
            "SELECT count(*) AS n FROM pg_locks WHERE NOT granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        row = curs.fetchone()
    return int(row["n"]) if row else 0
