"""Acceptance 1: every requirement code refuses its transition alone, and all are reported.

For each gate and each of its codes: a use case that meets every other requirement of the
gate is refused with that code among ``unmet`` and nothing is appended; once the requirement
is satisfied, the same transition passes.
"""

from __future__ import annotations

import pytest

from domain import clock
from domain import commands as c
from domain.application import Stagegate
from domain.errors import GateBlocked
from domain.gates import GATES, RequirementCode, gate_status
from domain.values import FORWARD_STAGES, Stage
from tests.builders import AI_COLLEAGUE, BUSINESS, TECH, Journey, R, workflow

# Codes that hold by default (nothing recorded yet cannot violate them); the test breaks them.
BREAKERS = {
    R.OWNERS_DISTINCT: lambda j: j.issue(c.AssignOwner, role="business", person=TECH),
    R.ESCALATION_OUTSIDE_AI_TEAM: lambda j: j.issue(
        c.SpecifyWorkflow, workflow=workflow(True, AI_COLLEAGUE)
    ),
    R.NO_OPEN_QUALITY_ALERT: lambda j: j.issue(
        c.RaiseQualityAlert, severity="high", description="outputs degraded"
    ),
    # The latest after-state, worse than the baseline of 12 (lower is better).
    R.IMPROVEMENT_SHOWN: lambda j: [
        j.issue(c.RecordMeasurement, metric=metric, value=13.0, measured_at=j.now)
        for metric in j.use_case.state.baselines
    ],
}

# A use case that reached the pilot gate always has a technical owner (the first gate needs
# one and owners are never removed), so TECHNICAL_OWNER is shown missing at the first gate.
# A valid sign-off implies a passing evaluation, so EVALUATION_PASSED cannot be missing alone:
# ACCEPTANCE_SIGNED_OFF is necessarily unmet beside it.
# Improvement is shown by an after-state in the window, so without one it cannot be shown.
IMPLIED = {
    (Stage.DEPLOYMENT, R.EVALUATION_PASSED): {R.ACCEPTANCE_SIGNED_OFF},
    (Stage.SCALE, R.AFTER_STATE_MEASURED): {R.IMPROVEMENT_SHOWN},
}
CASES = [
    (target, code)
    for target, requirements in GATES.items()
    for code, _ in requirements
    if not (target is Stage.ACCEPTANCE and code is R.TECHNICAL_OWNER)
]


@pytest.mark.parametrize(("target", "code"), CASES, ids=lambda x: getattr(x, "value", x))
def test_missing_exactly_one_requirement_refuses_then_passes(
    memory_app: Stagegate, target: Stage, code: RequirementCode
) -> None:
    journey = Journey(memory_app).register()
    journey.reach(_prior_stage(target))
    if code is R.EVALUATION_PASSED:
        journey.satisfy_gate(target, except_=code)  # satisfies the sign-off: undo by voiding it
        journey.issue(
            c.RegisterCandidateVersion, version={"label": "v2", "model": "m2", "prompt": "p2"}
        )
    else:
        journey.satisfy_gate(target, except_=code)
    if code in BREAKERS:
        BREAKERS[code](journey)
    before = journey.use_case

    with pytest.raises(GateBlocked) as refused:
        journey.advance(target)

    unmet = {r.code for r in refused.value.unmet}
    assert unmet == {code} | IMPLIED.get((target, code), set())
    assert refused.value.target is target
    after = journey.use_case
    assert after.version == before.version, "a refusal appends nothing"
    assert after == before

    journey.satisfy(code)
    for implied in IMPLIED.get((target, code), set()):
        journey.satisfy(implied)
    if target is Stage.SCALE:
        # Measuring after the window moves the clock on, maybe into another month: its
        # last complete month's cost is then the one to report.
        journey.satisfy(R.COST_WITHIN_BUDGET)
    advanced = journey.advance(target)
    assert advanced.state.stage is target


def _prior_stage(target: Stage) -> Stage:
    return next(stage for stage in FORWARD_STAGES if stage.next is target)


@pytest.mark.parametrize("target", list(GATES), ids=lambda s: s.value)
def test_a_use_case_missing_everything_gets_every_code_in_one_answer(
    memory_app: Stagegate, target: Stage
) -> None:
    journey = Journey(memory_app).register()
    journey.reach(_prior_stage(target))
    if target is Stage.SCALE:
        BREAKERS[R.NO_OPEN_QUALITY_ALERT](journey)
    # Past the first gate a technical owner always exists; "distinct" needs both owners.
    expected = {code for code, _ in GATES[target]} - (
        {R.TECHNICAL_OWNER, R.OWNERS_DISTINCT} if target is not Stage.PILOT else set()
    )

    with pytest.raises(GateBlocked) as refused:
        journey.advance(target)

    assert {r.code for r in refused.value.unmet} == expected
    assert all(r.message for r in refused.value.unmet)


def test_gate_status_answers_what_blocks_now_without_attempting(memory_app: Stagegate) -> None:
    journey = Journey(memory_app).register()
    use_case = journey.use_case

    status = gate_status(use_case.state, memory_app.policy(), clock.now())

    assert status.next is Stage.PILOT
    assert {r.code for r in status.unmet} == {R.PRIORITY_SCORED, R.TECHNICAL_OWNER}
    assert journey.use_case.version == use_case.version


def test_each_refusal_names_every_unmet_requirement_not_only_the_first(
    memory_app: Stagegate,
) -> None:
    journey = Journey(memory_app).register().reach(Stage.PILOT)
    journey.issue(c.AssignOwner, role="business", person=BUSINESS)

    with pytest.raises(GateBlocked) as refused:
        journey.advance(Stage.ACCEPTANCE)

    assert [r.code for r in refused.value.unmet] == [
        R.WORKFLOW_SPECIFIED,
        R.ESCALATION_OUTSIDE_AI_TEAM,
        R.ACCEPTANCE_CRITERIA,
    ]
