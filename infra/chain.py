"""The audit hash chain, written in the same transaction as the events it covers.

Each event's hash covers its canonical content and the previous event's hash, per use case:

    hash(n) = SHA-256( hash(n-1) "\\n" originator_id "\\n" version "\\n" topic "\\n" state )

with ``hash(0)`` = 64 zeros, ``originator_id`` in canonical UUID form, ``version`` in decimal,
and ``state`` the stored bytes (canonical JSON). Rewriting, dropping or reordering any event
breaks every later hash; the chain head, exported and kept outside the database, also catches
a chain an attacker recomputed. On PostgreSQL, triggers refuse UPDATE, DELETE and TRUNCATE on
the events and their hashes, so tampering takes a deliberate superuser act.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from psycopg.sql import SQL, Composable, Composed, Identifier

GENESIS = "0" * 64
HASHES_TABLE = "stagegate_event_hashes"


def event_hash(
    previous: str, originator_id: UUID | str, version: int, topic: str, state: bytes
) -> str:
    """The chain hash of one event (see the module docstring for the definition)."""
    header = f"{previous}\n{UUID(str(originator_id))}\n{version}\n{topic}\n".encode()
    return hashlib.sha256(header + state).hexdigest()


class ChainBroken(Exception):
    """An event's predecessor has no hash: the chain was damaged; refuse to extend it."""

    def __init__(self, originator_id: str, version: int) -> None:
        super().__init__(
            f"version {version - 1} of {originator_id} has no chain hash; the audit chain is "
            f"damaged, so version {version} is not written (run 'stagegate audit verify')"
        )


def chain_rows(
    stored_events: Sequence[StoredEvent], previous: dict[tuple[str, int], str]
) -> list[tuple[str, int, str, str]]:
    """(originator_id, version, prev_hash, hash) for each event, chaining within the batch.

    ``previous`` holds the stored hash of each aggregate's event just before the batch.
    """
    heads: dict[str, str] = {}
    rows = []
    for event in stored_events:
        key = str(UUID(str(event.originator_id)))
        prev = heads.get(key)
        if prev is None and event.originator_version == 1:
            prev = GENESIS
        elif prev is None:
            prev = previous.get((key, event.originator_version - 1))
            if prev is None:
                raise ChainBroken(key, event.originator_version)
        digest = event_hash(prev, key, event.originator_version, event.topic, event.state)
        rows.append((key, event.originator_version, prev, digest))
        heads[key] = digest
    return rows


def predecessors(stored_events: Iterable[StoredEvent]) -> list[tuple[str, int]]:
    """(originator_id, version) of the stored event each aggregate's first one here follows."""
    firsts: dict[str, int] = {}
    for event in stored_events:
        key = str(UUID(str(event.originator_id)))
        firsts[key] = min(firsts.get(key, event.originator_version), event.originator_version)
    return [(key, version - 1) for key, version in firsts.items() if version > 1]


COLUMNS = ("originator_id", "originator_version", "prev_hash", "hash")
"""The hashes table's columns, as ``chain_rows`` gives them."""


def postgres_statements(schema: str, events_table: str) -> list[Composed]:
    """The hashes table, append-only triggers on the events and their hashes, the lock
    function. (The hashes themselves are computed by the recorder: ``chain_rows``.)"""
    qualified = Identifier(schema)
    events = SQL("{}.{}").format(qualified, Identifier(events_table))
    hashes = SQL("{}.{}").format(qualified, Identifier(HASHES_TABLE))
    refuse = refuse_function(schema)
    return [
        SQL(
            "CREATE TABLE IF NOT EXISTS {} ("
            "originator_id uuid NOT NULL, originator_version bigint NOT NULL, "
            "prev_hash char(64) NOT NULL, hash char(64) NOT NULL, "
            "PRIMARY KEY (originator_id, originator_version))"
        ).format(hashes),
        SQL(
            "CREATE OR REPLACE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION 'stagegate: % on % refused: the audit log is "
            "append-only', TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege'; "
            "END $$"
        ).format(refuse),
        *append_only(events, refuse),
        *append_only(hashes, refuse),
        *lock_statements(schema, events_table),
    ]


LOCK_FUNCTION = "stagegate_lock_log"


def lock_function(schema: str) -> Composed:
    """The function that takes the events table's append lock (see ``lock_statements``)."""
    return SQL("{}.{}").format(Identifier(schema), Identifier(LOCK_FUNCTION))


def lock_statements(schema: str, events_table: str) -> list[Composed]:
    """A function that takes the append lock for its caller, as the tables' owner.

    Appends are serialised by an EXCLUSIVE lock on the events table, and PostgreSQL grants
    that lock only to roles that may UPDATE, DELETE or TRUNCATE the table: a service role
    that may only append could not take it. This function, run with its owner's rights
    (SECURITY DEFINER, with a fixed search path), takes it for the calling transaction and
    does nothing else; only roles granted EXECUTE may call it.
    """
    events = SQL("{}.{}").format(Identifier(schema), Identifier(events_table))
    function = lock_function(schema)
    return [
        SQL(
            "CREATE OR REPLACE FUNCTION {}() RETURNS void LANGUAGE plpgsql SECURITY DEFINER "
            "SET search_path = pg_catalog, pg_temp AS $$ "
            "BEGIN LOCK TABLE {} IN EXCLUSIVE MODE; END $$"
        ).format(function, events),
        SQL("REVOKE ALL ON FUNCTION {}() FROM PUBLIC").format(function),
    ]


def refuse_function(schema: str) -> Composed:
    return SQL("{}.stagegate_refuse_rewrite").format(Identifier(schema))


def append_only(table: Composable, refuse: Composable) -> list[Composed]:
    """Triggers refusing UPDATE, DELETE and TRUNCATE on ``table`` (via function ``refuse``)."""
    return [
        SQL(
            "CREATE OR REPLACE TRIGGER stagegate_append_only BEFORE UPDATE OR DELETE "
            "ON {} FOR EACH ROW EXECUTE FUNCTION {}()"
        ).format(table, refuse),
        SQL(
            "CREATE OR REPLACE TRIGGER stagegate_no_truncate BEFORE TRUNCATE "
            "ON {} FOR EACH STATEMENT EXECUTE FUNCTION {}()"
        ).format(table, refuse),
    ]


SQLITE_STATEMENTS = [
    f"CREATE TABLE IF NOT EXISTS {HASHES_TABLE} ("
    "originator_id TEXT NOT NULL, originator_version INTEGER NOT NULL, "
    "prev_hash TEXT NOT NULL, hash TEXT NOT NULL, "
    "PRIMARY KEY (originator_id, originator_version)) WITHOUT ROWID"
]
