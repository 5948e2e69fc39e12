"""What every append writes beside its events, in their transaction, the same on both stores.

With the events go their audit hashes (``infra.chain``), the notifications other systems get
(``infra.outbox``), the records of the deliveries that caused them (``infra.deliveries``) and,
where the read models are wired in, their rows (``infra.readmodels.inline``). The append is
also where the store checks that the policy its commands were judged by is still in force.

Everything that can be is computed before the append takes the log's lock (``plan``), so the
work done under it (``write``) is SQL, sent in one pipeline: appends are serialised by that
lock, and what runs under it bounds how many commit per second. No logic runs in the
database: triggers there only refuse rewriting the log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eventsourcing.persistence import StoredEvent

from domain.application import Appended
from domain.errors import PolicyChanged
from domain.policy import POLICY_ID
from infra import chain, deliveries, outbox
from infra.database import Cursor, Database

if TYPE_CHECKING:  # the read models import the recorders, which import this module
    from infra.readmodels.inline import InlineReadModels, ReadModelRows, Savepoint


log = logging.getLogger(__name__)


@dataclass
class AppendPlan:
    """The rows of one append, built before its lock."""

    stored_events: Sequence[StoredEvent]
    predecessors: list[tuple[str, int]]
    """(originator_id, version) of the stored event each aggregate's first one here follows."""
    notifications: list[tuple[str, str, int, str]]
    judged_by: int | None
    """The version of the policy the commands were judged by (None: nothing to check)."""
    read_models: ReadModelRows | None
    head_lookup: Cursor | None = None
    """The cursors ``check`` asked on, read by ``write`` (one append attempt's): the log's
    head and the policy's version; the projections' positions (where rows are to be
    written); the predecessors' hashes (where there are any)."""
    positions_lookup: Cursor | None = None
    hash_lookup: Cursor | None = None

    def lookups(self) -> list[Cursor]:
        """The cursors ``check`` opened."""
        asked = (self.head_lookup, self.positions_lookup, self.hash_lookup)
        return [lookup for lookup in asked if lookup is not None]

    events_inserted: bool = False
    """This attempt's events went in: what fails after that is the rest of the plan."""


HashQuestion = Callable[["Cursor", list[tuple[str, int]]], None]
"""Asks, through the cursor, for the stored hashes of these (originator_id, version) events
(each store's recorder knows how to ask for many at once); ``write`` reads the answer."""


class Appends:
    """Plans and writes what goes with each append (the module docstring)."""

    def __init__(self, db: Database, events_table: str) -> None:
        self.db = db
        self.read_models: InlineReadModels | None = None
        """Wired by the infrastructure once the read models exist (``infra.bootstrap``)."""
        self.after_commit: Callable[[], None] | None = None
        """Told after each append commits: wakes this process's follower of the log, for
        live subscribers (``infra.live``), where the store announces nothing itself."""
        self.hashes_table = db.table(chain.HASHES_TABLE)
        self._outbox_table = db.table(outbox.OUTBOX_TABLE)
        self._deliveries_table = db.table(deliveries.DELIVERIES_TABLE)
        n = db.log_position_column
        self._check = (
            f"SELECT (SELECT COALESCE(MAX({n}), 0) FROM {events_table}) AS head_before,"
            " (SELECT COALESCE(MAX(originator_version), 0)"
            f" FROM {events_table} WHERE originator_id = %s) AS policy_version"
        )
        self._policy_id = db.stored_uuid(POLICY_ID)

    def plan(self, stored_events: Sequence[StoredEvent], appended: Any) -> AppendPlan:
        """Before the lock: everything but what needs the events' notification ids or what
        the store holds (the hashes the chain goes on from)."""
        judged_by = appended.judged_by if isinstance(appended, Appended) else None
        read_models = self.read_models
        return AppendPlan(
            stored_events=stored_events,
            predecessors=chain.predecessors(stored_events),
            notifications=outbox.rows(stored_events),
            judged_by=judged_by.version if judged_by is not None else None,
            read_models=read_models.rows(stored_events, appended) if read_models else None,
        )

    def write_deliveries(self, curs: Cursor, stored_events: Sequence[StoredEvent]) -> None:
        """The delivery records, sent with the events themselves: a duplicate delivery then
        fails on the record's key as the events' own insert does, as an IntegrityError."""
        records = deliveries.rows(stored_events)
        self.db.insert_rows(curs, self._deliveries_table, deliveries.COLUMNS, records)

    def check(
        self, cursor: Callable[[], Cursor], plan: AppendPlan, ask_hashes: HashQuestion
    ) -> None:
        """Under the lock, before the events are inserted: ask for the log's head, the
        policy's version, the hashes the chain goes on from and (locked) the projections'
        positions. Each on a cursor of its own (``cursor()``), read by ``write``: on
        PostgreSQL the questions travel with the insert, in one round trip."""
        plan.events_inserted = False
        head = cursor()
        head.execute(self._check, (self._policy_id,))
        plan.head_lookup = head
        plan.positions_lookup = None
        plan.hash_lookup = None
        if plan.predecessors:
            plan.hash_lookup = cursor()
            ask_hashes(plan.hash_lookup, plan.predecessors)
        if plan.read_models is not None and self.read_models is not None:
            positions = cursor()
            self.read_models.lock_positions(positions)
            plan.positions_lookup = positions

    def write(
        self,
        curs: Cursor,
        plan: AppendPlan,
        notification_ids: Sequence[int],
        savepoint: Savepoint,
    ) -> None:
        """Under the lock, once the events are inserted: the rest of the plan.

        Raises ``PolicyChanged`` (and the transaction is undone) if another policy came into
        force since the commands were judged, ``chain.ChainBroken`` if the chain to extend is
        damaged.
        """
        plan.events_inserted = True
        assert plan.head_lookup is not None, "check() asks before write() reads"
        checked = plan.head_lookup.fetchone()
        assert checked is not None
        if plan.judged_by is not None and int(checked["policy_version"]) != plan.judged_by:
            raise PolicyChanged()
        previous = {}
        if plan.hash_lookup is not None:
            previous = {
                (str(row["originator_id"]), int(row["originator_version"])): str(row["hash"])
                for row in plan.hash_lookup.fetchall()
            }
        links = chain.chain_rows(plan.stored_events, previous)
        # Live subscribers in every process hear of it once it commits (``infra.live``).
        with self.db.writes_together(curs, announcing_append=True) as writes:
            self.db.insert_rows(writes, self.hashes_table, chain.COLUMNS, links)
            if plan.notifications:
                self.db.insert_rows(writes, self._outbox_table, outbox.COLUMNS, plan.notifications)
        if plan.read_models is not None and plan.positions_lookup is not None:
            assert self.read_models is not None
            positions = {
                row["projection"]: int(row["position"]) for row in plan.positions_lookup.fetchall()
            }
            self.read_models.write(
                curs,
                plan.read_models,
                notification_ids,
                int(checked["head_before"]),
                positions,
                savepoint,
            )

    def without_read_models(self, plan: AppendPlan, error: Exception) -> bool:
        """Whether to try the append again without its read-model rows, after ``error``
        undid it: where the database refused what was written after the events (where it
        says so only at the commit, and the read models were part of it). The events then
        commit, and the runners write those rows, or set aside what they cannot."""
        if not plan.events_inserted or plan.read_models is None:
            return False
        log.warning("an append's read-model rows were refused; appending without them: %r", error)
        plan.read_models = None
        return True

    def committed(self, plan: AppendPlan) -> None:
        """After the append committed."""
        if self.read_models is not None:
            self.read_models.committed(plan.read_models)
        if self.after_commit is not None:
            self.after_commit()
