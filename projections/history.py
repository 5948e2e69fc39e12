"""The audit history: one entry per event, who did what, when, why and through what."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.eventmodel import AggregateEvent
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


def history_entry(notification_id: int, event: Any, payload: bytes) -> HistoryEntry:
    assert isinstance(event, AggregateEvent)
    meta = event.meta
    return HistoryEntry(
        notification_id=notification_id,
        aggregate_id=str(event.originator_id),
        version=event.originator_version,
        event_type=type(event).__name__,
        recorded_at=event.timestamp,
        business_time=event.business_time if isinstance(event, UseCaseEvent) else None,
        actor_id=meta.actor_id,
        actor_role=meta.actor_role.value,
        channel=meta.channel.value,
        reason=meta.reason,
        correlation_id=meta.correlation_id,
        source=meta.source,
        delivery_id=meta.delivery_id,
        corrects=meta.corrects,
        payload=payload.decode(),
    )
