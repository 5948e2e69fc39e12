"""What the application remembers between commands, kept correct when other processes write."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.application import LRUCache

from domain.application import CheckedOut, LoadedUseCases, Stagegate
from domain.errors import NotFound
from domain.policy import POLICY_ID, PolicyInForce
from domain.usecase import UseCase, use_case_id
from infra.database import Database
from infra.recorders import StagegatePostgresRecorder


class CachedPolicy:
    """The policy in force, remembered (``domain.application.PolicySource``).

    Loading the policy costs two queries and a decode per command, where it changes a few
    times a year. A command is judged by the remembered one at no cost: the store checks, in
    the transaction that appends the command's events, that it is still the one in force, and
    refuses the write otherwise (``PolicyChanged``), so the command is judged again by the
    new one, whichever process wrote it. An answer to a reader costs one small query: the
    latest policy version, compared with the one remembered.
    """

    def __init__(self, app: Stagegate, db: Database, events_table: str) -> None:
        self._app = app
        self._db = db
        self._held: PolicyInForce | None = None
        self._latest_version = (
            "SELECT COALESCE(MAX(originator_version), 0) AS version"
            f" FROM {events_table} WHERE originator_id = %s"
        )
        self._policy_id = db.stored_uuid(POLICY_ID)

    def for_judging(self) -> PolicyInForce:
        held = self._held
        return held if held is not None else self._load()

    def in_force(self) -> PolicyInForce:
        held = self._held
        if held is not None:
            [row] = self._db.select(self._latest_version, (self._policy_id,))
            if int(row["version"]) == held.version:
                return held
        return self._load()

    def forget(self) -> None:
        self._held = None

    def _load(self) -> PolicyInForce:
        # Another thread may load meanwhile; whichever is older is found out at its commit.
        policy = self._app.stored_policy()
        self._held = policy
        return policy


CHECKED_IN = 10_000
"""Use cases kept in memory, as last saved, for the next batch that touches them."""
READ_ONCE = 10_000
"""Use cases remembered as read once (not cached): a second read puts one in the cache."""


class CachedUseCases:
    """The use cases batches change, kept between batches (``domain.application.UseCaseSource``).

    A checked-out use case is in one caller's hands alone; once saved it is checked back in,
    and the next batch that touches it starts from it, as this process saved it, without
    asking the store: that question was a round trip per command. Where another process
    (or another stagegate on the database) has changed it since, nothing is lost: a change
    made to the stale copy fails at its commit on the events' key (the version it would
    write is taken), as a lost race, and is judged again on what the store holds; a refusal
    judged on it is answered only once ``still_current`` has found the copy current (the
    batch judges again on copies ``read`` from the store where either fails). The use cases
    not held are loaded in one query for the whole batch (two with snapshots), not two per
    use case; where the store cannot load many at once (SQLite), one by one through the
    repository.

    ``to_read`` serves a use case read once from the same query, without putting it in the
    repository's cache: a portal browsing thousands would otherwise churn that cache, and
    every aggregate evicted is garbage for the collector's slowest generation (full
    collections of 100+ ms every few seconds, measured). A second read goes through the
    repository, which then caches it.
    """

    def __init__(self, app: Stagegate) -> None:
        self._app = app
        self._held: LRUCache[UUID, UseCase] = LRUCache(CHECKED_IN)
        self._read_once: LRUCache[UUID, bool] = LRUCache(READ_ONCE)
        recorder = app.recorder
        self._loads_many = isinstance(recorder, StagegatePostgresRecorder)
        self._one_by_one = LoadedUseCases(app)
        self._snapshots_table = (
            app.snapshots.recorder.events_table_name  # type: ignore[attr-defined]
            if app.snapshots is not None
            else None
        )

    def check_out(self, keys: Sequence[str]) -> CheckedOut:
        held = {}
        for key in dict.fromkeys(keys):
            with contextlib.suppress(KeyError):
                held[key] = self._held.get(use_case_id(key), evict=True)
        missing = [key for key in dict.fromkeys(keys) if key not in held]
        checked_out = CheckedOut(self.read(missing) if missing else {})
        checked_out.update(held)
        checked_out.as_saved = frozenset(held)
        return checked_out

    def read(self, keys: Sequence[str]) -> dict[str, UseCase]:
        if not self._loads_many:
            return self._one_by_one.check_out(keys)
        return self._latest(keys)

    def still_current(self, versions: Mapping[str, int]) -> bool:
        ids = [use_case_id(key) for key in versions]
        recorder = self._app.recorder
        if isinstance(recorder, StagegatePostgresRecorder):
            stored = recorder.latest_versions(ids)
        else:  # one look each: asked only before a refusal judged on a kept copy is answered
            stored = {
                aggregate_id: event.originator_version
                for aggregate_id in ids
                for event in recorder.select_events(aggregate_id, desc=True, limit=1)
            }
        return all(stored.get(use_case_id(key)) == version for key, version in versions.items())

    def check_in(self, use_cases: Iterable[UseCase]) -> None:
        for use_case in use_cases:
            with contextlib.suppress(KeyError):
                if self._held.get(use_case.id).version >= use_case.version:
                    continue
            self._held.put(use_case.id, use_case)

    def to_read(self, key: str) -> UseCase | None:
        aggregate_id = use_case_id(key)
        cache = self._app.repository.cache
        if not self._loads_many or cache is None or aggregate_id in cache.cache:
            return None
        try:
            self._read_once.get(aggregate_id, evict=True)
            return None  # read before: through the repository, into its cache
        except KeyError:
            self._read_once.put(aggregate_id, True)
        found = self._latest([key])
        if key not in found:
            raise NotFound(key)
        return found[key]

    def _latest(self, keys: Sequence[str]) -> dict[str, UseCase]:
        """The use cases of those keys that exist, at their latest versions, read from the
        store in one query (two where there are snapshots)."""
        recorder = self._app.recorder
        assert isinstance(recorder, StagegatePostgresRecorder)
        wanted: dict[Any, str] = {use_case_id(key): key for key in keys}
        snapshots, events = recorder.select_latest_of_many(list(wanted), self._snapshots_table, {})
        loaded: dict[str, Any] = {}
        snapshot_store = self._app.snapshots
        for stored in snapshots:
            assert snapshot_store is not None
            snapshot: Any = snapshot_store.mapper.to_domain_event(stored)
            loaded[wanted[stored.originator_id]] = snapshot.mutate(None)
        mapper = self._app.events.mapper
        for stored in events:
            # What the library's project_aggregate does, without its runtime protocol check
            # per event (a third of the time here).
            key = wanted[stored.originator_id]
            event: Any = mapper.to_domain_event(stored)
            loaded[key] = event.mutate(loaded.get(key))
        assert all(isinstance(use_case, UseCase) for use_case in loaded.values())
        return loaded
