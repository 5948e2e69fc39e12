"""Every refusal of ``POST /v1/events`` is an RFC 9457 problem, and none appends anything.

Each test checks the HTTP status, the problem ``type`` (and the fields that name the reason:
``errors`` paths, rule ``code``), and that the store holds no new event afterwards. Refusals
of a well-formed delivery are kept in the delivery log with their answer; refusals before a
delivery can be named (transport, envelope, scope) leave no record at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from domain.errors import NotFound
from domain.values import Role
from infra.bootstrap import Services
from tests.builders import BASELINE_METRIC, PASSING_RESULTS, unique_key
from tests.e2e.cloudevents_helpers import (
    ADOPTION,
    ALERT_RAISED,
    ALERT_RESOLVED,
    BATCH,
    COST,
    DEPLOYMENT,
    DOCUMENTED_MAX_BATCH,
    DOCUMENTED_MAX_BODY_BYTES,
    EVALUATION,
    METRIC,
    PROBLEM_JSON,
    PROBLEMS,
    ROLLBACK,
    STRUCTURED,
    StoreMark,
    adoption,
    assert_problem,
    cloud_event,
    deliveries_of,
    hours_ago,
    in_acceptance,
    in_deployment,
    post,
    post_batch,
    registered,
    registered_and_marked,
)
from tests.e2e.conftest import INTEGRATION_SOURCE, Api

OTHER_SOURCE = "https://deploy.example.com/pipeline"


def _nothing_appended(services: Services, mark: StoreMark, *, recorded: bool = False) -> None:
    assert mark.appended_since(services) == 0
    if not recorded:
        assert mark.new_deliveries(services) == []


# --- who may post (acceptance 4 and 6) ----------------------------------------------------------


def test_no_token_is_401(services: Services, api: Api) -> None:
    journey = registered(services.app)
    mark = StoreMark.take(services)

    response = post(api, adoption(journey.key), token=None)

    assert_problem(response, 401, "http-401")
    assert response.headers["www-authenticate"] == "Bearer"
    unknown = post(api, adoption(journey.key), token="sgt_0000000000000000_nope")
    assert_problem(unknown, 401, "http-401")
    _nothing_appended(services, mark)


@pytest.mark.parametrize("content_type", [STRUCTURED, BATCH])
def test_a_token_of_any_other_role_is_forbidden(
    services: Services, api: Api, content_type: str
) -> None:
    journey = registered(services.app)
    admin = services.tokens.issue("admin", Role.ADMIN).secret_token
    event = adoption(journey.key)
    body = event if content_type == STRUCTURED else [event]
    mark = StoreMark.take(services)

    for token in ("editor", "approver", "business_owner", "viewer", "auditor", admin):
        response = post(api, body, token=token, content_type=content_type)
        document = assert_problem(response, 403, "forbidden")
        assert "integration token" in document["detail"]

    _nothing_appended(services, mark)
    assert post(api, event).status_code == 200  # the integration's own token may


def test_a_token_for_one_source_cannot_post_as_another(services: Services, api: Api) -> None:
    journey = registered(services.app)
    event = adoption(journey.key, source=OTHER_SOURCE, id="shared-id")
    mark = StoreMark.take(services)

    response = post(api, event)

    document = assert_problem(response, 403, "source-not-allowed")
    assert INTEGRATION_SOURCE in document["detail"]
    assert OTHER_SOURCE in document["detail"]
    _nothing_appended(services, mark)
    # Nothing was recorded under the other source's name: its own token still gets through.
    owner = services.tokens.issue("deployer", Role.INTEGRATION, sources=(OTHER_SOURCE,))
    own = post(api, event, token=owner.secret_token)
    assert own.status_code == 200, own.text


def test_a_token_limited_to_some_types_cannot_post_others(services: Services, api: Api) -> None:
    journey = in_acceptance(services.app)
    token = services.tokens.issue(
        "adoption-feed", Role.INTEGRATION, sources=(INTEGRATION_SOURCE,), event_types=(ADOPTION,)
    ).secret_token
    evaluation = cloud_event(EVALUATION, journey.key, {"version": "v1", "results": PASSING_RESULTS})
    mark = StoreMark.take(services)

    response = post(api, evaluation, token=token)

    document = assert_problem(response, 403, "type-not-allowed")
    assert EVALUATION in document["detail"]
    _nothing_appended(services, mark)
    assert post(api, adoption(journey.key), token=token).status_code == 200
    assert post(api, evaluation).status_code == 200  # a token without a type list may


def test_scope_is_judged_per_event_in_a_batch(services: Services, api: Api) -> None:
    journey = in_acceptance(services.app)
    before = journey.use_case.version
    token = services.tokens.issue(
        "adoption-feed", Role.INTEGRATION, sources=(INTEGRATION_SOURCE,), event_types=(ADOPTION,)
    ).secret_token
    batch = [
        adoption(journey.key, source=OTHER_SOURCE),
        adoption(journey.key),
        cloud_event(EVALUATION, journey.key, {"version": "v1", "results": PASSING_RESULTS}),
    ]
    mark = StoreMark.take(services)

    response = post_batch(api, batch, token=token)

    assert response.status_code == 200, response.text
    refused_source, accepted, refused_type = response.json()["results"]
    assert (refused_source["status"], refused_source["type"]) == (
        403,
        PROBLEMS + "source-not-allowed",
    )
    assert accepted["httpStatus"] == 200
    assert (refused_type["status"], refused_type["type"]) == (403, PROBLEMS + "type-not-allowed")
    assert journey.use_case.version == before + 1
    assert mark.appended_since(services) == 1
    assert [d.delivery_id for d in mark.new_deliveries(services)] == [batch[1]["id"]]


# --- the transport: content type, JSON, size ----------------------------------------------------


def test_a_body_that_is_not_a_cloudevents_content_type_is_415(services: Services, api: Api) -> None:
    journey = registered(services.app)
    event = adoption(journey.key)
    mark = StoreMark.take(services)

    for content_type in ("application/json", "text/plain", "application/cloudevents", None):
        response = post(api, event, content_type=content_type)
        document = assert_problem(response, 415, "unsupported-media-type")
        assert STRUCTURED in document["detail"]

    _nothing_appended(services, mark)
    # Parameters and case do not matter to the media type.
    accepted = post(api, event, content_type="Application/CloudEvents+JSON; charset=utf-8")
    assert accepted.status_code == 200, accepted.text


@pytest.mark.parametrize(
    "body",
    [b'{"specversion": "1.0", "id": ', b"", b"\xff\xfe{}", b"{'id': 'single quotes'}", b"NaN["],
    ids=["truncated", "empty", "not-utf8", "single-quotes", "garbage"],
)
def test_malformed_json_is_400(services: Services, api: Api, body: bytes) -> None:
    mark = StoreMark.take(services)

    for content_type in (STRUCTURED, BATCH):
        response = post(api, body, content_type=content_type)
        assert_problem(response, 400, "malformed-json")

    _nothing_appended(services, mark)


def _padded(event: dict[str, Any], size: int) -> bytes:
    """The event's JSON followed by whitespace, exactly ``size`` bytes long (still valid JSON)."""
    encoded = httpx.Request("POST", "/", json=event).content
    assert len(encoded) <= size
    return encoded + b" " * (size - len(encoded))


def test_a_body_over_the_documented_1_mib_is_413(services: Services, api: Api) -> None:
    journey = registered(services.app)
    before = journey.use_case.version
    event = adoption(journey.key)
    mark = StoreMark.take(services)

    over = post(api, _padded(event, DOCUMENTED_MAX_BODY_BYTES + 1))

    document = assert_problem(over, 413, "payload-too-large")
    assert str(DOCUMENTED_MAX_BODY_BYTES) in document["detail"]
    _nothing_appended(services, mark)
    # Exactly at the limit is fine.
    at_limit = post(api, _padded(event, DOCUMENTED_MAX_BODY_BYTES))
    assert at_limit.status_code == 200, at_limit.text
    assert journey.use_case.version == before + 1


def test_a_chunked_body_over_the_limit_is_413_too(services: Services, api: Api) -> None:
    """No Content-Length to trust: the server counts what it reads, and stops there."""
    journey = registered(services.app)
    body = _padded(adoption(journey.key), DOCUMENTED_MAX_BODY_BYTES + 1)
    mark = StoreMark.take(services)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    response = api.http.post(
        "/v1/events",
        content=chunks(),
        headers={
            "Authorization": f"Bearer {api.tokens.integration}",
            "Content-Type": STRUCTURED,
        },
    )

    assert "content-length" not in {k.lower() for k in response.request.headers}
    assert_problem(response, 413, "payload-too-large")
    _nothing_appended(services, mark)


def test_a_batch_over_the_documented_500_events_is_413(services: Services, api: Api) -> None:
    journeys = [registered(services.app) for _ in range(2)]
    versions = [j.use_case.version for j in journeys]
    batch = [
        adoption(journeys[n % 2].key, active=n % 50, target=50)
        for n in range(DOCUMENTED_MAX_BATCH + 1)
    ]
    mark = StoreMark.take(services)

    over = post_batch(api, batch)

    document = assert_problem(over, 413, "payload-too-large")
    assert str(DOCUMENTED_MAX_BATCH) in document["detail"]
    _nothing_appended(services, mark)
    # Five hundred is fine, every one of them appended.
    at_limit = post_batch(api, batch[:DOCUMENTED_MAX_BATCH])
    assert at_limit.status_code == 200, at_limit.text
    assert [r["httpStatus"] for r in at_limit.json()["results"]] == [200] * DOCUMENTED_MAX_BATCH
    assert mark.appended_since(services) == DOCUMENTED_MAX_BATCH
    assert [j.use_case.version for j in journeys] == [
        v + DOCUMENTED_MAX_BATCH // 2 for v in versions
    ]


def test_a_batch_that_is_not_an_array_is_400(services: Services, api: Api) -> None:
    journey = registered(services.app)
    mark = StoreMark.take(services)

    response = post(api, adoption(journey.key), content_type=BATCH)

    assert_problem(response, 400, "invalid-batch")
    structured_array = post(api, [adoption(journey.key)], content_type=STRUCTURED)
    assert_problem(structured_array, 400, "invalid-cloudevent")
    _nothing_appended(services, mark)


# --- the envelope --------------------------------------------------------------------------------


def _without(name: str) -> Any:
    return lambda event: {k: v for k, v in event.items() if k != name}


def _with(**changes: Any) -> Any:
    return lambda event: {**event, **changes}


ENVELOPE_CASES: list[tuple[str, Any, str]] = [
    ("no id", _without("id"), "id"),
    ("no source", _without("source"), "source"),
    ("no subject", _without("subject"), "subject"),
    ("no type", _without("type"), "type"),
    ("no specversion", _without("specversion"), "specversion"),
    ("specversion 0.3", _with(specversion="0.3"), "specversion"),
    ("specversion 2.0", _with(specversion="2.0"), "specversion"),
    ("specversion as a number", _with(specversion=1.0), "specversion"),
    ("empty id", _with(id=""), "id"),
    ("blank subject", _with(subject="   "), "subject"),
    ("id as a number", _with(id=7), "id"),
    ("null source", _with(source=None), "source"),
    ("time in words", _with(time="yesterday"), "time"),
    ("time with month 13", _with(time="2026-13-01T00:00:00Z"), "time"),
    ("time without a zone", _with(time="2026-01-01T00:00:00"), "time"),
    ("time as a number", _with(time=1767225600), "time"),
    ("xml data", _with(datacontenttype="text/xml"), "datacontenttype"),
    ("binary data", _with(data_base64="aGVsbG8="), "data_base64"),
    ("a 513-character subject", _with(subject="k" * 513), "subject"),
    ("a NUL in the id", _with(id="delivery-\x00-1"), "id"),
    ("a control character in the source", _with(source="https://ci\x07.example.com"), "source"),
    ("an unpaired surrogate in the subject", _with(subject="uc-\udc80"), "subject"),
    ("an extension with a bad name", _with(**{"trace-id": "x"}), "trace-id"),
]


def test_an_invalid_envelope_is_400_naming_the_attribute(services: Services, api: Api) -> None:
    journey = registered(services.app)
    mark = StoreMark.take(services)
    wrong = []

    for name, change, path in ENVELOPE_CASES:
        event = change(adoption(journey.key))
        alone = post(api, event)
        in_batch = post_batch(api, [event])
        try:
            assert alone.status_code == 400
            assert alone.headers["content-type"] == PROBLEM_JSON
            assert in_batch.status_code == 200
            for document in (alone.json(), in_batch.json()["results"][0]):
                assert (document["status"], document["type"]) == (
                    400,
                    PROBLEMS + "invalid-cloudevent",
                )
                assert path in [e["path"] for e in document["errors"]]
                assert document["detail"]
        except (AssertionError, KeyError, TypeError):
            wrong.append((name, alone.status_code, alone.text, in_batch.text))

    assert wrong == []
    _nothing_appended(services, mark)


def test_an_event_that_is_not_an_object_is_400(services: Services, api: Api) -> None:
    mark = StoreMark.take(services)

    for body in ("an event", 42, None, True):
        response = post(api, body)
        assert_problem(response, 400, "invalid-cloudevent")

    _nothing_appended(services, mark)


# --- the data -------------------------------------------------------------------------------------

FUTURE = (datetime.now(UTC) + timedelta(days=2)).isoformat()

DATA_CASES: list[tuple[str, str, Any, dict[str, Any], set[str]]] = [
    (
        "negative and zero users",
        ADOPTION,
        {"activeUsers": -1, "targetUsers": 0},
        {},
        {"data.activeUsers", "data.targetUsers"},
    ),
    (
        "users in words",
        ADOPTION,
        {"activeUsers": "many", "targetUsers": 5},
        {},
        {"data.activeUsers"},
    ),
    ("a missing field", ADOPTION, {"activeUsers": 5}, {}, {"data.targetUsers"}),
    (
        "an unknown field",
        ADOPTION,
        {"activeUsers": 1, "targetUsers": 2, "colour": "red"},
        {},
        {"data.colour"},
    ),
    ("data as a list", ADOPTION, [1, 2], {}, {"data"}),
    ("data as a string", ADOPTION, "39 of 50", {}, {"data"}),
    ("no data", ADOPTION, None, {}, {"data"}),
    ("no results", EVALUATION, {"version": "v1", "results": []}, {}, {"data.results"}),
    (
        "a result without a value",
        EVALUATION,
        {"version": "v1", "results": [{"name": "accuracy"}]},
        {},
        {"data.results.0.value"},
    ),
    (
        "a baseline without unit",
        METRIC,
        {"metric": "handling_minutes", "value": 3.0, "direction": "LOWER_IS_BETTER", "method": "m"},
        {},
        {"data.unit"},
    ),
    (
        "a direction that is not one",
        METRIC,
        {"metric": "m", "value": 3.0, "unit": "u", "direction": "SIDEWAYS", "method": "m"},
        {},
        {"data.direction"},
    ),
    (
        "a lower-case currency and a negative amount",
        COST,
        {"periodStart": "2026-01-01T00:00:00Z", "amount": "-1", "currency": "eur"},
        {},
        {"data.amount", "data.currency"},
    ),
    (
        "a severity that is not one",
        ALERT_RAISED,
        {"severity": "MEH", "description": "d"},
        {},
        {"data.severity"},
    ),
    (
        "an adoption in the future",
        ADOPTION,
        {"activeUsers": 1, "targetUsers": 2},
        {"time": FUTURE},
        {"time"},
    ),
    (
        "a cost period with an explicit end before its start",
        COST,
        {
            "periodStart": "2026-01-01T00:00:00Z",
            "periodEnd": "2025-12-01T00:00:00Z",
            "amount": "1.00",
            "currency": "EUR",
        },
        {},
        {"data.periodEnd"},
    ),
]


def test_invalid_data_is_422_with_the_path_of_each_field_at_fault(
    services: Services, api: Api
) -> None:
    journey, before, mark = registered_and_marked(services)
    wrong = []

    for name, kind, data, attributes, paths in DATA_CASES:
        event = cloud_event(kind, journey.key, data, **attributes)
        if data is None:
            del event["data"]
        response = post(api, event)
        document = response.json()
        try:
            assert response.status_code == 422
            assert response.headers["content-type"] == PROBLEM_JSON
            assert document["type"] == PROBLEMS + "invalid-data"
            assert {e["path"] for e in document["errors"]} == paths
            assert all(e["message"] for e in document["errors"])
            [record] = deliveries_of(services, event["id"])
            assert (record.status, record.response) == (422, document)
        except (AssertionError, KeyError, TypeError, ValueError):
            wrong.append((name, response.status_code, document))

    assert wrong == []
    assert journey.use_case.version == before
    assert mark.appended_since(services) == 0


def test_a_cost_period_that_ends_at_time_before_it_starts_names_time(
    services: Services, api: Api
) -> None:
    """Without ``periodEnd`` the period ends at the event's ``time``: that is the field at
    fault, not a ``data.periodEnd`` the event never sent."""
    journey = registered(services.app)
    mark = StoreMark.take(services)
    event = cloud_event(
        COST,
        journey.key,
        {"periodStart": "2026-01-01T00:00:00Z", "amount": "1.00", "currency": "EUR"},
        time="2025-12-01T00:00:00Z",
    )

    response = post(api, event)

    document = assert_problem(response, 422, "invalid-data")
    assert "periodEnd" not in event["data"]
    assert [e["path"] for e in document["errors"]] == ["time"]
    _nothing_appended(services, mark, recorded=True)


# --- refusals by the domain -----------------------------------------------------------------------


def test_an_unknown_type_is_422_naming_the_known_ones(services: Services, api: Api) -> None:
    journey, before, mark = registered_and_marked(services)
    event = cloud_event("stagegate.coffee.brewed", journey.key, {"cups": 2})

    response = post(api, event)

    document = assert_problem(response, 422, "unknown-event-type")
    assert "stagegate.coffee.brewed" in document["detail"]
    assert ADOPTION in document["detail"]
    assert journey.use_case.version == before
    _nothing_appended(services, mark, recorded=True)
    [record] = deliveries_of(services, event["id"])
    assert (record.status, record.response) == (422, document)


def test_an_unknown_use_case_is_404(services: Services, api: Api) -> None:
    missing = unique_key("missing")
    mark = StoreMark.take(services)

    response = post(api, adoption(missing))

    document = assert_problem(response, 404, "unknown-use-case")
    assert missing in document["detail"]
    _nothing_appended(services, mark, recorded=True)
    with pytest.raises(NotFound):
        services.app.use_case(missing)  # not created by the attempt either


def test_a_production_deployment_before_its_gate_is_refused(services: Services, api: Api) -> None:
    """The gate into DEPLOYMENT is not passed: the deployment a pipeline reports is refused."""
    journey = in_acceptance(services.app)
    before = journey.use_case.version
    mark = StoreMark.take(services)

    response = post(api, cloud_event(DEPLOYMENT, journey.key, {"version": "v1"}, time=hours_ago(1)))

    document = assert_problem(response, 422, "rule-violated")
    assert document["code"] == "STAGE_DOES_NOT_ALLOW"
    assert "acceptance" in document["detail"].lower()
    assert journey.use_case.version == before
    _nothing_appended(services, mark, recorded=True)


RULE_CASES: list[tuple[str, str, dict[str, Any], str]] = [
    (
        "deploying a version with no approved change",
        DEPLOYMENT,
        {"version": "v2"},
        "VERSION_NOT_APPROVED",
    ),
    ("deploying a version never registered", DEPLOYMENT, {"version": "v9"}, "UNKNOWN_VERSION"),
    (
        "an after-state of a metric with no baseline",
        METRIC,
        {"metric": "nps", "value": 40.0},
        "NO_BASELINE_FOR_METRIC",
    ),
    (
        "an after-state before the first deployment",
        METRIC,
        {"metric": BASELINE_METRIC, "value": 4.0},
        "NOT_YET_DEPLOYED",
    ),
    (
        "an evaluation of a version never registered",
        EVALUATION,
        {"version": "v9", "results": PASSING_RESULTS},
        "UNKNOWN_VERSION",
    ),
    ("a rollback with nothing in production", ROLLBACK, {"reason": "latency"}, "NOTHING_DEPLOYED"),
    (
        "resolving an alert that is not open",
        ALERT_RESOLVED,
        {"alertId": "grafana-1", "resolution": "fixed"},
        "UNKNOWN_ALERT",
    ),
]


def test_rule_refusals_are_422_with_the_rule_code(services: Services, api: Api) -> None:
    journey = in_deployment(services.app)
    before = journey.use_case.version
    mark = StoreMark.take(services)
    wrong = []

    for name, kind, data, code in RULE_CASES:
        event = cloud_event(kind, journey.key, data, time=hours_ago(1))
        response = post(api, event)
        document = response.json()
        try:
            assert_problem(response, 422, "rule-violated")
            assert document["code"] == code
            [record] = deliveries_of(services, event["id"])
            assert (record.status, record.response) == (422, document)
        except (AssertionError, KeyError):
            wrong.append((name, response.status_code, document))

    assert wrong == []
    assert journey.use_case.version == before
    assert mark.appended_since(services) == 0


def test_an_alert_raised_twice_is_refused_the_second_time(services: Services, api: Api) -> None:
    journey = registered(services.app)
    alert = {"alertId": "grafana-8812", "severity": "HIGH", "description": "hallucinations"}
    first = post(api, cloud_event(ALERT_RAISED, journey.key, alert, time=hours_ago(2)))
    assert first.status_code == 200, first.text
    before = journey.use_case.version
    mark = StoreMark.take(services)

    again = post(api, cloud_event(ALERT_RAISED, journey.key, alert, time=hours_ago(1)))

    document = assert_problem(again, 422, "rule-violated")
    assert document["code"] == "ALERT_ALREADY_RAISED"
    assert journey.use_case.version == before
    _nothing_appended(services, mark, recorded=True)
