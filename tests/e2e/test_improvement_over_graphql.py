"""The value proven or not, over GraphQL: a guardrail declared when its baseline is captured,
each metric's improvement on the use case, and the gate's refusal naming the metric."""

from __future__ import annotations

from domain import commands as c
from domain.clock import clock_set_to
from domain.values import Stage
from infra.bootstrap import Services
from tests.builders import Journey
from tests.e2e.conftest import Api

SELECTION = """
improvements {
  baseline { metric kind direction value }
  afterState { value }
  change relativeChange counts
}
gate { unmet { code message } }
"""


def test_a_guardrail_worse_than_tolerated_blocks_scaling_and_says_why(
    services: Services, api: Api
) -> None:
    journey = Journey(services.app).register().reach(Stage.ACCEPTANCE)
    captured = api.mutate(
        "captureBaseline",
        {
            "key": journey.key,
            "baseline": {
                "metric": "complaints_per_week",
                "unit": "complaints",
                "value": 20,
                "direction": "LOWER_IS_BETTER",
                "measuredAt": "2025-01-10T09:00:00Z",
                "method": "the complaints log",
                "kind": "GUARDRAIL",
            },
        },
    )
    assert captured["__typename"] == "UseCase", captured
    journey.reach(Stage.MEASUREMENT)
    journey.satisfy_gate(Stage.SCALE)  # every metric measured at 5.0: the guardrail improved
    journey.issue(
        c.RecordMeasurement, metric="complaints_per_week", value=24, measured_at=journey.now
    )

    with clock_set_to(lambda: journey.now):  # its gate judged on its own clock
        use_case = api.use_case(journey.key, SELECTION)

    assert use_case is not None
    by_metric = {m["baseline"]["metric"]: m for m in use_case["improvements"]}
    guardrail = by_metric["complaints_per_week"]
    assert guardrail["baseline"]["kind"] == "GUARDRAIL"
    assert guardrail["afterState"] == {"value": 24.0}
    assert guardrail["change"] == -4.0
    assert guardrail["relativeChange"] == -0.2
    assert guardrail["counts"] is False
    assert all(m["counts"] for name, m in by_metric.items() if name != "complaints_per_week")
    [unmet] = use_case["gate"]["unmet"]
    assert unmet["code"] == "IMPROVEMENT_SHOWN"
    assert (
        "complaints_per_week (guardrail, lower is better): baseline 20 complaints"
        in (unmet["message"])
    )
    assert "20.0% worse; a guardrail may be at most 5.0% worse, 15.0% over" in unmet["message"]
