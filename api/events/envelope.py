"""Reading posted CloudEvents: the envelope checked by the CloudEvents SDK, the data by its kind.

Each event is judged on its own: a malformed one becomes a problem document (RFC 9457) naming
the attribute or data field at fault, and never stops the others in its batch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cloudevents.core.exceptions import CloudEventValidationError
from cloudevents.core.v1.event import CloudEvent

from api.events import kinds
from api.problems import problem
from domain.errors import ValidationFailed

MAX_ATTRIBUTE = 512
"""Longest ``source``, ``id``, ``subject`` or ``type`` accepted (characters)."""


@dataclass(frozen=True)
class PostedEvent:
    """A well-formed CloudEvent of a kind stagegate knows, with valid data."""

    source: str
    id: str
    type: str
    subject: str
    time: datetime | None
    data: kinds.EventData
    fingerprint: str
    trace_parent: str | None = None
    """The CloudEvents distributed-tracing extension's ``traceparent`` (W3C Trace Context):
    where the event's trace began. Its processing continues that trace."""
    trace_state: str | None = None


@dataclass(frozen=True)
class Rejected:
    """An event refused before it reached the domain."""

    problem: dict[str, Any]
    source: str | None = None
    id: str | None = None
    fingerprint: str | None = None
    """Set when the envelope was sound enough to record the refusal as this delivery's answer."""


def read_event(raw: Any) -> PostedEvent | Rejected:
    if not isinstance(raw, dict):
        return Rejected(_invalid([("", "a CloudEvent is a JSON object")]))
    errors = _envelope_errors(raw)
    if errors:
        return Rejected(_invalid(errors))
    attributes = {k: v for k, v in raw.items() if k not in ("data", "data_base64")}
    if "time" in attributes:
        try:
            attributes["time"] = datetime.fromisoformat(attributes["time"])
        except (ValueError, TypeError):
            return Rejected(_invalid([("time", "must be an RFC 3339 timestamp")]))
    try:
        event = CloudEvent(attributes, raw.get("data"))
    except CloudEventValidationError as error:
        return Rejected(
            _invalid([(name, str(e)) for name, found in error.errors.items() for e in found])
        )
    source, event_id = str(event.get_source()), str(event.get_id())
    fingerprint = delivery_fingerprint(raw)
    recordable = {"source": source, "id": event_id, "fingerprint": fingerprint}
    kind = kinds.KINDS.get(event.get_type())
    if kind is None:
        known = ", ".join(sorted(kinds.KINDS))
        return Rejected(
            problem(
                "unknown-event-type",
                "Unknown event type",
                422,
                f"stagegate does not accept events of type '{event.get_type()}'; it accepts: "
                f"{known}.",
            ),
            **recordable,
        )
    occurred = event.get_time()
    if occurred is not None and occurred.tzinfo is None:
        return Rejected(_invalid([("time", "needs a time zone")]), **recordable)
    try:
        data = kinds.parse_data(kind.name, raw.get("data"))
    except ValidationFailed as error:
        return Rejected(invalid_data(error), **recordable)
    return PostedEvent(
        source=source,
        id=event_id,
        type=kind.name,
        subject=str(event.get_subject()),
        time=occurred,
        data=data,
        fingerprint=fingerprint,
        trace_parent=_text(raw.get("traceparent")),
        trace_state=_text(raw.get("tracestate")),
    )


def _text(value: Any) -> str | None:
    """An optional extension attribute's value, if it is text (anything else is ignored, as
    W3C Trace Context says of a malformed ``traceparent``)."""
    return value if isinstance(value, str) else None


def delivery_fingerprint(event: Mapping[str, Any]) -> str:
    """SHA-256 of a posted event's canonical JSON: what a redelivery must repeat exactly."""
    canonical = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def invalid_data(error: ValidationFailed) -> dict[str, Any]:
    return problem(
        "invalid-data",
        "Invalid event data",
        422,
        error.message,
        errors=[{"path": e.path, "message": e.message} for e in error.errors],
    )


def _envelope_errors(raw: dict[str, Any]) -> list[tuple[str, str]]:
    """What the SDK does not insist on, but stagegate needs (it fills in a missing id)."""
    errors = []
    for name in ("specversion", "id", "source", "type", "subject"):
        value = raw.get(name)
        if value is None:
            errors.append((name, "is required"))
        elif not isinstance(value, str) or not value.strip():
            errors.append((name, "must be a non-empty string"))
        elif len(value) > MAX_ATTRIBUTE:
            errors.append((name, f"must be at most {MAX_ATTRIBUTE} characters"))
        elif any(ord(character) < 32 or ord(character) == 127 for character in value):
            errors.append((name, "must not contain control characters"))
        elif not _encodable(value):
            errors.append((name, "must be Unicode text (it holds an unpaired surrogate)"))
    content_type = raw.get("datacontenttype")
    if content_type is not None and content_type not in ("application/json", "text/json"):
        errors.append(("datacontenttype", "must be application/json: data is a JSON object"))
    if "data_base64" in raw:
        errors.append(("data_base64", "binary data is not accepted; send data as JSON"))
    return errors


def _encodable(value: str) -> bool:
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def _invalid(errors: list[tuple[str, str]]) -> dict[str, Any]:
    summary = "; ".join(f"{path or '(event)'}: {message}" for path, message in errors)
    return problem(
        "invalid-cloudevent",
        "Invalid CloudEvent",
        400,
        f"The event is not a valid CloudEvent 1.0 for stagegate: {summary}",
        errors=[{"path": path, "message": message} for path, message in errors],
    )
