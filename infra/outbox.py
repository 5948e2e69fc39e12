"""The outbox: what other systems are told about, written in the same transaction as the event.

Stage transitions, deployments, rollbacks and quality alerts enter the outbox as their events
are inserted (the recorder writes the rows, in the same transaction, on both stores); a gate
refusal, which appends no event, enters it on its own. The webhook worker
(``infra.webhooks``) delivers it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic
from psycopg.sql import SQL, Composed, Identifier

from domain import clock
from domain.errors import GateBlocked
from domain.metadata import Actor
from domain.notifications import Notification
from domain.usecase import events as e
from infra.database import Database

OUTBOX_TABLE = "stagegate_outbox"

NOTIFIED_TOPICS: dict[str, str] = {
    get_topic(event): notification.value
    for event, notification in (
        (e.StageAdvanced, Notification.STAGE_ADVANCED),
        (e.ReturnedToStage, Notification.STAGE_RETURNED),
        (e.Retired, Notification.USE_CASE_RETIRED),
        (e.DeploymentRecorded, Notification.DEPLOYMENT_RECORDED),
        (e.RolledBack, Notification.DEPLOYMENT_ROLLED_BACK),
        (e.QualityAlertRaised, Notification.QUALITY_ALERT_RAISED),
        (e.QualityAlertResolved, Notification.QUALITY_ALERT_RESOLVED),
    )
}
"""Event topic -> the notification it is announced as (a gate refusal has no event)."""


def postgres_statements(schema: str, events_table: str) -> list[Composed]:
    """The outbox table (the recorder writes its rows: ``rows``)."""
    qualified = Identifier(schema)
    table = SQL("{}.{}").format(qualified, Identifier(OUTBOX_TABLE))
    return [
        SQL(
            "CREATE TABLE IF NOT EXISTS {} ("
            "outbox_id bigserial PRIMARY KEY, kind text NOT NULL, originator_id uuid, "
            "originator_version bigint, payload text NOT NULL, "
            "created_at timestamptz NOT NULL DEFAULT now())"
        ).format(table),
    ]


SQLITE_STATEMENTS = [
    f"CREATE TABLE IF NOT EXISTS {OUTBOX_TABLE} ("
    "outbox_id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, originator_id TEXT, "
    "originator_version INTEGER, payload TEXT NOT NULL, "
    "created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"
]


def rows(stored_events: Sequence[StoredEvent]) -> list[tuple[str, str, int, str]]:
    """The outbox rows of the events other systems are told about (``COLUMNS``)."""
    return [
        (
            NOTIFIED_TOPICS[event.topic],
            str(event.originator_id),
            event.originator_version,
            event.state.decode(),
        )
        for event in stored_events
        if event.topic in NOTIFIED_TOPICS
    ]


COLUMNS = ("kind", "originator_id", "originator_version", "payload")
"""The outbox columns ``rows`` gives."""


def announce_gate_blocked(db: Database, key: str, blocked: GateBlocked, actor: Actor) -> None:
    """A refused forward move appends no event: it enters the outbox on its own.

    On PostgreSQL it takes the lock every append takes on the events table: outbox ids are
    then handed out and committed in one order, which the webhook fan-out (reading past a
    position) relies on. Without it, a refusal committing late would be passed over.
    """
    payload: dict[str, Any] = {
        "key": key,
        "timestamp": clock.now().isoformat(),
        "stage": blocked.stage.value,
        "target": blocked.target.value,
        "unmet": [{"code": r.code.value, "message": r.message} for r in blocked.unmet],
        "policyVersion": blocked.policy_version,
        "actorId": actor.id,
        "actorRole": actor.role.value,
    }
    with db.transaction() as curs:
        db.lock_log(curs)
        curs.execute(
            f"INSERT INTO {db.table(OUTBOX_TABLE)} (kind, payload) VALUES (%s, %s)",
            (Notification.GATE_BLOCKED.value, json.dumps(payload, sort_keys=True)),
        )
