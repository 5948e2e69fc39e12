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

from collections.abc import Mapping, Sequence
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


@dataclass
class AppendPlan:
    """The rows of one append, built before its lock."""

    hashes: list[tuple[str, int, str, str]]
    notifications: list[tuple[str, str, int, str]]
    judged_by: int | None
    """The version of the policy the commands were judged by (None: nothing to check)."""
    read_models: ReadModelRows | None


class Appends:
    """Plans and writes what goes with each append (the module docstring)."""

    def __init__(self, db: Database, events_table: str) -> None:
        self.db = db
        self.read_models: InlineReadModels | None = None
        """Wired by the infrastructure once the read models exist (``infra.bootstrap``)."""
        self.hashes_table = db.table(chain.HASHES_TABLE)
        self._insert_hash = chain.insert_statement(self.hashes_table)
        self._insert_notification = outbox.insert_statement(db.table(outbox.OUTBOX_TABLE))
        self._deliveries_table = db.table(deliveries.DELIVERIES_TABLE)
        n = db.log_position_column
        self._check = (
            f"SELECT (SELECT COALESCE(MAX({n}), 0) FROM {events_table} WHERE {n} < %s)"
            " AS head_before, (SELECT COALESCE(MAX(originator_version), 0)"
            f" FROM {events_table} WHERE originator_id = %s) AS policy_version"
        )
        self._policy_id = db.stored_uuid(POLICY_ID)

    def plan(
        self,
        stored_events: Sequence[StoredEvent],
        previous_hashes: Mapping[tuple[str, int], str],
        appended: Any,
    ) -> AppendPlan:
        """Before the lock: everything but what needs the events' notification ids.

        ``previous_hashes``: the stored hash of the event each aggregate's first one here
        follows (``chain.predecessors``); read before the lock, since a committed event and
        its hash never change. Raises ``chain.ChainBroken`` where one is missing.
        """
        judged_by = appended.judged_by if isinstance(appended, Appended) else None
        read_models = self.read_models
        return AppendPlan(
            hashes=chain.chain_rows(stored_events, dict(previous_hashes)),
            notifications=outbox.rows(stored_events),
            judged_by=judged_by.version if judged_by is not None else None,
            read_models=read_models.rows(stored_events, appended) if read_models else None,
        )

    def write_deliveries(self, curs: Cursor, stored_events: Sequence[StoredEvent]) -> None:
        """The delivery records, sent with the events themselves: a duplicate delivery then
        fails on the record's key as the events' own insert does, as an IntegrityError."""
        deliveries.write(curs, self._deliveries_table, stored_events)

    def write(
        self,
        curs: Cursor,
        plan: AppendPlan,
        notification_ids: Sequence[int],
        savepoint: Savepoint,
    ) -> None:
        """Under the lock, once the events are inserted: the rest of the plan.

        Raises ``PolicyChanged`` (and the transaction is undone) if another policy came into
        force since the commands were judged.
        """
        curs.execute(self._check, (notification_ids[0], self._policy_id))
        checked = curs.fetchone()
        assert checked is not None
        if plan.judged_by is not None and int(checked["policy_version"]) != plan.judged_by:
            raise PolicyChanged()
        if plan.hashes:
            curs.executemany(self._insert_hash, plan.hashes)
        if plan.notifications:
            curs.executemany(self._insert_notification, plan.notifications)
        if plan.read_models is not None and self.read_models is not None:
            head_before = int(checked["head_before"])
            self.read_models.write(curs, plan.read_models, notification_ids, head_before, savepoint)

    def committed(self, plan: AppendPlan) -> None:
        """After the append committed."""
        if self.read_models is not None:
            self.read_models.committed(plan.read_models)
