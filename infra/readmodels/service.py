"""The read side as one service: its projections, how they are kept current, its queries."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

from domain import clock as domain_clock
from domain.application import Stagegate
from domain.costs import month_of, month_start
from infra.database import Database
from infra.readmodels import faults, schema
from infra.readmodels.history import HistoryProjection
from infra.readmodels.inline import CatchUpNeeded, InlineReadModels
from infra.readmodels.queries import SqlQueries
from infra.readmodels.runner import FaultHook, ProjectionRunner
from infra.readmodels.summaries import SummaryProjection
from projections.history import HistoryEntry, UnreadableEvent, history_entry
from projections.readmodels import (
    AdoptionReading,
    BacklogEntry,
    Page,
    Portfolio,
    ProjectionFault,
    UseCaseFilter,
    UseCaseRecord,
)

log = logging.getLogger(__name__)

Mode = Literal["inline", "external"]
REBUILD_TRANSACTION = 200_000
"""Events per transaction when rebuilding: few commits, each use case written once per commit."""
REBUILD_ELSEWHERE_FROM = 50_000
"""Events in the log from which a rebuild writes the history in a process of its own (below
it, starting one costs more than it saves)."""


class ReadModelService:
    """Implements ``projections.readmodels.ReadModels`` on the application's database.

    Every append writes the rows a reader needs in its own transaction (``inline``, the
    module ``infra.readmodels.inline``), whichever the mode. Where an append could not (the
    read models were behind, or refused a row), the projection runners catch up: in this
    process before it answers a reader of its own writes (``refresh``), and in the
    background. ``inline`` mode runs that background catch-up in this process;
    ``external`` leaves it to ``stagegate projections run`` workers.
    """

    def __init__(
        self,
        db: Database,
        app: Stagegate,
        mode: Mode = "inline",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        fault: FaultHook | None = None,
        rebuild_history_elsewhere: Callable[[], int] | None = None,
    ) -> None:
        self.db = db
        self._rebuild_history_elsewhere = rebuild_history_elsewhere
        """Runs ``rebuild_history`` in another process (one more core for a large rebuild)."""
        self.mode = mode
        self.clock = clock
        events_table = db.table(app.recorder.events_table_name)  # type: ignore[attr-defined]
        number = db.log_position_column
        self._max_notification = f"SELECT MAX({number}) AS n FROM {events_table}"
        self._first_after = (
            f"SELECT {number} AS n, originator_id, originator_version, topic, state"
            f" FROM {events_table} WHERE {number} > %s ORDER BY {number} LIMIT 1"
        )
        self._mapper = app.mapper
        snapshots = app.snapshots
        self._snapshots_table = (
            db.table(snapshots.recorder.events_table_name)  # type: ignore[attr-defined]
            if snapshots is not None
            else None
        )
        summaries, history = SummaryProjection(db, events_table), HistoryProjection(db)
        self.runners = [
            ProjectionRunner(db, app.mapper, events_table, projection, fault)
            for projection in (summaries, history)
        ]
        self._catch_up_needed = CatchUpNeeded()
        # Projection objects of their own: the runners' hold state between transactions.
        self.inline = InlineReadModels(
            db,
            SummaryProjection(db, events_table),
            HistoryProjection(db),
            behind=self._left_behind,
        )
        self.queries = SqlQueries(db)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._worker: threading.Thread | None = None
        self._judged_month: str | None = None
        """The month in which this process last judged stale summaries again."""

    def create_tables(self) -> None:
        schema.create_tables(self.db)

    # --- keeping current -------------------------------------------------------------------

    def catch_up(self) -> int:
        """Project every event written so far (this process does the work)."""
        return sum(runner.catch_up() for runner in self.runners)

    def refresh(self) -> None:
        """Make the read models include every write this process has made: nothing to do
        where each append wrote its own rows (no query is made); else catch up here."""
        mark = self._catch_up_needed.pending()
        if mark is None:
            return
        self.catch_up()
        self._catch_up_needed.covered(mark)

    def _left_behind(self) -> None:
        """An append of this process committed without its read-model rows."""
        self._catch_up_needed.note()
        self.wake()

    def projection_faults(self, limit: int = 20) -> tuple[int, list[ProjectionFault]]:
        """How many events the projections set aside, and the first ``limit`` of them."""
        return faults.recorded(self.db, limit)

    def wake(self) -> None:
        """New events were written: have the background thread project them now, without
        waiting for it (for writers whose answer shows nothing from the read models)."""
        self._wake.set()

    def last_notification_id(self) -> int:
        with self.db.transaction() as curs:
            curs.execute(self._max_notification)
            row = curs.fetchone()
        return int(row["n"]) if row and row["n"] is not None else 0

    def recorded_at_after(self, position: int) -> datetime | None:
        """When the first event after log position ``position`` was recorded (None if there is
        none, or it cannot be read): how old the oldest event a projection still owes is."""
        with self.db.transaction() as curs:
            curs.execute(self._first_after, (position,))
            row = curs.fetchone()
        if row is None:
            return None
        try:
            return history_entry(
                int(row["n"]),
                str(row["originator_id"]),
                int(row["originator_version"]),
                str(row["topic"]),
                bytes(row["state"]),
            ).recorded_at
        except UnreadableEvent:
            return None

    def rebuild(self) -> int:
        """Empty every read model and project the whole log again.

        On PostgreSQL the summaries are rebuilt from the use cases themselves (see
        ``SummaryProjection.rebuild_to``) while, on a second connection, the history is
        written beside them; each in transactions of its own, with its own position. Both are
        Python's work, so for a large log the history is written by another process
        (``rebuild_history_elsewhere``), on another core.
        """
        self.empty()
        if not self.db.rebuilds_beside:
            return sum(runner.catch_up(REBUILD_TRANSACTION) for runner in self.runners)
        counts: dict[str, int] = {}
        failures: list[BaseException] = []
        elsewhere = self._rebuild_history_elsewhere
        if elsewhere is None or self.last_notification_id() < REBUILD_ELSEWHERE_FROM:
            elsewhere = self.rebuild_history

        def history() -> None:
            try:
                counts["history"] = elsewhere()
            except BaseException as error:
                failures.append(error)

        writing_history = threading.Thread(target=history, name="rebuild-history")
        writing_history.start()
        try:
            counts["summaries"] = self.rebuild_summaries()
        finally:
            writing_history.join()
        if failures:
            raise failures[0]
        self.analyze()
        return counts["summaries"] + counts["history"]

    def rebuild_emptied(self) -> int:
        """Rebuild each projection that stands at the start of a log that is not empty (a
        migration emptied it), as ``rebuild`` would; returns how many events were projected."""
        if self.last_notification_id() == 0:
            return 0
        done = 0
        for runner in self.runners:
            if runner.position() != 0:
                continue
            log.info("rebuilding the %s read model from the log", runner.name)
            if runner.name == "summaries" and self.db.rebuilds_beside:
                done += self.rebuild_summaries()
            else:
                done += runner.catch_up(REBUILD_TRANSACTION)
        if done:
            self.analyze()
        return done

    def analyze(self) -> None:
        """Fresh planner statistics for the read-model tables (PostgreSQL), as after any bulk
        load: where autovacuum is off or has not run yet, a rebuilt table without them is
        planned as if it were empty or huge."""
        tables = [self.db.table(t) for r in self.runners for t in schema.tables_of(r.name)]
        try:
            self.db.analyze(tables)
        except Exception:
            # The rebuild itself has committed; only the planner's estimates are stale.
            log.warning("ANALYZE after the rebuild failed; run it by hand", exc_info=True)

    def empty(self) -> None:
        """Empty every read model and move each projection back to the start of the log."""
        with self.db.transaction() as curs:
            for runner in self.runners:
                for table in schema.tables_of(runner.name):
                    curs.execute(f"DELETE FROM {self.db.table(table)}")
                curs.execute(
                    f"UPDATE {self.db.table(schema.POSITIONS)} SET position = 0"
                    " WHERE projection = %s",
                    (runner.name,),
                )
                curs.execute(
                    f"DELETE FROM {self.db.table(schema.FAULTS)} WHERE projection = %s",
                    (runner.name,),
                )
        for runner in self.runners:
            runner.projection.forget()

    def rebuild_summaries(self) -> int:
        """After ``empty()``, on PostgreSQL: the summaries in one go, from the use cases."""
        summaries = self._runner("summaries")
        projection = summaries.projection
        assert isinstance(projection, SummaryProjection)
        return summaries.rebuild_at_once(
            lambda curs, head: projection.rebuild_to(
                curs, head, self._mapper, self._snapshots_table
            )
        )

    def rebuild_history(self) -> int:
        """After ``empty()``: the history, in large transactions."""
        return self._runner("history").catch_up(REBUILD_TRANSACTION)

    def _runner(self, name: str) -> ProjectionRunner:
        [runner] = [runner for runner in self.runners if runner.name == name]
        return runner

    def run_forever(self, poll_interval: float = 0.2) -> None:
        """Keep projecting until ``stop()``; each transaction is small, so lag stays low."""
        while not self._stop.is_set():
            try:
                done = sum(runner.run_transaction() for runner in self.runners)
            except Exception:
                log.exception("projection transaction failed; it will be retried")
                done = 0
                self._stop.wait(1.0)
            if done == 0:
                self._wake.wait(poll_interval)
                self._wake.clear()

    def start(self) -> None:
        """Run ``run_forever`` in a background thread."""
        self._stop.clear()
        self._worker = threading.Thread(target=self.run_forever, name="projections", daemon=True)
        self._worker.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._worker is not None:
            self._worker.join(timeout=10)
            self._worker = None

    def judge_again_if_the_month_turned(self, *, recheck: bool = False) -> int:
        """Before the summaries answer: if this process has not yet checked them in this
        calendar month, judge again those judged in an earlier one (the gate into ``scale``
        looks at the last complete month's cost, which a new month changes without an
        event; ``SummaryProjection.rejudge_judged_before``). One query a month per process
        when there is nothing to do; returns how many were judged again. ``recheck``: look
        even if this process did this month (for a clock moved in-process: the demo, tests)."""
        month = month_of(domain_clock.now())
        if month == self._judged_month and not recheck:
            return 0
        runner = self._runner("summaries")
        projection = runner.projection
        assert isinstance(projection, SummaryProjection)
        start = month_start(month)
        judged = runner.maintain(
            lambda curs, position: projection.rejudge_judged_before(curs, position, start)
        )
        self._judged_month = month
        return judged

    # --- the questions ---------------------------------------------------------------------

    def use_cases(
        self, filter: UseCaseFilter, first: int, after: str | None
    ) -> Page[UseCaseRecord]:
        self.judge_again_if_the_month_turned()
        return self.queries.use_cases(filter, first, after, self.clock())

    def count_use_cases(self, filter: UseCaseFilter) -> int:
        self.judge_again_if_the_month_turned()
        return self.queries.count_use_cases(filter, self.clock())

    def backlog(self, first: int, after: str | None) -> Page[BacklogEntry]:
        self.judge_again_if_the_month_turned()
        return self.queries.backlog(first, after)

    def portfolio(self, stuck_after_days: int) -> Portfolio:
        self.judge_again_if_the_month_turned()
        return self.queries.portfolio(self.clock(), stuck_after_days)

    def history(
        self, aggregate_id: str, first: int, after: str | None, newest: bool = False
    ) -> Page[HistoryEntry]:
        return self.queries.history(aggregate_id, first, after, newest)

    def linked_use_cases(self, system: str, name: str) -> list[str]:
        return self.queries.linked_use_cases(system, name)

    def history_entry(self, aggregate_id: str, version: int) -> HistoryEntry | None:
        return self.queries.history_entry(aggregate_id, version)

    def adoption_series(
        self,
        use_case_ids: list[str],
        size: int,
        after: str | None,
        newest: bool = False,
        until_version: int | None = None,
    ) -> dict[str, Page[AdoptionReading]]:
        return self.queries.adoption_series(use_case_ids, size, after, newest, until_version)

    def version_at(self, aggregate_id: str, at: datetime) -> int | None:
        return self.queries.version_at(aggregate_id, at)

    def policy_version_at(self, at: datetime) -> int:
        return self.queries.policy_version_at(at)
