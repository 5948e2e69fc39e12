"""Audit integrity: verify each history's hash chain, and export it for offline verification.

The chain is defined in ``infra.chain``. Verification recomputes it from the stored bytes (not
through the domain mapper, so a corrupted payload is hashed as it is stored), compares it with
the stored hash rows, and optionally with hashes exported earlier and kept outside the
database: only those catch an attacker who rewrote an event and recomputed every later hash.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from domain import usecase
from domain.application import Stagegate
from domain.errors import NotFound
from domain.policy import POLICY_ID
from infra.chain import (
    GENESIS,
    HASHES_TABLE,
    event_hash,
)
from infra.database import Database
from infra.readmodels.history import COLUMNS as HISTORY_COLUMNS
from infra.readmodels.history import HistoryProjection
from infra.readmodels.schema import HISTORY, POSITIONS
from infra.recorders import StagegatePostgresRecorder, StagegateSQLiteRecorder
from infra.serialization import canonical_json
from projections.history import history_entry

HISTORY_PROJECTION = HistoryProjection.name
POLICY_SUBJECT = "(policy)"
"""How the organisation's policy history is named in reports (not a valid use-case key)."""

_HASH = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class IntegrityReport:
    """Whether one history's chain is intact and, if not, where it first goes wrong."""

    intact: bool
    first_bad_version: int | None
    """``None`` when intact, or when only a sparse exported head disagrees (see ``reason``)."""
    reason: str | None
    head_version: int
    """The last stored version; 0 when nothing is stored."""
    head_hash: str
    """The chain hash recomputed from the stored events, in version order, up to the head."""


@dataclass(frozen=True)
class ExportedChain:
    """Chain hashes kept outside the database, by version: a whole export, or only heads."""

    hashes: Mapping[int, str]

    @property
    def head_version(self) -> int:
        return max(self.hashes, default=0)


@dataclass(frozen=True)
class VerifiedHistory:
    """One history's report, with what it is the history of."""

    originator_id: UUID
    subject: str
    """The use case key, ``(policy)``, or the id when the key cannot be read from the store."""
    report: IntegrityReport


class ExportFormatError(ValueError):
    """An export (or file of published heads) that cannot be read as one."""


# --- verifying ------------------------------------------------------------------------------


def verify_chain(
    app: Stagegate, use_case_id: UUID, against: ExportedChain | None = None
) -> IntegrityReport:
    """Recompute one history's chain from the stored events and judge it, then everything
    an auditor reads of it: its snapshots and its history rows (see module doc)."""
    events, hashes = _read_history(app, use_case_id)
    return _verify(app, use_case_id, events, _judge(use_case_id, events, hashes, against))


def _verify(
    app: Stagegate, originator_id: UUID, events: Sequence[StoredEvent], chain: IntegrityReport
) -> IntegrityReport:
    if not chain.intact:
        return chain
    fault = _snapshot_fault(app, originator_id, events) or _history_fault(
        app, originator_id, events
    )
    if fault is None:
        return chain
    version, reason = fault
    return IntegrityReport(
        intact=False,
        first_bad_version=version,
        reason=reason,
        head_version=chain.head_version,
        head_hash=chain.head_hash,
    )


def verify_all(
    app: Stagegate, against: Mapping[str, ExportedChain] | None = None
) -> list[VerifiedHistory]:
    """Verify every stored history, the policy's included, and every one in ``against``.

    ``against`` maps use case keys to their exported chains; a key in it with nothing stored
    is reported (its whole history is missing).
    """
    against = against or {}
    keys = {usecase.use_case_id(key): key for key in against}
    results = []
    for originator_id in _stored_ids(app) | set(keys):
        events, hashes = _read_history(app, originator_id)
        key = keys.get(originator_id)
        report = _verify(
            app,
            originator_id,
            events,
            _judge(originator_id, events, hashes, against.get(key) if key else None),
        )
        results.append(
            VerifiedHistory(originator_id, key or _subject(originator_id, events), report)
        )
    return sorted(results, key=lambda result: result.subject)


def _judge(
    originator_id: UUID,
    events: Sequence[StoredEvent],
    hashes: Mapping[int, tuple[str, str]],
    against: ExportedChain | None,
) -> IntegrityReport:
    faults: list[tuple[int, int | None, str]] = []  # (where it sorts, first bad version, reason)
    verified: dict[int, str] = {}  # version -> hash, over the prefix that matches its rows
    running = GENESIS
    for expected, event in enumerate(events, start=1):
        version = event.originator_version
        previous = running
        running = event_hash(previous, originator_id, version, event.topic, event.state)
        if faults:
            continue  # keep hashing, for the head; only the first fault is reported
        if version != expected:
            faults.append((expected, expected, f"version {expected} is missing"))
        elif version not in hashes:
            faults.append((version, version, f"version {version} has no stored hash"))
        elif hashes[version] != (previous, running):
            faults.append(
                (version, version, f"payload or hash of version {version} does not match its chain")
            )
        else:
            verified[version] = running
    last = events[-1].originator_version if events else 0
    if not faults and max(hashes, default=0) > last:
        # The events' hash rows outlived them: the tail was deleted from the events table.
        faults.append((last + 1, last + 1, f"version {last + 1} is missing"))
    if against is not None:
        faults.extend(_compare_with_export(verified, last, against))
    intact = not faults
    _, first_bad, reason = min(faults, key=lambda fault: fault[0]) if faults else (0, None, None)
    return IntegrityReport(intact, first_bad, reason, last, running)


def _snapshot_fault(
    app: Stagegate, originator_id: UUID, events: Sequence[StoredEvent]
) -> tuple[int, str] | None:
    """An intact chain can still be shadowed by a forged snapshot, which loading trusts:
    each snapshot must equal the replay of the events up to its version, and none may lie
    beyond the last event (loading would take it as the latest state)."""
    if app.snapshots is None:
        return None
    snapshots = {
        s.originator_version: s for s in app.snapshots.recorder.select_events(originator_id)
    }
    last = events[-1].originator_version if events else 0
    beyond = sorted(version for version in snapshots if version > last)
    if beyond:
        return beyond[0], (
            f"a snapshot at version {beyond[0]} lies beyond the last event (version {last})"
        )
    aggregate = None
    for stored in events:
        if not snapshots:
            break
        aggregate = app.mapper.to_domain_event(stored).mutate(aggregate)  # type: ignore[attr-defined]
        snapshot = snapshots.pop(stored.originator_version, None)
        if snapshot is None:
            continue
        try:
            restored = app.mapper.to_domain_event(snapshot).mutate(None)  # type: ignore[attr-defined]
        except Exception:
            restored = None
        if restored != aggregate:
            version = stored.originator_version
            return version, f"the snapshot at version {version} does not match the events before it"
    return None


def _history_fault(
    app: Stagegate, originator_id: UUID, events: Sequence[StoredEvent]
) -> tuple[int, str] | None:
    """The history rows an auditor reads must be what the chained log says, column for
    column, for every event the history projection has passed: a row edited, deleted or
    added in the read model is found here, though the log is intact."""
    database = Database(_recorder(app).datastore)
    position, numbers, rows = _history_rows(app, database, originator_id)
    projection = HistoryProjection(database)
    for stored in events:
        version = stored.originator_version
        notification_id = numbers.get(version)
        if notification_id is None or notification_id > position:
            continue  # appended after the projection's position: not projected yet
        row = rows.pop(version, None)
        try:
            expected = projection.row(
                history_entry(notification_id, originator_id, version, stored.topic, stored.state)
            )
        except ValueError as error:
            expected_error: str | None = str(error)
        else:
            expected_error = None
        if row is None:
            why = f" (the projection could not hold it: {expected_error})" if expected_error else ""
            return version, f"the history lacks version {version}{why}"
        if expected_error is not None:
            return version, f"the history shows version {version}, which it cannot hold"
        differing = [c for c, a, b in zip(HISTORY_COLUMNS, expected, row, strict=True) if a != b]
        if differing:
            return version, (
                f"the history entry of version {version} does not match the log: "
                f"{', '.join(differing)}"
            )
    if rows:
        version = min(rows)
        return version, f"the history shows version {version}, which the log does not have"
    return None


def _history_rows(
    app: Stagegate, database: Database, originator_id: UUID
) -> tuple[int, dict[int, int], dict[int, tuple[Any, ...]]]:
    """The history projection's position, the log's notification id of each version, and
    the history rows (in ``HISTORY_COLUMNS`` order) by version."""
    recorder = _recorder(app)
    events_table = database.table(recorder.events_table_name)
    number = "notification_id" if database.is_postgres else "rowid"
    with database.transaction() as curs:
        curs.execute(
            f"SELECT position FROM {database.table(POSITIONS)} WHERE projection = %s",
            (HISTORY_PROJECTION,),
        )
        found = curs.fetchone()
        curs.execute(
            f"SELECT originator_version AS version, {number} AS n FROM {events_table}"
            " WHERE originator_id = %s",
            (_event_id(database, originator_id),),
        )
        numbers = {int(r["version"]): int(r["n"]) for r in curs.fetchall()}
        curs.execute(
            f"SELECT {', '.join(HISTORY_COLUMNS)} FROM {database.table(HISTORY)}"
            " WHERE aggregate_id = %s",
            (str(originator_id),),
        )
        rows = {int(r["version"]): tuple(r[c] for c in HISTORY_COLUMNS) for r in curs.fetchall()}
    return (int(found["position"]) if found else 0), numbers, rows


def _event_id(database: Database, originator_id: UUID) -> UUID | str:
    # SQLite's events table keeps ids as bare hex (the library's choice).
    return originator_id if database.is_postgres else originator_id.hex


def _compare_with_export(
    verified: Mapping[int, str], last: int, against: ExportedChain
) -> list[tuple[int, int | None, str]]:
    head = against.head_version
    agreed = 0  # the highest exported version the stored chain matches
    for version in sorted(against.hashes):
        if version not in verified:
            break  # beyond the stored history, or past a fault the store itself shows
        if verified[version] != against.hashes[version]:
            if version == agreed + 1:
                reason = f"stored chain differs from the exported chain at version {version}"
                return [(version, version, reason)]
            # Only a sparse head disagrees: the change lies somewhere in between.
            reason = (
                f"stored chain does not match the exported hash of version {version}: "
                f"a version from {agreed + 1} to {version} was altered"
            )
            return [(agreed + 1, None, reason)]
        agreed = version
    if head > last:
        stored = f"history ends at version {last}" if last else "nothing is stored"
        reason = f"{stored} but the exported head is at version {head}"
        return [(last + 1, last + 1, reason)]
    return []


def _subject(originator_id: UUID, events: Sequence[StoredEvent]) -> str:
    if originator_id == POLICY_ID:
        return POLICY_SUBJECT
    if events and events[0].originator_version == 1:
        key = _decoded(events[0].state).get("key")
        if isinstance(key, str) and usecase.use_case_id(key) == originator_id:
            return key
    return str(originator_id)


# --- reading the store ------------------------------------------------------------------------


def _recorder(app: Stagegate) -> StagegatePostgresRecorder | StagegateSQLiteRecorder:
    recorder = app.recorder
    if not isinstance(recorder, (StagegatePostgresRecorder, StagegateSQLiteRecorder)):
        raise TypeError(f"no audit hash chain behind {type(recorder).__name__}")
    return recorder


def _read_history(
    app: Stagegate, originator_id: UUID
) -> tuple[list[StoredEvent], dict[int, tuple[str, str]]]:
    """The raw stored events and the hash rows (version -> (prev_hash, hash)) of one history."""
    recorder = _recorder(app)
    events = list(recorder.select_events(originator_id))
    hashes = _stored_hashes(Database(recorder.datastore), originator_id)
    last = events[-1].originator_version if events else 0
    top = max(hashes, default=0)
    if top > last:
        # An event and its hash row commit together, so a hash row past the events read
        # first is either an append since then (read it now) or a deleted event.
        events += recorder.select_events(originator_id, gt=last, lte=top)
    return events, hashes


def _stored_hashes(database: Database, originator_id: UUID) -> dict[int, tuple[str, str]]:
    with database.transaction() as curs:
        curs.execute(
            "SELECT originator_version AS version, prev_hash, hash "
            f"FROM {database.table(HASHES_TABLE)} WHERE originator_id = %s",
            (originator_id if database.is_postgres else str(originator_id),),
        )
        rows = curs.fetchall()
    return {int(r["version"]): (str(r["prev_hash"]), str(r["hash"])) for r in rows}


def _stored_ids(app: Stagegate) -> set[UUID]:
    recorder = _recorder(app)
    database = Database(recorder.datastore)
    with database.transaction() as curs:
        # Every table an auditor's view comes from: a history (or a snapshot) planted for a
        # use case with no events is found too. As text: the id columns' types differ.
        tables = [recorder.events_table_name, HASHES_TABLE]
        if app.snapshots is not None:
            tables.append(app.snapshots.recorder.events_table_name)  # type: ignore[attr-defined]
        selects = [
            f"SELECT CAST(originator_id AS TEXT) AS id FROM {database.table(t)}" for t in tables
        ]
        selects.append(f"SELECT aggregate_id AS id FROM {database.table(HISTORY)}")
        curs.execute(" UNION ".join(selects))
        rows = curs.fetchall()
    # SQLite keeps event ids as bare hex and hash-row ids with hyphens: compare as UUIDs.
    return {UUID(str(row["id"])) for row in rows}


def _decoded(state: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(state)
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


# --- exporting --------------------------------------------------------------------------------


def export_history(app: Stagegate, key: str, out: IO[str]) -> None:
    """Write one use case's history as JSON Lines, oldest first, then a line with its head.

    Each event line carries what ``infra.chain.event_hash`` covers, so the export verifies
    offline (``docs/verify_export.py``). The stored state is canonical JSON, so ``payload``
    reproduces it byte for byte; where it does not (a damaged store), ``stateBase64`` carries
    the stored bytes as they are. Lines are ASCII: any output encoding holds them.
    """
    originator_id = usecase.use_case_id(key)
    events, hashes = _read_history(app, originator_id)
    if not events:
        raise NotFound(key)
    head_hash: str | None = None
    for event in events:
        prev_hash, head_hash = hashes.get(event.originator_version, (None, None))
        out.write(_line(_event_record(key, originator_id, event, prev_hash, head_hash)))
    out.write(
        _line(
            {
                "key": key,
                "originatorId": str(originator_id),
                "headVersion": events[-1].originator_version,
                "headHash": head_hash,
            }
        )
    )


def _event_record(
    key: str, originator_id: UUID, event: StoredEvent, prev_hash: str | None, hash_: str | None
) -> dict[str, Any]:
    try:
        payload: Any = json.loads(event.state)
        reproducible = canonical_json(payload) == event.state
    except ValueError:  # not JSON, or not UTF-8, any more
        payload, reproducible = None, False
    fields = payload if isinstance(payload, dict) else {}
    raw_meta = fields.get("meta")
    meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
    record = {
        "key": key,
        "originatorId": str(originator_id),
        "version": event.originator_version,
        "type": event.topic.rpartition(":")[2].rpartition(".")[2],
        "recordedAt": fields.get("timestamp"),
        "actorId": meta.get("actor_id"),
        "actorRole": meta.get("actor_role"),
        "channel": meta.get("channel"),
        "reason": meta.get("reason"),
        "correlationId": meta.get("correlation_id"),
        "payload": payload,
        "topic": event.topic,
        "prevHash": prev_hash,
        "hash": hash_,
    }
    if not reproducible:
        record["stateBase64"] = base64.b64encode(event.state).decode("ascii")
    return record


def _line(record: Mapping[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=True) + "\n"


# --- reading an export ------------------------------------------------------------------------


def read_export(lines: Iterable[str]) -> dict[str, ExportedChain]:
    """The chain hashes in an export, or in a file of published head lines, by use case key.

    Several use cases' exports may be concatenated. Every key needs a head line; a key with
    event lines needs all of them, from version 1 to its head.
    """
    hashes: dict[str, dict[int, str]] = {}
    heads: dict[str, set[int]] = {}
    events: dict[str, set[int]] = {}
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except ValueError:
            raise ExportFormatError(f"line {number} is not JSON") from None
        if not isinstance(record, dict):
            raise ExportFormatError(f"line {number} is not a JSON object")
        is_head = "headVersion" in record
        key, version, hash_ = _fields(record, number, is_head)
        known = hashes.setdefault(key, {})
        if known.setdefault(version, hash_) != hash_:
            raise ExportFormatError(f"line {number}: two different hashes for {key} {version}")
        (heads if is_head else events).setdefault(key, set()).add(version)
    for key, versions in events.items():
        if key not in heads:
            raise ExportFormatError(f"the export of {key} has no head line (is it cut short?)")
        last = max(versions)
        if versions != set(range(1, last + 1)) or last not in heads[key]:
            raise ExportFormatError(f"the export of {key} is not every version from 1 to its head")
    return {key: ExportedChain(by_version) for key, by_version in hashes.items()}


def _fields(record: dict[str, Any], number: int, is_head: bool) -> tuple[str, int, str]:
    key = record.get("key")
    version = record.get("headVersion" if is_head else "version")
    hash_ = record.get("headHash" if is_head else "hash")
    if not isinstance(key, str) or not key:
        raise ExportFormatError(f"line {number} has no use case key")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ExportFormatError(f"line {number} has no version number")
    if not isinstance(hash_, str) or not _HASH.match(hash_):
        raise ExportFormatError(f"line {number} has no chain hash (64 hex digits)")
    originator_id = record.get("originatorId")
    if originator_id is not None and originator_id != str(usecase.use_case_id(key)):
        raise ExportFormatError(f"line {number}: originatorId is not the id of {key}")
    return key, version, hash_
