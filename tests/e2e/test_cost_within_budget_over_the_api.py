"""``COST_WITHIN_BUDGET`` where each caller meets it: a cost posted as a CloudEvent by the
billing integration, then the gate, ``asOf`` now, the unmet-code filter, the backlog and
``advanceStage`` all say the same, in the same words."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from domain.gates import RequirementCode as R
from domain.values import Stage
from infra.bootstrap import Services
from tests.builders import Journey, last_month
from tests.e2e.cloudevents_helpers import COST, cloud_event, post
from tests.e2e.conftest import Api

GATE = "gate { unmet { code message } }"


def _unmet(node: dict[str, Any]) -> list[tuple[str, str]]:
    return [(r["code"], r["message"]) for r in node["gate"]["unmet"]]


def test_a_cost_over_budget_posted_as_a_cloudevent_blocks_scaling_everywhere_alike(
    services: Services, api: Api
) -> None:
    journey = Journey(services.app).register().reach(Stage.MEASUREMENT)
    journey.satisfy_gate(Stage.SCALE, except_=R.COST_WITHIN_BUDGET)
    start, end = last_month(datetime.now(UTC))
    event = cloud_event(
        COST,
        journey.key,
        {
            "periodStart": start.isoformat(),
            "periodEnd": end.isoformat(),
            "amount": "1500.00",
            "currency": "EUR",
        },
    )
    response = post(api, event)
    assert response.status_code == 200, response.text

    use_case = api.use_case(journey.key, GATE)
    assert use_case is not None
    message = (
        f"Inference cost for {start:%B %Y} was 1,500.00 EUR, over the monthly budget of"
        " 1,000.00 EUR by 500.00 EUR."
    )
    assert _unmet(use_case) == [("COST_WITHIN_BUDGET", message)]
    as_of = api.gql(
        "query($key: String!, $at: DateTime!) { useCase(key: $key) { asOf(at: $at) {"
        f" {GATE} }} }} }}",
        {"key": journey.key, "at": datetime.now(UTC).isoformat()},
        api.tokens.auditor,
    )["data"]["useCase"]["asOf"]
    assert _unmet(as_of) == [("COST_WITHIN_BUDGET", message)]

    blocked = api.gql(
        "{ useCases(filter: {unmetCode: COST_WITHIN_BUDGET}, first: 50)"
        " { edges { node { key } } } }"
    )["data"]["useCases"]["edges"]
    assert journey.key in {e["node"]["key"] for e in blocked}
    backlog = api.gql(f"{{ backlog(first: 50) {{ edges {{ node {{ key {GATE} }} }} }} }}")
    [entry] = [
        e["node"] for e in backlog["data"]["backlog"]["edges"] if e["node"]["key"] == journey.key
    ]
    assert _unmet(entry) == [("COST_WITHIN_BUDGET", message)]

    refused = api.mutate("advanceStage", {"key": journey.key, "to": "SCALE"})
    assert refused["__typename"] == "GateBlocked", refused
    assert [(r["code"], r["message"]) for r in refused["unmet"]] == [
        ("COST_WITHIN_BUDGET", message)
    ]
