"""Event schema evolution: a stored event is never rewritten, so every form ever stored must
load as the event type's current form (the library's ``class_version`` and ``upcast_vN_vN+1``).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic

import domain.policy
import domain.usecase.events
from domain.eventmodel import DomainEvent
from infra.serialization import CanonicalJSONTranscoder, PydanticMapper, canonical_json


class PaintApplied(DomainEvent):
    """A stand-in event type on its third form: v1 stored ``colour``; v2 renamed it ``color``;
    v3 added ``coats``, which v1 and v2 events had one of."""

    class_version: ClassVar[int] = 3

    color: str
    coats: int

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state["color"] = state.pop("colour")

    @staticmethod
    def upcast_v2_v3(state: dict[str, Any]) -> None:
        state["coats"] = 1


MAPPER = PydanticMapper(transcoder=CanonicalJSONTranscoder())
ORIGINATOR = uuid.uuid4()
WHEN = "2026-11-01T09:00:00Z"


def _stored(state: dict[str, Any], topic: str = get_topic(PaintApplied)) -> StoredEvent:
    return StoredEvent(
        originator_id=ORIGINATOR, originator_version=1, topic=topic, state=canonical_json(state)
    )


@pytest.mark.parametrize(
    "stored_state",
    [
        {"colour": "red", "timestamp": WHEN},
        {"class_version": 2, "color": "red", "timestamp": WHEN},
    ],
    ids=["stored at v1", "stored at v2"],
)
def test_an_event_stored_in_an_earlier_form_loads_in_the_current_one(
    stored_state: dict[str, Any],
) -> None:
    event = MAPPER.to_domain_event(_stored(stored_state))

    assert isinstance(event, PaintApplied)
    assert (event.color, event.coats) == ("red", 1)
    assert event.timestamp == datetime(2026, 11, 1, 9, tzinfo=UTC)


def test_an_event_is_stored_with_its_class_version_and_loads_as_it_was() -> None:
    event = PaintApplied(
        originator_id=ORIGINATOR,
        originator_version=1,
        timestamp=datetime(2026, 11, 1, 9, tzinfo=UTC),
        color="blue",
        coats=2,
    )

    stored = MAPPER.to_stored_event(event)

    assert json.loads(stored.state)["class_version"] == 3
    assert MAPPER.to_domain_event(stored) == event


def test_an_event_stored_by_a_newer_release_is_refused_by_name() -> None:
    newer = _stored({"class_version": 4, "color": "red", "coats": 1, "timestamp": WHEN})

    with pytest.raises(ValueError, match="PaintApplied stored at class version 4, newer than"):
        MAPPER.to_domain_event(newer)


def _event_types() -> list[type[DomainEvent]]:
    """Every event type the domain defines (the use case's and the policy's, snapshots too)."""
    found: list[type[DomainEvent]] = []
    waiting: list[type[DomainEvent]] = [DomainEvent]
    while waiting:
        event_type = waiting.pop()
        waiting.extend(event_type.__subclasses__())
        if event_type.__module__.startswith("domain."):
            found.append(event_type)
    return found


def test_every_event_type_can_load_every_form_it_was_ever_stored_in() -> None:
    types = _event_types()
    assert {domain.usecase.events.BaselineCaptured, domain.policy.Policy.Changed} <= set(types)
    missing = [
        f"{event_type.__qualname__}.upcast_v{n}_v{n + 1}"
        for event_type in types
        for n in range(1, event_type.class_version)
        if not callable(getattr(event_type, f"upcast_v{n}_v{n + 1}", None))
    ]
    assert missing == []


def test_a_policy_set_before_improvement_was_judged_loads_with_its_defaults() -> None:
    """Policy events of class version 1 knew no ``min_improvement`` nor
    ``guardrail_tolerance``: they load with the defaults the gate judges them by."""
    stored = {
        "meta": {
            "actor_id": "admin",
            "actor_role": "admin",
            "channel": "graphql",
            "correlation_id": "c-1",
        },
        "timestamp": WHEN,
        "values": {
            "measurement_window_days": 30,
            "min_adoption": 0.5,
            "min_priority_score": 1,
            "stuck_after_days": 30,
        },
    }

    event = MAPPER.to_domain_event(_stored(stored, topic=get_topic(domain.policy.Policy.Changed)))

    assert isinstance(event, domain.policy.Policy.Changed)
    assert event.values.measurement_window_days == 30
    assert (event.values.min_improvement, event.values.guardrail_tolerance) == (0.0, 0.05)
    assert json.loads(MAPPER.to_stored_event(event).state)["class_version"] == 2
