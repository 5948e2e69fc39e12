"""Who did it, through what, and why: the metadata every event carries."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, model_validator

from domain.values import Channel, Role


class Actor(BaseModel):
    """The authenticated caller: who they are (``id``) and what their token allows (``role``)."""

    model_config = ConfigDict(frozen=True)

    id: str
    role: Role


class EventMeta(BaseModel):
    """Recorded on every event beside the server's clock (the event ``timestamp``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    actor_id: str
    actor_role: Role
    channel: Channel
    correlation_id: str
    reason: str | None = None
    source: str | None = None
    """CloudEvents ``source`` of the delivery that caused the event, if any."""
    delivery_id: str | None = None
    """CloudEvents ``id`` of that delivery."""
    delivery_fingerprint: str | None = None
    """SHA-256 of the delivery's content: the same ``source`` + ``id`` must carry it again."""
    corrects: int | None = None
    """Version of an earlier event of the same use case that this event corrects."""


class CommandContext(BaseModel):
    """Everything about a request that is not the command itself."""

    model_config = ConfigDict(frozen=True)

    actor: Actor
    channel: Channel
    correlation_id: str
    source: str | None = None
    delivery_id: str | None = None
    delivery_fingerprint: str | None = None

    @model_validator(mode="after")
    def _a_delivery_is_named_in_full(self) -> CommandContext:
        # The store records a delivery by source + id with its fingerprint, all three or none.
        named = (self.source, self.delivery_id, self.delivery_fingerprint)
        if self.delivery_id is not None and None in named:
            raise ValueError("a delivery needs its source, id and fingerprint")
        return self

    def meta(self, reason: str | None = None, corrects: int | None = None) -> EventMeta:
        return EventMeta(
            actor_id=self.actor.id,
            actor_role=self.actor.role,
            channel=self.channel,
            correlation_id=self.correlation_id,
            reason=reason,
            source=self.source,
            delivery_id=self.delivery_id,
            delivery_fingerprint=self.delivery_fingerprint,
            corrects=corrects,
        )
