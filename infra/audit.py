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
from collections.abc import Iterable, Iterator, Mapping, Sequence
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
from infra.readmodels.schema import FAULTS, HISTORY, POSITIONS
from infra.recorders import StagegatePostgresRecorder, StagegateSQLiteRecorder
from infra.serialization import canonical_json
from projections.history import history_entry

HISTORY_PROJECTION = HistoryProjection.name
POLICY_SUBJECT = "(policy)"
NOT_AN_ID = UUID(int=0)
"""Stands for an id found in the store that is not a UUID (so no history's)."""
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
    stored = _read(app, use_case_id)
    return _verify(
        app, use_case_id, stored, _judge(use_case_id, stored.events, stored.hashes, against)
    )


def _verify(
    app: Stagegate, originator_id: UUID, stored: _Stored, chain: IntegrityReport
) -> IntegrityReport:
    if not chain.intact:
        return chain
    fault = _snapshot_fault(app, stored) or _history_fault(app, originator_id, stored)
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
    is reported (its whole history is missing), and so is an id in the store that is no
    history's at all (rows planted in a read model).
    """
    against = against or {}
    keys = {usecase.use_case_id(key): key for key in against}
    ids, not_ids = _stored_ids(app)
    results = [_not_a_history(text) for text in not_ids]
    for originator_id in ids | set(keys):
        stored = _read(app, originator_id)
        key = keys.get(originator_id)
        chain = _judge(
            originator_id, stored.events, stored.hashes, against.get(key) if key else None
        )
        report = _verify(app, originator_id, stored, chain)
        results.append(
            VerifiedHistory(originator_id, key or _subject(originator_id, stored.events), report)
        )
    return sorted(results, key=lambda result: result.subject)


def _not_a_history(text: str) -> VerifiedHistory:
    reason = f"the history holds rows for '{text[:100]}', which is not the id of any history"
    return VerifiedHistory(NOT_AN_ID, text, IntegrityReport(False, None, reason, 0, GENESIS))


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


def _snapshot_fault(app: Stagegate, stored: _Stored) -> tuple[int, str] | None:
    """An intact chain can still be shadowed by a forged snapshot, which loading trusts:
    each snapshot must equal the replay of the events up to its version, and none may lie
    beyond the last event (loading would take it as the latest state)."""
    snapshots = dict(stored.snapshots)
    events = stored.events
    last = events[-1].originator_version if events else 0
    beyond = sorted(version for version in snapshots if version > last)
    if beyond:
        return beyond[0], (
            f"a snapshot at version {beyond[0]} lies beyond the last event (version {last})"
        )
    aggregate = None
    for event in events:
        if not snapshots:
            break
        aggregate = app.mapper.to_domain_event(event).mutate(aggregate)  # type: ignore[attr-defined]
        snapshot = snapshots.pop(event.originator_version, None)
        if snapshot is None:
            continue
        try:
            restored = app.mapper.to_domain_event(snapshot).mutate(None)  # type: ignore[attr-defined]
        except Exception:
            restored = None
        if restored != aggregate:
            version = event.originator_version
            return version, f"the snapshot at version {version} does not match the events before it"
    return None


def _history_fault(app: Stagegate, originator_id: UUID, stored: _Stored) -> tuple[int, str] | None:
    """The history rows an auditor reads must be what the chained log says, column for
    column: a row edited, deleted or added in the read model is found here, though the log
    is intact. Every row is compared with its event; a missing row counts only up to where
    the history projection has got, and one it set aside says so."""
    projection = HistoryProjection(Database(_recorder(app).datastore))
    rows = dict(stored.history)
    for event in stored.events:
        version = event.originator_version
        notification_id = stored.numbers[version]
        row = rows.pop(version, None)
        if row is None:
            if notification_id > stored.history_position:
                continue  # appended after the projection's position: not projected yet
            set_aside = stored.set_aside.get(version)
            why = f": the history projection set it aside ({set_aside})" if set_aside else ""
            return version, f"the history lacks version {version}{why}"
        try:
            expected = projection.row(
                history_entry(notification_id, originator_id, version, event.topic, event.state)
            )
        except ValueError:
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


@dataclass(frozen=True)
class _Stored:
    """Everything stored of one history, read in one snapshot of the database: a write
    committed while it is checked can then not look like a tampering."""

    events: list[StoredEvent]
    numbers: dict[int, int]
    """Version -> the event's position in the log (notification id)."""
    hashes: dict[int, tuple[str, str]]
    """Version -> (prev_hash, hash)."""
    snapshots: dict[int, StoredEvent]
    history: dict[int, tuple[Any, ...]]
    """Version -> the history row, in ``HISTORY_COLUMNS`` order."""
    history_position: int
    set_aside: dict[int, str]
    """Version -> why the history projection set the event aside."""


def _read(app: Stagegate, originator_id: UUID) -> _Stored:
    recorder = _recorder(app)
    database = Database(recorder.datastore)
    table = database.table
    number = database.log_position_column
    stored_id = database.stored_uuid(originator_id)
    with database.consistent_read() as curs:
        curs.execute(
            f"SELECT {number} AS n, originator_version AS version, topic, state"
            f" FROM {table(recorder.events_table_name)} WHERE originator_id = %s"
            " ORDER BY originator_version",
            (stored_id,),
        )
        event_rows = curs.fetchall()
        curs.execute(
            f"SELECT originator_version AS version, prev_hash, hash FROM {table(HASHES_TABLE)}"
            " WHERE originator_id = %s",
            (database.uuid(originator_id),),
        )
        hashes = {int(r["version"]): (str(r["prev_hash"]), str(r["hash"])) for r in curs.fetchall()}
        snapshots: dict[int, StoredEvent] = {}
        if app.snapshots is not None:
            snapshot_table = app.snapshots.recorder.events_table_name  # type: ignore[attr-defined]
            curs.execute(
                f"SELECT originator_version AS version, topic, state FROM {table(snapshot_table)}"
                " WHERE originator_id = %s",
                (stored_id,),
            )
            snapshots = {
                int(r["version"]): _stored_event(originator_id, r) for r in curs.fetchall()
            }
        curs.execute(
            f"SELECT {', '.join(HISTORY_COLUMNS)} FROM {table(HISTORY)} WHERE aggregate_id = %s",
            (str(originator_id),),
        )
        history = {int(r["version"]): tuple(r[c] for c in HISTORY_COLUMNS) for r in curs.fetchall()}
        curs.execute(
            f"SELECT position FROM {table(POSITIONS)} WHERE projection = %s",
            (HISTORY_PROJECTION,),
        )
        found = curs.fetchone()
        curs.execute(
            f"SELECT version, reason FROM {table(FAULTS)}"
            " WHERE projection = %s AND aggregate_id = %s",
            (HISTORY_PROJECTION, str(originator_id)),
        )
        set_aside = {int(r["version"]): str(r["reason"]) for r in curs.fetchall()}
    return _Stored(
        events=[_stored_event(originator_id, r) for r in event_rows],
        numbers={int(r["version"]): int(r["n"]) for r in event_rows},
        hashes=hashes,
        snapshots=snapshots,
        history=history,
        history_position=int(found["position"]) if found else 0,
        set_aside=set_aside,
    )


def _stored_event(originator_id: UUID, row: dict[str, Any]) -> StoredEvent:
    return StoredEvent(
        originator_id=originator_id,
        originator_version=int(row["version"]),
        topic=str(row["topic"]),
        state=bytes(row["state"]),
    )


def _stored_ids(app: Stagegate) -> tuple[set[UUID], list[str]]:
    """The ids of every stored history; and any text where an id should be that is none."""
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
    ids: set[UUID] = set()
    not_ids: list[str] = []
    for row in rows:
        try:
            ids.add(UUID(str(row["id"])))
        except ValueError:
            not_ids.append(str(row["id"]))
    return ids, sorted(not_ids)


def _decoded(state: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(state)
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


# --- exporting --------------------------------------------------------------------------------


def export_history(app: Stagegate, key: str, out: IO[str]) -> None:
    """Write one use case's history as JSON Lines (``history_lines``)."""
    for line in history_lines(app, key):
        out.write(line)


def history_lines(app: Stagegate, key: str) -> Iterator[str]:
    """One use case's history as JSON Lines, oldest first, then a line with its head; raises
    NotFound (when the first line is asked for) if there is no such use case.

    Each event line carries what ``infra.chain.event_hash`` covers, so the export verifies
    offline (``docs/verify_export.py``). The stored state is canonical JSON, so ``payload``
    reproduces it byte for byte; where it does not (a damaged store), ``stateBase64`` carries
    the stored bytes as they are. Lines are ASCII: any output encoding holds them.
    """
    originator_id = usecase.use_case_id(key)
    stored = _read(app, originator_id)
    events, hashes = stored.events, stored.hashes
    if not events:
        raise NotFound(key)
    head_hash: str | None = None
    for event in events:
        prev_hash, head_hash = hashes.get(event.originator_version, (None, None))
        yield _line(_event_record(key, originator_id, event, prev_hash, head_hash))
    yield _line(
        {
            "key": key,
            "originatorId": str(originator_id),
            "headVersion": events[-1].originator_version,
            "headHash": head_hash,
        }
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
