"""``IMPROVEMENT_SHOWN``: a use case scales only when its value is proven, not only measured.

Each baseline metric's latest after-state in the window against its baseline, in the metric's
direction: an outcome must be better by the policy's minimum improvement (0: strictly
better), a guardrail no worse than the policy's tolerance (5 % by default).
"""

from __future__ import annotations

from typing import Any

import pytest

from domain import commands as c
from domain.application import Stagegate
from domain.errors import GateBlocked
from domain.gates import RequirementCode as R
from domain.gates import gate_status
from domain.values import Stage
from tests.builders import ADMIN, Journey, ctx


def _with_baselines(app: Stagegate, *baselines: dict[str, Any]) -> Journey:
    """A use case in measurement whose gate into scale is met but for these baselines'
    after-states, which the test records itself."""
    journey = Journey(app).register().reach(Stage.ACCEPTANCE)
    for baseline in baselines:
        journey.issue(
            c.CaptureBaseline,
            baseline={
                "unit": "units",
                "measured_at": journey.now,
                "method": "sampled for a month",
                **baseline,
            },
        )
    journey.reach(Stage.MEASUREMENT)
    journey.satisfy_gate(Stage.SCALE)  # every baseline measured at 5.0, in the window
    return journey


def _measure(journey: Journey, metric: str, value: float) -> None:
    journey.issue(c.RecordMeasurement, metric=metric, value=value, measured_at=journey.now)


def _refusal(app: Stagegate, journey: Journey) -> str | None:
    unmet = {r.code: r.message for r in journey.gate().unmet}
    assert set(unmet) <= {R.IMPROVEMENT_SHOWN}, unmet
    return unmet.get(R.IMPROVEMENT_SHOWN)


def test_a_metric_four_times_worse_than_its_baseline_cannot_scale(memory_app: Stagegate) -> None:
    journey = _with_baselines(
        memory_app,
        {"metric": "misclassified_share", "value": 0.14, "direction": "lower_is_better"},
    )
    _measure(journey, "misclassified_share", 0.60)

    message = _refusal(memory_app, journey)

    assert message == (
        "The value is not proven: misclassified_share (outcome, lower is better): baseline 0.14"
        f" units, after-state 0.6 ({journey.now.date().isoformat()}): 328.6% worse; it needs"
        " to be strictly better."
    )
    with pytest.raises(GateBlocked) as refused:
        journey.advance(Stage.SCALE)
    assert [r.code for r in refused.value.unmet] == [R.IMPROVEMENT_SHOWN]


@pytest.mark.parametrize(
    ("direction", "after", "proven"),
    [
        ("higher_is_better", 0.81, True),
        ("higher_is_better", 0.80, False),  # unchanged is not better
        ("higher_is_better", 0.79, False),
        ("lower_is_better", 0.79, True),
        ("lower_is_better", 0.81, False),
    ],
)
def test_better_is_judged_in_the_metrics_direction(
    memory_app: Stagegate, direction: str, after: float, proven: bool
) -> None:
    journey = _with_baselines(
        memory_app, {"metric": "first_pass_rate", "value": 0.80, "direction": direction}
    )
    _measure(journey, "first_pass_rate", after)

    assert (_refusal(memory_app, journey) is None) is proven


def test_the_policys_minimum_improvement_names_the_shortfall(memory_app: Stagegate) -> None:
    journey = _with_baselines(
        memory_app, {"metric": "handled_per_hour", "value": 100, "direction": "higher_is_better"}
    )
    memory_app.set_policy(c.SetPolicy.parse({"minImprovement": 0.1}), ctx(ADMIN))

    _measure(journey, "handled_per_hour", 105)
    message = _refusal(memory_app, journey)
    assert message is not None
    assert "5.0% better; it needs to be at least 10.0% better, 5.0% short" in message

    _measure(journey, "handled_per_hour", 110)  # exactly the minimum
    assert _refusal(memory_app, journey) is None


def test_a_guardrail_may_get_worse_only_within_the_tolerance(memory_app: Stagegate) -> None:
    journey = _with_baselines(
        memory_app,
        {"metric": "handling_minutes", "value": 12, "direction": "lower_is_better"},
        {
            "metric": "complaints_per_week",
            "value": 20,
            "direction": "lower_is_better",
            "kind": "guardrail",
        },
    )
    _measure(journey, "complaints_per_week", 20.8)  # 4 % worse: within 5 %
    assert _refusal(memory_app, journey) is None

    _measure(journey, "complaints_per_week", 22)  # 10 % worse
    message = _refusal(memory_app, journey)
    assert message is not None
    assert message.startswith("The value is not proven: complaints_per_week (guardrail")
    assert "10.0% worse; a guardrail may be at most 5.0% worse, 5.0% over" in message
    assert "handling_minutes" not in message  # the outcome improved: not named

    memory_app.set_policy(c.SetPolicy.parse({"guardrailTolerance": 0.1}), ctx(ADMIN))
    assert _refusal(memory_app, journey) is None


def test_from_a_baseline_of_zero_any_change_is_whole(memory_app: Stagegate) -> None:
    journey = _with_baselines(
        memory_app, {"metric": "escalations", "value": 0, "direction": "lower_is_better"}
    )
    _measure(journey, "escalations", 1)
    message = _refusal(memory_app, journey)
    assert message is not None
    assert "worse from a baseline of 0" in message

    _measure(journey, "escalations", 0)
    assert _refusal(memory_app, journey) is not None  # unchanged is not better


def test_the_gate_is_judged_by_the_policy_in_force_at_the_time(memory_app: Stagegate) -> None:
    journey = _with_baselines(
        memory_app, {"metric": "handled_per_hour", "value": 100, "direction": "higher_is_better"}
    )
    _measure(journey, "handled_per_hour", 105)
    then = memory_app.policy()
    assert _refusal(memory_app, journey) is None
    memory_app.set_policy(c.SetPolicy.parse({"minImprovement": 0.1}), ctx(ADMIN))

    assert _refusal(memory_app, journey) is not None
    # Judged by the policy of the earlier version (as asOf does), it held; each version of
    # the policy keeps its own thresholds.
    earlier = memory_app.policy_at(then.version)
    assert earlier.values.min_improvement == 0
    assert gate_status(journey.use_case.state, earlier, journey.now).unmet == []
    assert memory_app.policy().values.min_improvement == 0.1
