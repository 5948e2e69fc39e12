"""Issue 8, findings 1 and 2, over HTTP on both stores: no value a caller sends can stop
stagegate. What passes validation is stored, projected and read back; what cannot be is refused
at the edge, naming the field, with nothing appended.
"""

from __future__ import annotations

from typing import Any

from infra.bootstrap import Services
from tests.builders import unique_key
from tests.e2e.cloudevents_helpers import (
    StoreMark,
    adoption,
    assert_problem,
    cloud_event,
    post,
    registered,
)
from tests.e2e.conftest import Api

YEAR_ONE = "0001-01-01T00:30:00+01:00"
"""Valid ISO 8601, but before 1970: in UTC it is year 0, which Python cannot even hold."""
ESCAPED_NUL = "\\u0000"
"""Six characters: backslash, u, 0, 0, 0, 0 (not a NUL character, which text refuses)."""

EVERYTHING = """
query Everything($key: String!) {
  useCase(key: $key) { key title version history(last: 50) { edges { node { version payload } } } }
  useCases(first: 100) { totalCount edges { node { key title } } }
  backlog(first: 100) { edges { node { key } } }
  portfolio { stages { stage count } }
}
"""


def _everything(api: Api, key: str) -> dict[str, Any]:
    body = api.gql(EVERYTHING, {"key": key})
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


def test_a_year_one_business_time_is_refused_naming_the_field(api: Api) -> None:
    key = unique_key()
    api.mutate("registerUseCase", {"key": key, "title": "Year one"})

    result = api.mutate(
        "recordAdoption",
        {"key": key, "activeUsers": 1, "targetUsers": 2, "measuredAt": YEAR_ONE},
    )

    assert result["__typename"] == "ValidationFailed", result
    assert [e["path"] for e in result["errors"]] == ["measuredAt"]
    assert "1970" in result["errors"][0]["message"]
    everything = _everything(api, key)
    assert everything["useCase"]["version"] == 1
    assert key in [edge["node"]["key"] for edge in everything["useCases"]["edges"]]


def test_a_year_one_cloudevent_time_is_refused_naming_the_attribute(
    api: Api, services: Services
) -> None:
    key = registered(services.app).key
    mark = StoreMark.take(services)

    response = post(api, adoption(key, time=YEAR_ONE))

    problem = assert_problem(response, 422, "invalid-data")
    assert [e["path"] for e in problem["errors"]] == ["time"]
    assert mark.appended_since(services) == 0
    assert _everything(api, key)["useCase"]["version"] == 1


def test_text_holding_an_escaped_nul_is_stored_projected_and_read_back(
    api: Api, services: Services
) -> None:
    key = unique_key()
    title = f"Invoices {ESCAPED_NUL} and {ESCAPED_NUL}"
    registered_ = api.mutate("registerUseCase", {"key": key, "title": title})
    assert registered_["__typename"] == "UseCase", registered_
    reason = f"raised by a monitor that wrote {ESCAPED_NUL}"
    response = post(
        api,
        cloud_event(
            "stagegate.quality.alert_raised",
            key,
            {"severity": "HIGH", "description": reason, "alertId": f"a{ESCAPED_NUL}"},
        ),
    )
    assert response.status_code == 200, response.text
    retired = api.mutate("retire", {"key": key, "reason": reason})
    assert retired["__typename"] == "UseCase", retired

    everything = _everything(api, key)

    assert everything["useCase"]["title"] == title
    assert everything["useCase"]["version"] == 3
    payloads = [edge["node"]["payload"] for edge in everything["useCase"]["history"]["edges"]]
    assert len(payloads) == 3
    assert all("\\\\u0000" in payload for payload in payloads)
    assert {"key": key, "title": title} in [
        edge["node"] for edge in everything["useCases"]["edges"]
    ]
    # The read models kept up with every event, the ones after the escaped text included,
    # and set none aside.
    assert services.read_models.catch_up() == 0
    assert services.read_models.projection_faults() == (0, [])


def test_as_of_any_instant_answers_without_an_error(api: Api) -> None:
    key = unique_key()
    api.mutate("registerUseCase", {"key": key, "title": "Instants"})
    query = (
        "query($key: String!) { useCase(key: $key) {"
        ' first: asOf(at: "0001-01-01T00:30:00+01:00") { version }'
        ' before: asOf(at: "1969-12-31T23:59:59Z") { version }'
        ' last: asOf(at: "9999-12-31T23:59:59-05:00") { version } } }'
    )

    body = api.gql(query, {"key": key}, token=api.tokens.auditor)

    assert "errors" not in body, body
    assert body["data"]["useCase"] == {"first": None, "before": None, "last": {"version": 1}}
