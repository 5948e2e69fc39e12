"""A length refused on text speaks of characters, never of "items", whichever way it came.

pydantic says "Value should have at least 10 items" when a length constraint sits on a text
that another validator has already passed (the value statement, a deployment's environment):
a user who wrote a short sentence reads that as nonsense. Both ways in are checked: a GraphQL
mutation (``ValidationFailed``) and a posted CloudEvent (``invalid-data``).
"""

from __future__ import annotations

import re

from infra.bootstrap import Services
from tests.e2e.cloudevents_helpers import (
    DEPLOYMENT,
    assert_problem,
    cloud_event,
    post,
    registered_and_marked,
)
from tests.e2e.conftest import Api


def _speaks_of_characters(message: str, limit: int) -> None:
    assert "item" not in message, message
    assert re.search(rf"\b{limit} characters\b", message), message


def test_a_short_value_statement_is_refused_in_characters(services: Services, api: Api) -> None:
    journey, version, _ = registered_and_marked(services)
    refused = api.mutate(
        "stateValue",
        {
            "key": journey.key,
            "statement": "Saves.",
            "estimatedAnnualValue": "1000",
            "currency": "EUR",
        },
        api.tokens.business_owner,
    )

    assert refused["__typename"] == "ValidationFailed", refused
    [error] = refused["errors"]
    assert error["path"] == "statement"
    _speaks_of_characters(error["message"], 10)
    assert "6" in error["message"]  # how long it was, so the writer knows how far off it is
    assert api.version(journey.key) == version


def test_a_long_environment_in_a_cloudevent_is_refused_in_characters(
    services: Services, api: Api
) -> None:
    journey, _, mark = registered_and_marked(services)

    response = post(
        api, cloud_event(DEPLOYMENT, journey.key, {"version": "v1", "environment": "e" * 65})
    )

    document = assert_problem(response, 422, "invalid-data")
    [error] = document["errors"]
    assert error["path"] == "data.environment"
    _speaks_of_characters(error["message"], 64)
    assert mark.appended_since(services) == 0
