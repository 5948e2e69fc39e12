"""The audit history: one entry per event, who did what, when, why and through what.

An entry is read from the event as stored (its canonical JSON), by one function that the read
model, its rebuild and the integrity check all use: no second copy of these rules exists, in
SQL or elsewhere, and the JSON is parsed, never edited as text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any
from uuid import UUID

from eventsourcing.utils import resolve_topic

from domain.usecase.events import UseCaseEvent


@dataclass(frozen=True)
class HistoryEntry:
    notification_id: int
    aggregate_id: str
    version: int
    event_type: str
    recorded_at: datetime
    """The server's clock when the event was written."""
    business_time: datetime | None
    """When the reported fact happened (a measurement, a deployment), if the event has one."""
    actor_id: str
    actor_role: str
    channel: str
    reason: str | None
    correlation_id: str
    source: str | None
    delivery_id: str | None
    corrects: int | None
    payload: str
    """The event as stored: canonical JSON."""


class UnreadableEvent(ValueError):
    """A stored event that is not the JSON of an audited event (damaged, or not ours)."""


def history_entry(
    notification_id: int, aggregate_id: UUID | str, version: int, topic: str, state: bytes
) -> HistoryEntry:
    """The history entry of one stored event; UnreadableEvent if its bytes cannot be one."""
    try:
        payload = state.decode()
        fields = json.loads(payload)
        meta = fields["meta"]
        business_time = _at_path(fields, _business_time_path(topic))
        return HistoryEntry(
            notification_id=notification_id,
            aggregate_id=str(aggregate_id),
            version=version,
            event_type=topic.rpartition(":")[2].rpartition(".")[2],
            recorded_at=datetime.fromisoformat(fields["timestamp"]),
            business_time=datetime.fromisoformat(business_time) if business_time else None,
            actor_id=str(meta["actor_id"]),
            actor_role=str(meta["actor_role"]),
            channel=str(meta["channel"]),
            reason=meta.get("reason"),
            correlation_id=str(meta["correlation_id"]),
            source=meta.get("source"),
            delivery_id=meta.get("delivery_id"),
            corrects=meta.get("corrects"),
            payload=payload,
        )
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise UnreadableEvent(
            f"version {version} of {aggregate_id} cannot be read as an audited event: {error!r}"
        ) from None


@cache
def _business_time_path(topic: str) -> tuple[str, ...]:
    try:
        event_class = resolve_topic(topic)
    except Exception:  # an unknown topic has no business time to read
        return ()
    if isinstance(event_class, type) and issubclass(event_class, UseCaseEvent):
        return event_class.business_time_path
    return ()


def _at_path(fields: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = fields
    for name in path:
        value = value[name]
    return value if path else None
