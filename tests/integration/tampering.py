"""A recorded history, copies of its store, and the edits an attacker makes to them.

The history is several use cases driven through the real commands, and a policy change,
exported as an auditor would keep them outside the database before anyone tampered.

A copy is taken while the original stays open: on SQLite with the backup API, on PostgreSQL
by copying the event and hash rows as they are into a fresh schema whose tables (and
triggers) the application created. Edits run as the superuser the tests connect as, with
``session_replication_role = replica`` on PostgreSQL: the deliberate act that switches the
triggers off.
"""

from __future__ import annotations

import contextlib
import io
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from uuid import UUID

from domain import commands as c
from domain.application import Stagegate
from domain.usecase import use_case_id
from domain.values import Stage
from infra.audit import ExportedChain, export_history, read_export
from infra.bootstrap import Services, bootstrap
from infra.chain import GENESIS, HASHES_TABLE, event_hash
from infra.database import Cursor, Database
from infra.readmodels.history import COLUMNS as HISTORY_COLUMNS
from infra.readmodels.history import HistoryProjection
from infra.readmodels.schema import HISTORY
from projections.history import history_entry
from tests.builders import ADMIN, BASELINE_METRIC, Journey, ctx

LAST = 22
"""Events of a use case that Journey drives to MEASUREMENT; the tests' versions assume it."""
# Floats whose shortest repr differs from a naive one, and text far from ASCII: the export
# must reproduce the stored bytes of both exactly.
AWKWARD_FLOATS = (0.1 + 0.2, 1e-7, 1.7976931348623157e308, 5e-324, 123456789.12345679)
UNUSUAL_TITLE = 'Rechnungsprüfung, 請求書の仕分け 🧾 "quoted" \\ back\tslash'

_copies = count(1)


@dataclass
class History:
    """What was stored, and the exports an auditor took of it before anyone tampered."""

    services: Services
    measured: str
    """The key of a use case in MEASUREMENT, with ``LAST`` events: the one tampered with."""
    keys: list[str]
    exports: dict[str, str]

    def exported(self, key: str) -> ExportedChain:
        return read_export(self.exports[key].splitlines())[key]

    def exported_head(self, key: str) -> ExportedChain:
        chain = self.exported(key)
        return ExportedChain({chain.head_version: chain.hashes[chain.head_version]})

    def all_exported(self) -> dict[str, ExportedChain]:
        return {key: self.exported(key) for key in self.keys}


def record_history(services: Services) -> History:
    """Three use cases and a policy change, through the real commands; exported."""
    app = services.app
    measured = Journey(app).register().reach(Stage.MEASUREMENT)
    accepted = Journey(app).register().reach(Stage.ACCEPTANCE)
    unusual = Journey(app)
    unusual.issue(c.RegisterUseCase, title=UNUSUAL_TITLE, business_unit="Finanz & Controlling")
    unusual.reach(Stage.MEASUREMENT)
    for value in AWKWARD_FLOATS:
        unusual.issue(c.RecordMeasurement, metric=BASELINE_METRIC, value=value)
    app.set_policy(c.SetPolicy.parse({"minAdoption": 0.55, "reason": "Board — Q3"}), ctx(ADMIN))
    assert measured.use_case.version == LAST
    keys = [measured.key, accepted.key, unusual.key]
    return History(services, measured.key, keys, {key: export_text(services, key) for key in keys})


def export_text(services: Services, key: str) -> str:
    out = io.StringIO()
    export_history(services.app, key, out)
    return out.getvalue()


class StoreCopy:
    """A copy of a store, open as its own application, with an attacker's edits."""

    def __init__(self, original: Services, folder: Path) -> None:
        settings = original.settings
        number = next(_copies)
        if settings.is_postgres:
            schema = f"{settings.postgres_schema}_c{number}"
            self.services = bootstrap(settings.model_copy(update={"postgres_schema": schema}))
            source, target = original.database, self.database
            # As replica, so no trigger computes hash rows of its own for the copied events.
            with self._superuser() as curs:
                for table in (self.events_table, HASHES_TABLE):
                    curs.execute(
                        f"INSERT INTO {target.table(table)} SELECT * FROM {source.table(table)}"
                    )
        else:
            path = folder / f"copy-{number}.db"
            with (
                contextlib.closing(sqlite3.connect(settings.sqlite_path)) as source_file,
                contextlib.closing(sqlite3.connect(path)) as target_file,
            ):
                source_file.backup(target_file)
            url = f"sqlite:///{path}"
            self.services = bootstrap(settings.model_copy(update={"database_url": url}))

    @property
    def app(self) -> Stagegate:
        return self.services.app

    @property
    def database(self) -> Database:
        return self.services.database

    @property
    def events_table(self) -> str:
        return str(self.app.recorder.events_table_name)  # type: ignore[attr-defined]

    def close(self) -> None:
        self.services.close()

    def state(self, key: str, version: int) -> bytes:
        (event,) = self.app.recorder.select_events(use_case_id(key), gt=version - 1, lte=version)
        return bytes(event.state)

    def topic(self, key: str, version: int) -> str:
        (event,) = self.app.recorder.select_events(use_case_id(key), gt=version - 1, lte=version)
        return str(event.topic)

    def set_event(self, key: str, version: int, *, state: bytes, topic: str | None = None) -> None:
        """Overwrite an event's stored bytes (and topic), leaving its hash row as it was."""
        with self._superuser() as curs:
            curs.execute(
                f"UPDATE {self.database.table(self.events_table)} SET state = %s, topic = %s "
                "WHERE originator_id = %s AND originator_version = %s",
                (state, topic or self.topic(key, version), self._event_id(key), version),
            )

    def delete_events(
        self, key: str, first: int, last: int, *, hash_rows: bool, read_side: bool = False
    ) -> None:
        """Delete versions ``first`` to ``last`` (and, if ``hash_rows``, their hashes too;
        if ``read_side``, their snapshots and history rows as well: every trace of them)."""
        tables = [(self.events_table, "originator_id", "originator_version", self._event_id(key))]
        if hash_rows:
            tables.append((HASHES_TABLE, "originator_id", "originator_version", self._hash_id(key)))
        if read_side:
            snapshots = self.app.snapshots.recorder.events_table_name  # type: ignore[union-attr]
            tables.append((snapshots, "originator_id", "originator_version", self._event_id(key)))
            tables.append((HISTORY, "aggregate_id", "version", str(use_case_id(key))))
        with self._superuser() as curs:
            for table, id_column, version_column, originator_id in tables:
                curs.execute(
                    f"DELETE FROM {self.database.table(table)} WHERE {id_column} = %s "
                    f"AND {version_column} BETWEEN %s AND %s",
                    (originator_id, first, last),
                )

    def recompute_hashes_from(self, key: str, version: int) -> None:
        """What an attacker does after rewriting ``version``: rehash it and every later one."""
        previous = GENESIS
        with self._superuser() as curs:
            for event in self.app.recorder.select_events(use_case_id(key)):
                at = event.originator_version
                digest = event_hash(previous, event.originator_id, at, event.topic, event.state)
                if at >= version:
                    curs.execute(
                        f"UPDATE {self.database.table(HASHES_TABLE)} SET prev_hash = %s, "
                        "hash = %s WHERE originator_id = %s AND originator_version = %s",
                        (previous, digest, self._hash_id(key), at),
                    )
                previous = digest

    def reproject_history(self, key: str, version: int) -> None:
        """What a thorough attacker does too: the history row of ``version``, written when
        the event was, rewritten to match the forged event, so the read model an auditor
        browses agrees with it."""
        [event] = self.app.recorder.select_events(use_case_id(key), gt=version - 1, lte=version)
        history = HistoryProjection(self.database)
        table = self.database.table(HISTORY)
        with self._superuser() as curs:
            curs.execute(
                f"SELECT notification_id FROM {table} WHERE aggregate_id = %s AND version = %s",
                (str(use_case_id(key)), version),
            )
            row = curs.fetchone()
            if row is None:  # not projected in this copy yet: it will be, from the forgery
                return
            entry = history_entry(
                int(row["notification_id"]),
                event.originator_id,
                version,
                event.topic,
                event.state,
            )
            curs.execute(
                f"DELETE FROM {table} WHERE notification_id = %s", (row["notification_id"],)
            )
            self.database.insert_rows(curs, table, HISTORY_COLUMNS, [history.row(entry)])

    @contextlib.contextmanager
    def _superuser(self) -> Iterator[Cursor]:
        with self.database.transaction() as curs:
            if self.database.is_postgres:
                curs.execute("SET LOCAL session_replication_role = replica")
            yield curs

    def _event_id(self, key: str) -> UUID | str:
        # SQLite's events table keeps ids as bare hex, its hashes table with hyphens.
        return use_case_id(key) if self.database.is_postgres else use_case_id(key).hex

    def _hash_id(self, key: str) -> UUID | str:
        return use_case_id(key) if self.database.is_postgres else str(use_case_id(key))


def copier(history: History, folder: Path) -> Iterator[Callable[[], StoreCopy]]:
    """For a fixture: yields a maker of fresh copies, and closes them all afterwards."""
    copies: list[StoreCopy] = []

    def copy() -> StoreCopy:
        copies.append(StoreCopy(history.services, folder))
        return copies[-1]

    yield copy
    for each in copies:
        each.close()


def one_byte_changed(state: bytes) -> bytes:
    """The first letter of the actor id, changed: still valid JSON, still a loadable event."""
    at = state.index(b'"actor_id":"') + len(b'"actor_id":"')
    return state[:at] + bytes([state[at] ^ 0x01]) + state[at + 1 :]


def rewrite_and_rehash(copy: StoreCopy, key: str) -> None:
    """Rewrite version 5 and recompute every later stored hash, as an attacker would."""
    forged = copy.state(key, 5).replace(b'"reason":null', b'"reason":"approved by Ada"')
    copy.set_event(key, 5, state=forged)
    copy.recompute_hashes_from(key, 5)
    copy.reproject_history(key, 5)
