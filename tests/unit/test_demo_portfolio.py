"""The demo portfolio shows what stagegate judges: a use case whose value is proven and within
budget at scale, one blocked at scale by each requirement of proven value."""

from __future__ import annotations

from domain.application import Stagegate
from domain.gates import RequirementCode as R
from domain.values import Stage
from infra.demo import DEMO_KEYS, load_demo


def test_the_demo_shows_value_proven_and_each_way_it_is_not(memory_app: Stagegate) -> None:
    assert load_demo(memory_app) == list(DEMO_KEYS)

    def unmet(key: str) -> set[R]:
        return {r.code for r in memory_app.gate(memory_app.use_case(key)).unmet}

    proven = memory_app.use_case("invoice-triage")
    assert proven.state.stage is Stage.SCALE  # passed IMPROVEMENT_SHOWN and COST_WITHIN_BUDGET
    assert memory_app.use_case("claims-summarisation").state.stage is Stage.MEASUREMENT
    assert R.COST_WITHIN_BUDGET in unmet("claims-summarisation")  # over budget
    assert memory_app.use_case("procurement-spend-classifier").state.stage is Stage.MEASUREMENT
    blocked = unmet("procurement-spend-classifier")
    assert R.IMPROVEMENT_SHOWN in blocked  # a guardrail got worse
    assert R.COST_WITHIN_BUDGET not in blocked
