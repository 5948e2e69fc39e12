"""The use-case summary: one row per use case, what portals filter, rank and count by.

Built from the aggregate's state after each event and the policy in force, so its gate status
is the one ``useCase(key)`` reports.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from domain.gates import RequirementCode, gate_status, requirement_holds
from domain.policy import PolicyInForce
from domain.state import UseCaseState
from domain.values import OwnerRole


@dataclass(frozen=True)
class UseCaseSummary:
    id: str
    key: str
    title: str
    business_unit: str | None
    stage: str
    stage_since: datetime
    registered_at: datetime
    updated_at: datetime
    version: int
    business_owner: str | None
    technical_owner: str | None
    monitoring_owner: str | None
    approver: str | None
    leverage: int | None
    feasibility: int | None
    readiness: int | None
    priority_floor: int | None
    """The weakest of the three scores: a use case is only as strong as its weakest side."""
    priority_total: int | None
    gate_next: str | None
    unmet_codes: tuple[str, ...]
    external_models: tuple[tuple[str, str], ...]
    """(system, name) of each model in an external registry linked to the use case."""
    policy_version: int
    production_version: str | None
    first_production_deployment_at: datetime | None
    value_measured: bool
    """Every baseline metric has an after-state that counts under the policy window."""
    value_proven: bool
    """``IMPROVEMENT_SHOWN`` holds: the value is proven, not only measured."""
    judged_at: datetime
    """When the gate was judged: ``COST_WITHIN_BUDGET`` depends on the month, so a summary
    judged in an earlier month is judged again (``SummaryProjection.rejudge_judged_before``)."""
    adoption_rate: float | None
    estimated_annual_value: Decimal | None
    value_currency: str | None
    state_json: str


def summarize(
    use_case_id: str,
    state: UseCaseState,
    version: int,
    registered_at: datetime,
    updated_at: datetime,
    policy: PolicyInForce,
    at: datetime,
) -> UseCaseSummary:
    """The summary of ``state``, its gate judged by ``policy`` at ``at``."""
    gate = gate_status(state, policy, at)
    owners = state.owners
    priority = state.priority
    scores = (
        (priority.leverage.score, priority.feasibility.score, priority.readiness.score)
        if priority
        else None
    )
    statement = state.value_statement
    return UseCaseSummary(
        id=use_case_id,
        key=state.key,
        title=state.title,
        business_unit=state.business_unit,
        stage=state.stage.value,
        stage_since=state.stage_since,
        registered_at=registered_at,
        updated_at=updated_at,
        version=version,
        business_owner=_id(owners.get(OwnerRole.BUSINESS)),
        technical_owner=_id(owners.get(OwnerRole.TECHNICAL)),
        monitoring_owner=_id(owners.get(OwnerRole.MONITORING)),
        approver=state.approver.id if state.approver else None,
        leverage=scores[0] if scores else None,
        feasibility=scores[1] if scores else None,
        readiness=scores[2] if scores else None,
        priority_floor=min(scores) if scores else None,
        priority_total=sum(scores) if scores else None,
        gate_next=gate.next.value if gate.next else None,
        unmet_codes=tuple(r.code.value for r in gate.unmet),
        external_models=tuple(
            (m.system.value, m.name) for _, m in sorted(state.external_models.items())
        ),
        policy_version=policy.version,
        production_version=state.production_version,
        first_production_deployment_at=state.first_production_deployment_at,
        value_measured=requirement_holds(
            RequirementCode.AFTER_STATE_MEASURED, state, policy.values, at
        ),
        value_proven=requirement_holds(RequirementCode.IMPROVEMENT_SHOWN, state, policy.values, at),
        judged_at=at,
        adoption_rate=state.latest_adoption.rate if state.latest_adoption else None,
        estimated_annual_value=statement.estimated_annual_value if statement else None,
        value_currency=statement.currency if statement else None,
        # Keys sorted: a state loaded from a snapshot (stored canonically) and the same state
        # built event by event hold their dicts in different orders, and must read the same.
        state_json=json.dumps(
            state.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ),
    )


def _id(person: object) -> str | None:
    return getattr(person, "id", None)
