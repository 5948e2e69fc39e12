"""CloudEvents binary content mode on ``POST /v1/events``: the attributes as ``ce-`` headers,
the data as the JSON body. One event in binary mode is the same delivery as its structured
form: judged, deduplicated and answered alike."""

from __future__ import annotations

import json
from datetime import datetime

from cloudevents.core.bindings.http import to_binary
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from domain.usecase import events as e
from infra.bootstrap import Services
from tests.e2e.cloudevents_helpers import (
    ADOPTION,
    adoption,
    assert_problem,
    events_of,
    post,
    registered,
)
from tests.e2e.conftest import INTEGRATION_SOURCE, Api

WHEN = "2026-12-01T10:00:00Z"


def _binary(event: dict[str, object]) -> tuple[dict[str, str], bytes]:
    """The headers and body the CloudEvents SDK sends for ``event`` in binary mode (with a
    ``time``: the SDK gives every event one)."""
    attributes = {k: v for k, v in event.items() if k != "data"}
    attributes["time"] = datetime.fromisoformat(str(event["time"]))
    message = to_binary(CloudEvent(attributes, event["data"]), JSONFormat())  # type: ignore[arg-type]
    return message.headers, message.body


def test_an_event_in_binary_mode_is_applied_as_its_structured_form_would_be(
    services: Services, api: Api
) -> None:
    journey = registered(services.app)
    event = adoption(
        journey.key, active=21, target=60, datacontenttype="application/json", time=WHEN
    )
    headers, body = _binary(event)
    assert "ce-specversion" in headers

    response = post(api, body, content_type=None, headers=headers)

    assert response.status_code == 200, response.text
    assert response.json()["type"] == ADOPTION
    [*_, appended] = events_of(services.app, journey.key)
    assert isinstance(appended, e.AdoptionRecorded)
    assert (appended.adoption.active_users, appended.adoption.target_users) == (21, 60)
    assert appended.meta.source == INTEGRATION_SOURCE
    # The same delivery in structured mode is a redelivery: answered alike, nothing appended.
    again = post(api, event)
    assert (again.status_code, again.json()) == (200, response.json())
    assert len(events_of(services.app, journey.key)) == journey.use_case.version


def test_header_values_are_percent_decoded(services: Services, api: Api) -> None:
    journey = registered(services.app)
    event = adoption(journey.key, datacontenttype="application/json", time=WHEN)
    event["id"] = "run 7/é"
    headers, body = _binary(event)
    assert headers["ce-id"] != "run 7/é"  # the SDK percent-encodes it on the wire

    response = post(api, body, content_type=None, headers=headers)

    assert response.status_code == 200, response.text
    assert response.json()["id"] == "run 7/é"


def test_binary_mode_data_must_be_json(services: Services, api: Api) -> None:
    journey = registered(services.app)
    headers, _ = _binary(adoption(journey.key, datacontenttype="application/json", time=WHEN))
    headers["content-type"] = "text/plain"

    response = post(api, b"thirty of fifty", content_type=None, headers=headers)

    problem = assert_problem(response, 415, "unsupported-media-type")
    assert "binary content mode" in problem["detail"]


def test_a_binary_event_without_an_id_is_refused_naming_it(services: Services, api: Api) -> None:
    journey = registered(services.app)
    headers, body = _binary(adoption(journey.key, datacontenttype="application/json", time=WHEN))
    del headers["ce-id"]

    response = post(api, body, content_type=None, headers=headers)

    problem = assert_problem(response, 400, "invalid-cloudevent")
    assert {"path": "id", "message": "is required"} in problem["errors"]
    assert json.loads(body)["activeUsers"] == 30
