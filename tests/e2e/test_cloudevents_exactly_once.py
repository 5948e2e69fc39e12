"""``POST /v1/events`` applies each delivery (``source`` + ``id``) once and answers it alike.

Over real HTTP, on SQLite and PostgreSQL: redeliveries in sequence and in a real race append
one event and get the first answer again; the same id with other content is a conflict; the
delivery record and the domain event are committed together; batches are judged event by
event, in order, and are safe to post again. What was appended is read from the store itself.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from domain.usecase import use_case_id
from domain.values import Channel, Role, Stage
from infra.bootstrap import Services
from tests.builders import BASELINE_METRIC, PASSING_RESULTS, unique_key
from tests.e2e.cloudevents_helpers import (
    ADOPTION,
    BATCH,
    COST,
    DEPLOYMENT,
    EVALUATION,
    METRIC,
    PROBLEMS,
    STRUCTURED,
    StoreMark,
    adoption,
    assert_problem,
    cloud_event,
    deliveries_of,
    events_of,
    hours_ago,
    in_acceptance,
    in_deployment,
    open_deployment_gate,
    post,
    post_batch,
    post_concurrently,
    registered,
    registered_and_marked,
)
from tests.e2e.conftest import INTEGRATION_ID, INTEGRATION_SOURCE, Api

ACCEPTED_FIELDS = {"status", "source", "id", "type", "useCase", "version"}


def _same_answer(responses: list[httpx.Response]) -> tuple[int, Any]:
    """Every response has the first one's status, content type and JSON body."""
    first = responses[0]
    for response in responses:
        assert response.status_code < 500, (response.status_code, response.text)
        assert (response.status_code, response.headers["content-type"], response.json()) == (
            first.status_code,
            first.headers["content-type"],
            first.json(),
        )
    return first.status_code, first.json()


# --- acceptance 1: redeliveries, in sequence and concurrently ---------------------------------


def test_one_event_posted_100_times_in_sequence_appends_one_event(
    services: Services, api: Api
) -> None:
    journey, before, mark = registered_and_marked(services)
    event = adoption(journey.key, active=12, target=40)

    responses = [post(api, event) for _ in range(100)]

    status, body = _same_answer(responses)
    assert status == 200
    assert responses[0].headers["content-type"] == "application/json"
    assert body == {
        "status": "accepted",
        "source": INTEGRATION_SOURCE,
        "id": event["id"],
        "type": ADOPTION,
        "useCase": journey.key,
        "version": before + 1,
    }
    assert journey.use_case.version == before + 1
    assert mark.appended_since(services) == 1
    assert journey.use_case.state.latest_adoption is not None
    assert journey.use_case.state.latest_adoption.active_users == 12
    [record] = mark.new_deliveries(services)
    assert (record.source, record.delivery_id, record.status) == (
        INTEGRATION_SOURCE,
        event["id"],
        200,
    )
    assert record.originator_version == before + 1


def test_one_event_posted_50_times_concurrently_appends_one_event(
    services: Services, api: Api
) -> None:
    journey, before, mark = registered_and_marked(services)
    event = adoption(journey.key, active=7, target=70)

    responses = post_concurrently(api, [event] * 50)

    status, body = _same_answer(responses)
    assert status == 200, body
    assert body["version"] == before + 1
    assert body["id"] == event["id"]
    assert journey.use_case.version == before + 1
    assert mark.appended_since(services) == 1
    [record] = mark.new_deliveries(services)
    assert (record.delivery_id, record.status, record.originator_version) == (
        event["id"],
        200,
        before + 1,
    )
    # And a later redelivery still gets that same answer.
    assert post(api, event).json() == body


def test_a_refused_event_posted_50_times_concurrently_is_refused_alike_and_once(
    services: Services, api: Api
) -> None:
    journey, before, mark = registered_and_marked(services)
    # Before deployment a measurement is a baseline, and this one lacks unit and method.
    event = cloud_event(METRIC, journey.key, {"metric": "nps", "value": 3.0}, time=hours_ago(2))

    responses = post_concurrently(api, [event] * 50)

    status, body = _same_answer(responses)
    assert status == 422
    assert body["type"] == PROBLEMS + "invalid-data"
    assert journey.use_case.version == before
    assert mark.appended_since(services) == 0
    [record] = mark.new_deliveries(services)
    assert (record.status, record.response, record.originator_version) == (422, body, None)


def test_distinct_events_racing_for_one_use_case_are_each_applied_at_most_once(
    services: Services, api: Api
) -> None:
    """Five deliveries, ten copies of each, all at once, all for the same use case."""
    journey, before, mark = registered_and_marked(services)
    events = [adoption(journey.key, active=n, target=50) for n in range(5)]

    responses = post_concurrently(api, [event for event in events for _ in range(10)])

    accepted_versions = []
    for index, event in enumerate(events):
        copies = responses[index * 10 : index * 10 + 10]
        assert all(r.status_code < 500 for r in copies), [r.text for r in copies]
        answers = {json.dumps(r.json(), sort_keys=True) for r in copies if r.status_code == 200}
        records = deliveries_of(services, event["id"])
        if answers:
            # Accepted: every copy that was answered 200 got the same body, and one record.
            [answer] = answers
            assert json.loads(answer)["id"] == event["id"]
            [record] = records
            assert record.originator_version == json.loads(answer)["version"]
            accepted_versions.append(record.originator_version)
        # A copy not accepted can only have lost the race for the use case to other writers.
        for response in copies:
            if response.status_code != 200:
                assert_problem(response, 409, "version-conflict")
        if not answers:
            assert records == []
    assert accepted_versions, "no delivery got through at all"
    assert sorted(accepted_versions) == list(range(before + 1, before + 1 + len(accepted_versions)))
    assert journey.use_case.version == before + len(accepted_versions)
    assert mark.appended_since(services) == len(accepted_versions)


# --- acceptance 2: the same source + id with other content ------------------------------------


def test_the_same_id_with_other_data_is_a_conflict_and_appends_nothing(
    services: Services, api: Api
) -> None:
    journey = registered(services.app)
    first = adoption(journey.key, active=10, target=50)
    accepted = post(api, first)
    assert accepted.status_code == 200, accepted.text
    version = journey.use_case.version
    mark = StoreMark.take(services)

    changed = {**first, "data": {"activeUsers": 11, "targetUsers": 50}}
    conflict = post(api, changed)

    document = assert_problem(conflict, 409, "delivery-conflict")
    assert first["id"] in document["detail"]
    assert journey.use_case.version == version
    assert mark.appended_since(services) == 0
    assert mark.new_deliveries(services) == []
    assert deliveries_of(services, first["id"]) == [
        d for d in mark.deliveries if d.delivery_id == first["id"]
    ]
    assert journey.use_case.state.latest_adoption is not None
    assert journey.use_case.state.latest_adoption.active_users == 10
    # The original content is still answered with its first outcome.
    assert post(api, first).json() == accepted.json()


@pytest.mark.parametrize(
    "change",
    [
        {"time": "2026-01-01T00:00:00Z"},
        {"subject": "another-use-case"},
        {"type": "stagegate.cost.reported"},
        {"data": {"activeUsers": 10, "targetUsers": 50, "extra": 1}},
    ],
    ids=["time", "subject", "type", "data-field-added"],
)
def test_any_other_content_under_a_refused_id_is_a_conflict_too(
    services: Services, api: Api, change: dict[str, Any]
) -> None:
    """The first answer was a refusal (unknown use case): it is still the id's one content."""
    first = adoption(unique_key("missing"), active=10, target=50)
    refused = post(api, first)
    assert_problem(refused, 404, "unknown-use-case")
    mark = StoreMark.take(services)

    conflict = post(api, {**first, **change})

    assert_problem(conflict, 409, "delivery-conflict")
    assert mark.appended_since(services) == 0
    assert mark.new_deliveries(services) == []
    assert post(api, first).json() == refused.json()


def test_a_redelivery_with_other_key_order_and_whitespace_is_the_same_event(
    services: Services, api: Api
) -> None:
    journey = registered(services.app)
    event = adoption(journey.key, active=3, target=9)
    first = post(api, event)
    assert first.status_code == 200, first.text
    mark = StoreMark.take(services)

    reordered = dict(reversed(list(event.items())))
    reordered["data"] = {"targetUsers": 9, "activeUsers": 3}
    again = post(api, json.dumps(reordered, indent=4).encode())

    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert mark.appended_since(services) == 0


def test_the_same_id_from_another_source_is_another_delivery(services: Services, api: Api) -> None:
    other_source = "https://deploy.example.com/pipeline"
    token = services.tokens.issue(
        "ci-pipeline", Role.INTEGRATION, sources=(INTEGRATION_SOURCE, other_source)
    ).secret_token
    journey = registered(services.app)
    before = journey.use_case.version
    event = adoption(journey.key, id="run-1")

    first = post(api, event, token=token)
    second = post(api, {**event, "source": other_source}, token=token)

    assert (first.status_code, second.status_code) == (200, 200), (first.text, second.text)
    assert (first.json()["version"], second.json()["version"]) == (before + 1, before + 2)
    assert second.json()["source"] == other_source
    assert {d.source for d in deliveries_of(services, "run-1")} == {
        INTEGRATION_SOURCE,
        other_source,
    }


# --- the delivery record and the domain event, together ---------------------------------------


def test_an_accepted_delivery_is_recorded_with_the_event_it_caused(
    services: Services, api: Api
) -> None:
    journey = in_acceptance(services.app)
    before = journey.use_case.version
    event = cloud_event(
        EVALUATION,
        journey.key,
        {"version": "v1", "results": PASSING_RESULTS, "harness": "h 1.0", "dataset": "gold"},
        time=hours_ago(1),
    )

    response = post(api, event, headers={"X-Correlation-ID": "ci-run-81"})

    assert response.status_code == 200, response.text
    assert response.json()["version"] == before + 1
    [record] = deliveries_of(services, event["id"])
    [*_, appended] = events_of(services.app, journey.key)
    assert appended.originator_version == before + 1
    assert (record.status, record.response) == (200, None)
    assert record.originator_id == str(use_case_id(journey.key))
    assert record.originator_version == appended.originator_version
    meta = appended.meta
    assert meta.channel is Channel.CLOUDEVENTS
    assert (meta.actor_id, meta.actor_role) == (INTEGRATION_ID, Role.INTEGRATION)
    assert (meta.source, meta.delivery_id) == (INTEGRATION_SOURCE, event["id"])
    assert meta.delivery_fingerprint == record.fingerprint
    assert meta.correlation_id == "ci-run-81"
    assert response.headers["x-correlation-id"] == "ci-run-81"
    [evaluation] = journey.use_case.state.evaluations
    assert (evaluation.version, evaluation.harness, evaluation.dataset) == ("v1", "h 1.0", "gold")


def test_a_refused_delivery_appends_nothing_and_records_the_answer_it_got(
    services: Services, api: Api
) -> None:
    journey = in_acceptance(services.app)
    before = journey.use_case.version
    mark = StoreMark.take(services)
    event = cloud_event(DEPLOYMENT, journey.key, {"version": "v1"}, time=hours_ago(1))

    response = post(api, event)

    document = assert_problem(response, 422, "rule-violated")
    assert document["code"] == "STAGE_DOES_NOT_ALLOW"
    assert journey.use_case.version == before
    assert mark.appended_since(services) == 0
    [record] = mark.new_deliveries(services)
    assert (record.source, record.delivery_id) == (INTEGRATION_SOURCE, event["id"])
    assert (record.status, record.response) == (422, document)
    assert (record.originator_id, record.originator_version) == (None, None)


def test_a_redelivery_after_the_gate_opens_still_gets_the_first_refusal(
    services: Services, api: Api
) -> None:
    """Documented: a delivery keeps its first answer; a new fact needs a new id."""
    journey = in_acceptance(services.app)
    event = cloud_event(DEPLOYMENT, journey.key, {"version": "v1"}, time=hours_ago(1))
    refused = post(api, event)
    assert_problem(refused, 422, "rule-violated")
    open_deployment_gate(journey)
    assert journey.use_case.state.stage is Stage.DEPLOYMENT
    version = journey.use_case.version
    mark = StoreMark.take(services)

    again = post(api, event)

    assert (again.status_code, again.json()) == (422, refused.json())
    assert again.headers["content-type"] == "application/problem+json"
    assert journey.use_case.version == version
    assert mark.appended_since(services) == 0
    # The gate really is open: the same deployment under a new id is accepted.
    fresh = post(api, {**event, "id": event["id"] + "-retry"})
    assert fresh.status_code == 200, fresh.text
    assert journey.use_case.version == version + 1


@pytest.fixture
def doomed_delivery(services: Services) -> str:
    """An id whose delivery record the database refuses to store (a constraint added here)."""
    doomed = "doomed-delivery"
    db = services.database
    table = db.table("stagegate_deliveries")
    with db.transaction() as curs:
        if db.is_postgres:
            curs.execute(
                f"ALTER TABLE {table} ADD CONSTRAINT test_doomed CHECK (delivery_id <> '{doomed}')"
            )
        else:
            curs.execute(
                f"CREATE TRIGGER test_doomed BEFORE INSERT ON {table} "
                f"WHEN NEW.delivery_id = '{doomed}' BEGIN SELECT RAISE(ABORT, 'doomed'); END"
            )
    return doomed


def test_an_event_whose_delivery_record_cannot_be_written_is_not_appended(
    services: Services, api: Api, doomed_delivery: str
) -> None:
    journey, before, mark = registered_and_marked(services)

    response = post(api, adoption(journey.key, id=doomed_delivery))

    assert response.status_code != 200, response.text
    assert response.status_code < 500, response.text
    assert journey.use_case.version == before
    assert mark.appended_since(services) == 0
    assert mark.new_deliveries(services) == []
    # The same event under an id the database accepts goes through: only the record failed.
    assert post(api, adoption(journey.key)).status_code == 200


# --- business time and server time ------------------------------------------------------------


def test_time_is_the_business_time_and_the_server_records_its_own(
    services: Services, api: Api
) -> None:
    journey = registered(services.app)
    measured = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
    measured = min(measured, datetime.now(UTC) - timedelta(days=3))
    written = measured.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S") + "Z"
    shifted = measured.astimezone(UTC) + timedelta(hours=2)
    as_posted = shifted.strftime("%Y-%m-%dT%H:%M:%S") + "+02:00"  # the same instant
    event = cloud_event(
        METRIC,
        journey.key,
        {
            "metric": "handling_minutes",
            "value": 11.5,
            "unit": "minutes",
            "direction": "LOWER_IS_BETTER",
            "method": "time study",
        },
        time=as_posted,
    )
    sent_after = datetime.now(UTC)

    response = post(api, event)

    answered_before = datetime.now(UTC)
    assert response.status_code == 200, response.text
    baseline = journey.use_case.state.baselines["handling_minutes"]
    assert baseline.measured_at == datetime.fromisoformat(written)
    assert baseline.value == 11.5
    [*_, appended] = events_of(services.app, journey.key)
    assert sent_after <= appended.timestamp <= answered_before
    assert appended.timestamp - baseline.measured_at > timedelta(days=2)


def test_without_time_the_business_time_is_when_the_server_received_it(
    services: Services, api: Api
) -> None:
    journey = registered(services.app)
    event = adoption(journey.key, active=5, target=10)
    assert "time" not in event
    sent_after = datetime.now(UTC)

    response = post(api, event)

    answered_before = datetime.now(UTC)
    assert response.status_code == 200, response.text
    adoption_state = journey.use_case.state.latest_adoption
    assert adoption_state is not None
    assert sent_after <= adoption_state.measured_at <= answered_before


def test_a_cost_period_ends_at_the_events_time_unless_it_says_otherwise(
    services: Services, api: Api
) -> None:
    journey = registered(services.app)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    end = max(start + timedelta(days=1), datetime.now(UTC).replace(microsecond=0) - timedelta(1))
    event = cloud_event(
        COST,
        journey.key,
        {"periodStart": "2026-01-01T00:00:00Z", "amount": "120.50", "currency": "EUR"},
        time=end,
    )

    response = post(api, event)

    assert response.status_code == 200, response.text
    [*_, appended] = events_of(services.app, journey.key)
    assert appended.cost.period_start == start
    assert appended.cost.period_end == end
    assert str(appended.cost.amount) == "120.50"


# --- acceptance 3: batches ---------------------------------------------------------------------


def _mixed_batch(accepting: str, deploying: str) -> list[Any]:
    missing = unique_key("missing")
    return [
        # 0 valid: an evaluation of the candidate version
        cloud_event(
            EVALUATION,
            accepting,
            {"version": "v1", "results": PASSING_RESULTS},
            time=hours_ago(3),
        ),
        # 1 refused by the gate: production deployment before the gate into DEPLOYMENT
        cloud_event(DEPLOYMENT, accepting, {"version": "v1"}, time=hours_ago(2)),
        # 2 refused by a rule: deployment of a version whose change is not approved
        cloud_event(DEPLOYMENT, deploying, {"version": "v2"}, time=hours_ago(2)),
        # 3 refused by a rule: an after-state of a metric that has no baseline
        cloud_event(METRIC, deploying, {"metric": "nps", "value": 41.0}, time=hours_ago(2)),
        # 4 unknown use case
        adoption(missing),
        # 5 invalid data
        cloud_event(ADOPTION, deploying, {"activeUsers": -1, "targetUsers": 0}),
        # 6 unknown type
        cloud_event("stagegate.coffee.brewed", deploying, {"cups": 2}),
        # 7 malformed envelope: no source
        {k: v for k, v in adoption(deploying).items() if k != "source"},
        # 8 valid: a deployment of the signed-off version
        cloud_event(DEPLOYMENT, deploying, {"version": "v1"}, time=hours_ago(1)),
        # 9 not an object at all
        42,
        # 10 valid: a second event for the same use case as item 0
        adoption(accepting, active=4, target=8),
        # 11 malformed envelope: a time that is not a timestamp
        adoption(deploying, time="yesterday"),
    ]


def _check_mixed_results(results: list[dict[str, Any]], batch: list[Any]) -> None:
    assert len(results) == len(batch)
    accepted = [i for i, r in enumerate(results) if r.get("status") == "accepted"]
    assert accepted == [0, 8, 10]
    for i in accepted:
        assert set(results[i]) == ACCEPTED_FIELDS | {"httpStatus"}
        assert results[i]["httpStatus"] == 200
        assert (results[i]["id"], results[i]["useCase"]) == (batch[i]["id"], batch[i]["subject"])
    assert results[10]["version"] == results[0]["version"] + 1
    expected = {
        1: (422, "rule-violated"),
        2: (422, "rule-violated"),
        3: (422, "rule-violated"),
        4: (404, "unknown-use-case"),
        5: (422, "invalid-data"),
        6: (422, "unknown-event-type"),
        7: (400, "invalid-cloudevent"),
        9: (400, "invalid-cloudevent"),
        11: (400, "invalid-cloudevent"),
    }
    for i, (status, reason) in expected.items():
        assert (results[i]["status"], results[i]["type"]) == (status, PROBLEMS + reason), (
            i,
            results[i],
        )
        assert results[i]["detail"]
    assert results[1]["code"] == "STAGE_DOES_NOT_ALLOW"
    assert results[2]["code"] == "VERSION_NOT_APPROVED"
    assert results[3]["code"] == "NO_BASELINE_FOR_METRIC"
    assert {e["path"] for e in results[5]["errors"]} == {"data.activeUsers", "data.targetUsers"}
    assert [e["path"] for e in results[7]["errors"]] == ["source"]
    assert [e["path"] for e in results[11]["errors"]] == ["time"]


def test_a_mixed_batch_appends_the_valid_events_and_reports_the_rest_in_order(
    services: Services, api: Api
) -> None:
    accepting = in_acceptance(services.app)
    deploying = in_deployment(services.app)
    assert BASELINE_METRIC in deploying.use_case.state.baselines
    versions = (accepting.use_case.version, deploying.use_case.version)
    mark = StoreMark.take(services)
    batch = _mixed_batch(accepting.key, deploying.key)

    response = post_batch(api, batch)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    results = response.json()["results"]
    _check_mixed_results(results, batch)
    assert results[0]["version"] == versions[0] + 1
    assert results[8]["version"] == versions[1] + 1
    assert (accepting.use_case.version, deploying.use_case.version) == (
        versions[0] + 2,
        versions[1] + 1,
    )
    assert mark.appended_since(services) == 3
    assert deploying.use_case.state.production_version == "v1"
    recorded = {d.delivery_id: d for d in mark.new_deliveries(services)}
    # Accepted and recordable refusals have their record; envelope failures cannot have one.
    assert set(recorded) == {batch[i]["id"] for i in (0, 1, 2, 3, 4, 5, 6, 8, 10)}
    for i in (0, 8, 10):
        assert (recorded[batch[i]["id"]].status, recorded[batch[i]["id"]].response) == (200, None)
    for i in (1, 2, 3, 4, 5, 6):
        assert recorded[batch[i]["id"]].response == results[i]

    again = post_batch(api, batch)

    assert again.status_code == 200, again.text
    assert again.json() == response.json()
    assert mark.appended_since(services) == 3
    assert len(mark.new_deliveries(services)) == len(recorded)


def test_a_batch_posted_10_times_concurrently_appends_each_event_once(
    services: Services, api: Api
) -> None:
    journeys = [registered(services.app) for _ in range(3)]
    versions = [j.use_case.version for j in journeys]
    mark = StoreMark.take(services)
    batch = [adoption(journeys[n % 3].key, active=n, target=100) for n in range(12)]
    batch.append(adoption(unique_key("missing")))

    responses = post_concurrently(api, [batch] * 10, content_type=BATCH)

    status, body = _same_answer(responses)
    assert status == 200
    assert [r.get("httpStatus") for r in body["results"]] == [200] * 12 + [None]
    assert body["results"][-1]["type"] == PROBLEMS + "unknown-use-case"
    assert [j.use_case.version for j in journeys] == [v + 4 for v in versions]
    assert mark.appended_since(services) == 12
    assert len(mark.new_deliveries(services)) == 13


def test_a_repeated_event_inside_one_batch_is_applied_once(services: Services, api: Api) -> None:
    journey = registered(services.app)
    before = journey.use_case.version
    event = adoption(journey.key)
    other = adoption(journey.key, active=1)

    response = post_batch(api, [event, other, event])

    assert response.status_code == 200, response.text
    first, second, repeated = response.json()["results"]
    assert (first["version"], second["version"]) == (before + 1, before + 2)
    assert repeated == first
    assert journey.use_case.version == before + 2


def test_one_id_with_two_contents_in_one_batch_applies_the_first_only(
    services: Services, api: Api
) -> None:
    journey = registered(services.app)
    before = journey.use_case.version
    event = adoption(journey.key, active=1)
    changed = {**event, "data": {"activeUsers": 2, "targetUsers": 50}}

    response = post_batch(api, [event, changed])

    assert response.status_code == 200, response.text
    first, second = response.json()["results"]
    assert (first["httpStatus"], first["version"]) == (200, before + 1)
    assert (second["status"], second["type"]) == (409, PROBLEMS + "delivery-conflict")
    assert journey.use_case.version == before + 1
    assert journey.use_case.state.latest_adoption is not None
    assert journey.use_case.state.latest_adoption.active_users == 1


def test_a_redelivered_batch_with_one_changed_event_conflicts_there_only(
    services: Services, api: Api
) -> None:
    journey = registered(services.app)
    batch = [adoption(journey.key, active=n) for n in range(3)]
    first = post_batch(api, batch)
    assert first.status_code == 200, first.text
    mark = StoreMark.take(services)
    changed = [batch[0], {**batch[1], "data": {"activeUsers": 99, "targetUsers": 100}}, batch[2]]

    again = post_batch(api, changed)

    assert again.status_code == 200, again.text
    results = again.json()["results"]
    assert results[0] == first.json()["results"][0]
    assert (results[1]["status"], results[1]["type"]) == (409, PROBLEMS + "delivery-conflict")
    assert results[2] == first.json()["results"][2]
    assert mark.appended_since(services) == 0


def test_one_structured_event_and_a_batch_of_one_share_the_delivery_log(
    services: Services, api: Api
) -> None:
    """A delivery is its source + id, however it was posted."""
    journey = registered(services.app)
    event = adoption(journey.key)
    single = post(api, event, content_type=STRUCTURED)
    assert single.status_code == 200, single.text
    mark = StoreMark.take(services)

    batch = post_batch(api, [event])

    assert batch.status_code == 200, batch.text
    assert batch.json() == {"results": [{**single.json(), "httpStatus": 200}]}
    assert mark.appended_since(services) == 0
