"""Stage gates as one pure function: given a use case and the policy, what blocks its next move.

``unmet_requirements`` returns *every* unmet requirement, never only the first. The same function
answers "what blocks this use case now" (``gate_status``) and refuses ``advanceStage``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from domain.costs import budget_of, within_budget_problem
from domain.improvement import improvements
from domain.policy import PolicyInForce, PolicyValues
from domain.state import UseCaseState
from domain.values import OwnerRole, ReadinessItem, Stage


class RequirementCode(StrEnum):
    PRIORITY_SCORED = "PRIORITY_SCORED"
    TECHNICAL_OWNER = "TECHNICAL_OWNER"
    BUSINESS_OWNER = "BUSINESS_OWNER"
    OWNERS_DISTINCT = "OWNERS_DISTINCT"
    WORKFLOW_SPECIFIED = "WORKFLOW_SPECIFIED"
    ESCALATION_OUTSIDE_AI_TEAM = "ESCALATION_OUTSIDE_AI_TEAM"
    ACCEPTANCE_CRITERIA = "ACCEPTANCE_CRITERIA"
    BASELINE = "BASELINE"
    EVALUATION_PASSED = "EVALUATION_PASSED"
    ACCEPTANCE_SIGNED_OFF = "ACCEPTANCE_SIGNED_OFF"
    PLATFORM_READY = "PLATFORM_READY"
    MONITORING_OWNER = "MONITORING_OWNER"
    DEPLOYED = "DEPLOYED"
    AFTER_STATE_MEASURED = "AFTER_STATE_MEASURED"
    IMPROVEMENT_SHOWN = "IMPROVEMENT_SHOWN"
    COST_WITHIN_BUDGET = "COST_WITHIN_BUDGET"
    ADOPTION = "ADOPTION"
    VALUE_STATEMENT = "VALUE_STATEMENT"
    SCALE_CRITERIA_MET = "SCALE_CRITERIA_MET"
    NO_OPEN_QUALITY_ALERT = "NO_OPEN_QUALITY_ALERT"


@dataclass(frozen=True)
class Requirement:
    """An unmet requirement: a stable code and a sentence a person can act on."""

    code: RequirementCode
    message: str


@dataclass(frozen=True)
class GateStatus:
    """Where the use case could go next and what stands in the way."""

    stage: Stage
    next: Stage | None
    unmet: list[Requirement]
    policy_version: int

    @property
    def open(self) -> bool:
        return self.next is not None and not self.unmet


Check = Callable[[UseCaseState, PolicyValues, datetime], str | None]
"""Returns None when the requirement holds at the instant given, else the sentence explaining
why not. Only ``COST_WITHIN_BUDGET`` depends on the instant (which month is the last complete
one); every other requirement is a function of the state and the policy alone."""


def _priority_scored(s: UseCaseState, p: PolicyValues, _at: datetime) -> str | None:
    if s.priority is None:
        return (
            "Score business leverage, implementation feasibility and organisational "
            "readiness (1-5, each with a rationale)."
        )
    if s.priority.lowest() < p.min_priority_score:
        return (
            f"Every priority dimension must score at least {p.min_priority_score} under "
            f"the current policy; the lowest is {s.priority.lowest()}."
        )
    return None


def _owner(role: OwnerRole, what: str) -> Check:
    def check(s: UseCaseState, _: PolicyValues, _at: datetime) -> str | None:
        return None if s.owner(role) else f"Name a {role.value} owner: {what}."

    return check


def _owners_distinct(s: UseCaseState, _: PolicyValues, _at: datetime) -> str | None:
    business, technical = s.owner(OwnerRole.BUSINESS), s.owner(OwnerRole.TECHNICAL)
    if business and technical and business.same_person(technical):
        return (
            f"The business owner and the technical owner are both {business.id}; "
            "they must be different people."
        )
    return None


def _workflow_specified(s: UseCaseState, _: PolicyValues, _at: datetime) -> str | None:
    if s.workflow is None:
        return (
            "Specify the changed workflow: ordered steps, who performs each, "
            "and at least one exception-handling step."
        )
    if not any(step.handles_exceptions for step in s.workflow.steps):
        return "The workflow specification needs at least one exception-handling step."
    return None


def _escalation_outside_ai_team(s: UseCaseState, _: PolicyValues, _at: datetime) -> str | None:
    path = s.workflow.escalation_path if s.workflow else ()
    if not path:
        return "Define an escalation path whose first responder is outside the AI team."
    first = path[0]
    technical = s.owner(OwnerRole.TECHNICAL)
    if technical is not None and technical.same_person(first):
        return (
            f"The escalation path's first responder, {first.id}, is the technical owner; "
            "operational issues must go to someone outside the AI team first."
        )
    if technical is not None and first.on_team(technical.team):
        return (
            f"The escalation path's first responder, {first.id}, is on the AI team "
            f"({technical.team}); name someone outside it."
        )
    return None


def _acceptance_criteria(s: UseCaseState, _: PolicyValues, _at: datetime) -> str | None:
    missing = []
    if not s.acceptance_criteria:
        missing.append("at least one acceptance criterion (metric, comparator, threshold)")
    if s.approver is None:
        missing.append("a named approver who signs off")
    return f"Define {' and '.join(missing)}." if missing else None


def _baseline(s: UseCaseState, _: PolicyValues, _at: datetime) -> str | None:
    if s.baselines:
        return None
    return "Capture a baseline (before-state) for at least one business metric."


def _evaluation_passed(s: UseCaseState, _: PolicyValues, _at: datetime) -> str | None:
    if s.candidate_version is None:
        return "Register a candidate version and record a passing evaluation of it."
    if not s.acceptance_criteria:
        return "Define acceptance criteria so that evaluations can be judged."
    if not s.passing_evaluations(s.candidate_version):
        return (
            f"No evaluation of the candidate version {s.candidate_version} meets every "
            "acceptance criterion."
        )
    return None


def _acceptance_signed_off(s: UseCaseState, _: PolicyValues, _at: datetime) -> str | None:
    if s.sign_off_is_valid():
        return None
    if s.approver is None:
        return "Name an approver; the approver must sign off a passing evaluation."
    if s.sign_off is None:
        return (
            f"The approver {s.approver.id} has not signed off a passing evaluation of the "
            "current candidate version."
        )
    technical = s.owner(OwnerRole.TECHNICAL)
    if technical is not None and technical.same_person(s.sign_off.signed_by):
        return (
            f"The sign-off is by {s.sign_off.signed_by}, who is the technical owner; "
            "separation of duties requires another approver."
        )
    return (
        f"The sign-off (by {s.sign_off.signed_by} of version {s.sign_off.version}) no "
        "longer stands for the current candidate, approver and criteria; sign off again."
    )


def _platform_ready(s: UseCaseState, _: PolicyValues, _at: datetime) -> str | None:
    missing = [item.value for item in ReadinessItem if item not in s.readiness]
    if missing:
        return f"Confirm platform readiness, with evidence, for: {', '.join(missing)}."
    return None


def _deployed(s: UseCaseState, _: PolicyValues, _at: datetime) -> str | None:
    if s.production_version is None:
        return "Record a production deployment of the signed-off version."
    if s.production_version not in s.approved_versions():
        # E.g. sent back to acceptance and a new candidate signed off: the old version is
        # still in production, but it is not the one this pass through the gates approved.
        return (
            f"Production runs version {s.production_version}, which is neither the signed-off "
            "version nor an approved change; deploy the signed-off version."
        )
    return None


def _after_state_measured(s: UseCaseState, p: PolicyValues, _at: datetime) -> str | None:
    if not s.baselines:
        return "No baseline metrics were captured, so there is no after-state to measure."
    if s.first_production_deployment_at is None:
        return "No production deployment was recorded, so no after-state can count yet."
    not_before = s.first_production_deployment_at + timedelta(days=p.measurement_window_days)
    missing = [m for m in s.baselines if s.after_state_for(m, not_before) is None]
    if missing:
        return (
            f"Measure the after-state of {', '.join(sorted(missing))} on or after "
            f"{not_before.date().isoformat()} ({p.measurement_window_days} days after the "
            "first production deployment)."
        )
    return None


def _improvement_shown(s: UseCaseState, p: PolicyValues, _at: datetime) -> str | None:
    if not s.baselines:
        return "No baseline metrics were captured, so no improvement can be shown."
    short = [m for m in improvements(s, p) if not m.counts]
    if short:
        return "The value is not proven: " + "; ".join(m.describe(p) for m in short) + "."
    return None


def _cost_within_budget(s: UseCaseState, _: PolicyValues, at: datetime) -> str | None:
    return within_budget_problem(s.monthly_costs, budget_of(s.readiness), at)


def _adoption(s: UseCaseState, p: PolicyValues, _at: datetime) -> str | None:
    latest = s.latest_adoption
    if latest is None:
        return f"Record adoption (active / target users); at least {p.min_adoption:.0%} needed."
    if latest.rate < p.min_adoption:
        return (
            f"Latest adoption is {latest.rate:.0%} ({latest.active_users}/"
            f"{latest.target_users}); the policy needs at least {p.min_adoption:.0%}."
        )
    return None


def _value_statement(s: UseCaseState, _: PolicyValues, _at: datetime) -> str | None:
    business = s.owner(OwnerRole.BUSINESS)
    statement = s.value_statement
    if statement is None:
        return "The business owner must state the value in operational terms."
    if business is None or not business.same_person(statement.stated_by):
        return (
            f"The value was stated by {statement.stated_by}, who is not the current "
            "business owner; the business owner must state it."
        )
    return None


def _scale_criteria_met(s: UseCaseState, _: PolicyValues, _at: datetime) -> str | None:
    if not s.scale_criteria:
        return "Define scale-readiness criteria (volume, geography or user population)."
    unconfirmed = [d.value for d in s.scale_criteria if d not in s.scale_confirmations]
    if unconfirmed:
        return f"Confirm that these scale criteria are met: {', '.join(unconfirmed)}."
    return None


def _no_open_quality_alert(s: UseCaseState, _: PolicyValues, _at: datetime) -> str | None:
    if s.open_quality_alerts:
        ids = ", ".join(s.open_quality_alerts)
        return f"Resolve the open output-quality alerts: {ids}."
    return None


R = RequirementCode
GATES: dict[Stage, tuple[tuple[RequirementCode, Check], ...]] = {
    Stage.PILOT: (
        (R.PRIORITY_SCORED, _priority_scored),
        (R.TECHNICAL_OWNER, _owner(OwnerRole.TECHNICAL, "the AI-team member who builds it")),
    ),
    Stage.ACCEPTANCE: (
        (
            R.BUSINESS_OWNER,
            _owner(OwnerRole.BUSINESS, "accountable for the outcome, operating the workflow"),
        ),
        (R.TECHNICAL_OWNER, _owner(OwnerRole.TECHNICAL, "the AI-team member who builds it")),
        (R.OWNERS_DISTINCT, _owners_distinct),
        (R.WORKFLOW_SPECIFIED, _workflow_specified),
        (R.ESCALATION_OUTSIDE_AI_TEAM, _escalation_outside_ai_team),
        (R.ACCEPTANCE_CRITERIA, _acceptance_criteria),
    ),
    Stage.DEPLOYMENT: (
        (R.BASELINE, _baseline),
        (R.EVALUATION_PASSED, _evaluation_passed),
        (R.ACCEPTANCE_SIGNED_OFF, _acceptance_signed_off),
        (R.PLATFORM_READY, _platform_ready),
        (
            R.MONITORING_OWNER,
            _owner(OwnerRole.MONITORING, "who reviews output quality in production"),
        ),
    ),
    Stage.MEASUREMENT: ((R.DEPLOYED, _deployed),),
    Stage.SCALE: (
        (R.AFTER_STATE_MEASURED, _after_state_measured),
        (R.IMPROVEMENT_SHOWN, _improvement_shown),
        (R.COST_WITHIN_BUDGET, _cost_within_budget),
        (R.ADOPTION, _adoption),
        (R.VALUE_STATEMENT, _value_statement),
        (R.SCALE_CRITERIA_MET, _scale_criteria_met),
        (R.NO_OPEN_QUALITY_ALERT, _no_open_quality_alert),
    ),
}
"""Requirements of the gate *into* each stage, in the order the spec lists them."""


_CHECKS: dict[RequirementCode, Check] = {
    code: check for requirements in GATES.values() for code, check in requirements
}


def requirement_holds(
    code: RequirementCode, state: UseCaseState, policy: PolicyValues, at: datetime
) -> bool:
    """Whether one requirement holds at ``at``, whatever stage the use case is in."""
    return _CHECKS[code](state, policy, at) is None


def unmet_requirements(
    state: UseCaseState, target: Stage, policy: PolicyValues, at: datetime
) -> list[Requirement]:
    """Every requirement of the gate into ``target`` that ``state`` does not meet at ``at``
    (the instant a command is judged, or the one ``asOf`` asks about)."""
    unmet = []
    for code, check in GATES.get(target, ()):
        message = check(state, policy, at)
        if message is not None:
            unmet.append(Requirement(code=code, message=message))
    return unmet


def gate_status(state: UseCaseState, policy: PolicyInForce, at: datetime) -> GateStatus:
    """What blocks the use case's next forward move at ``at`` (nothing to judge past
    ``scale``)."""
    target = state.stage.next
    unmet = [] if target is None else unmet_requirements(state, target, policy.values, at)
    return GateStatus(stage=state.stage, next=target, unmet=unmet, policy_version=policy.version)
