"""Delivery records: each CloudEvent (``source`` + ``id``) is applied once, its first answer kept.

An accepted delivery's record is written by the store in the same transaction as its domain
event (the recorder reads it from the event's metadata, on both stores),
so a crash can never leave one without the other, and a concurrent duplicate fails on the
record's key like any lost race. A refused delivery appends nothing; its record, with the
answer it got, is written on its own.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import StoredEvent
from psycopg.sql import SQL, Composed, Identifier

from domain.application import store_errors_as_unavailable
from infra.database import Database

DELIVERIES_TABLE = "stagegate_deliveries"
COLUMNS = ("source", "delivery_id", "fingerprint", "status", "originator_id", "originator_version")
"""The columns ``rows`` gives."""
ACCEPTED = 200


@dataclass(frozen=True)
class DeliveryRecord:
    source: str
    delivery_id: str
    fingerprint: str
    status: int
    response: dict[str, Any] | None
    """The answer a refusal got; None for an accepted delivery (rebuilt from the event)."""
    use_case_id: str | None
    version: int | None
    """The version its event gave the use case, when accepted."""


def postgres_statements(schema: str, events_table: str) -> list[Composed]:
    qualified = Identifier(schema)
    table = SQL("{}.{}").format(qualified, Identifier(DELIVERIES_TABLE))
    return [
        SQL(
            "CREATE TABLE IF NOT EXISTS {} ("
            "source text NOT NULL, delivery_id text NOT NULL, fingerprint text NOT NULL, "
            "status integer NOT NULL, response text, originator_id uuid, "
            "originator_version bigint, recorded_at timestamptz NOT NULL DEFAULT now(), "
            "PRIMARY KEY (source, delivery_id))"
        ).format(table),
    ]


DELIVERY_MARK = b'"delivery_id":"'
"""In a stored state (compact canonical JSON), the mark of an event that a delivery caused."""

SQLITE_STATEMENTS = [
    f"CREATE TABLE IF NOT EXISTS {DELIVERIES_TABLE} ("
    "source TEXT NOT NULL, delivery_id TEXT NOT NULL, fingerprint TEXT NOT NULL, "
    "status INTEGER NOT NULL, response TEXT, originator_id TEXT, originator_version INTEGER, "
    "recorded_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP, PRIMARY KEY (source, delivery_id))"
]


def rows(stored_events: Sequence[StoredEvent]) -> list[tuple[Any, ...]]:
    """The records of the deliveries behind these events (``COLUMNS``), written in the
    transaction inserting them. The JSON is parsed, never searched as text: only whether it
    can name a delivery at all is."""
    records = []
    for event in stored_events:
        if DELIVERY_MARK not in event.state:
            continue
        state = json.loads(event.state)
        meta = state.get("meta") if isinstance(state, dict) else None
        if isinstance(meta, dict) and meta.get("delivery_id") is not None:
            records.append(
                (
                    meta["source"],
                    meta["delivery_id"],
                    meta["delivery_fingerprint"],
                    ACCEPTED,
                    str(event.originator_id),
                    event.originator_version,
                )
            )
    return records


class DeliveryLog:
    """Reads delivery records, and writes those of refused deliveries."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.table = db.table(DELIVERIES_TABLE)

    def find(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], DeliveryRecord]:
        """The records of these (source, id) deliveries, where there are any."""
        with store_errors_as_unavailable():
            return self._find(keys)

    def _find(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], DeliveryRecord]:
        found: dict[tuple[str, str], DeliveryRecord] = {}
        if not keys:
            return found
        with self.db.transaction() as curs:
            rows = self.db.rows_by_keys(curs, self.table, ("source", "delivery_id"), keys)
        for row in rows:
            record = _record(row)
            found[(record.source, record.delivery_id)] = record
        return found

    def record_refusals(self, records: Sequence[DeliveryRecord]) -> None:
        """Keep refusals' answers; a delivery recorded meanwhile keeps its own."""
        if not records:
            return
        with store_errors_as_unavailable(), self.db.transaction() as curs:
            curs.executemany(
                f"INSERT INTO {self.table} (source, delivery_id, fingerprint, status, response)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (source, delivery_id) DO NOTHING",
                [
                    (r.source, r.delivery_id, r.fingerprint, r.status, json.dumps(r.response))
                    for r in records
                ],
            )


def _record(row: dict[str, Any]) -> DeliveryRecord:
    response = row["response"]
    version = row["originator_version"]
    return DeliveryRecord(
        source=str(row["source"]),
        delivery_id=str(row["delivery_id"]),
        fingerprint=str(row["fingerprint"]),
        status=int(row["status"]),
        response=json.loads(response) if response else None,
        use_case_id=str(row["originator_id"]) if row["originator_id"] else None,
        version=int(version) if version is not None else None,
    )
