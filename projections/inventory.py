"""The portfolio inventory: one row per use case, for auditors and admins to export (CSV, JSON).

Each row says where the use case stands and on what evidence: stage and dates, owners, the gate
(next stage, unmet requirements, judged under the policy in force), the latest evaluation, each
baseline metric's measured improvement, the stated value, the monthly inference budget and the
cost: the last complete month's (the one ``COST_WITHIN_BUDGET`` judges) and the annualised.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from domain import costs
from domain.gates import gate_status
from domain.improvement import improvements
from domain.policy import PolicyInForce
from domain.state import UseCaseState
from domain.values import OwnerRole, ReadinessItem
from projections.readmodels import UseCaseRecord


def inventory_row(record: UseCaseRecord, policy: PolicyInForce, at: datetime) -> dict[str, Any]:
    """One use case as a JSON object (camelCase, nested where a value has parts), its gate
    judged by ``policy`` at ``at``."""
    state = record.state
    gate = gate_status(state, policy, at)
    evaluation = state.evaluations[-1] if state.evaluations else None
    budget = state.readiness.get(ReadinessItem.COST_TRACKING)
    value = state.value_statement
    measured = improvements(state, policy.values)

    def owner(role: OwnerRole) -> str | None:
        person = state.owner(role)
        return None if person is None else person.id

    return {
        "key": state.key,
        "title": state.title,
        "businessUnit": state.business_unit,
        "stage": state.stage.value,
        "stageSince": state.stage_since.isoformat(),
        "registeredAt": record.registered_at.isoformat(),
        "updatedAt": record.updated_at.isoformat(),
        "version": record.version,
        "businessOwner": owner(OwnerRole.BUSINESS),
        "technicalOwner": owner(OwnerRole.TECHNICAL),
        "monitoringOwner": owner(OwnerRole.MONITORING),
        "gate": {
            "next": gate.next.value if gate.next is not None else None,
            "unmet": [r.code.value for r in gate.unmet],
            "policyVersion": gate.policy_version,
        },
        "latestEvaluation": None
        if evaluation is None
        else {
            "version": evaluation.version,
            "passes": state.evaluation_passes(evaluation),
            "evaluatedAt": evaluation.evaluated_at.isoformat(),
        },
        "improvements": [
            {
                "metric": m.metric,
                "kind": m.baseline.kind.value,
                "direction": m.baseline.direction.value,
                "baseline": m.baseline.value,
                "afterState": None if m.after is None else m.after.value,
                "change": m.change,
                # None from a baseline of 0 (no relative change), as before an after-state.
                "relativeChange": m.relative_change
                if m.relative_change is not None and math.isfinite(m.relative_change)
                else None,
                "counts": m.counts,
            }
            for m in measured
        ],
        "improvementShown": bool(measured) and all(m.counts for m in measured),
        "valueStatement": None if value is None else value.statement,
        "estimatedAnnualValue": None
        if value is None or value.estimated_annual_value is None
        else str(value.estimated_annual_value),
        "valueCurrency": None if value is None else value.currency,
        "monthlyBudget": None
        if budget is None or budget.monthly_budget is None
        else str(budget.monthly_budget),
        "budgetCurrency": None if budget is None else budget.currency,
        **_cost(state, at),
    }


def _cost(state: UseCaseState, at: datetime) -> dict[str, Any]:
    """The last complete month's cost in the budget's currency (the one COST_WITHIN_BUDGET
    judges) and the annualised cost in the value's currency (the one the return is of)."""
    budget = costs.budget_of(state.readiness)
    month = costs.last_complete_month(at)
    reported = None
    if budget is not None:
        reported = state.monthly_costs.get(month, {}).get(budget.currency)
    value = state.value_statement
    currency = value.currency if value is not None else None
    annual = None if currency is None else costs.annualised_cost(state.monthly_costs, currency, at)
    return {
        "lastCompleteMonth": month,
        "lastMonthCost": None if reported is None else str(reported.amount),
        "lastMonthReportedInFull": None if reported is None else costs.reported_in_full(reported),
        "annualisedInferenceCost": None if annual is None else str(annual.amount),
    }


CSV_COLUMNS = (
    "key",
    "title",
    "businessUnit",
    "stage",
    "stageSince",
    "registeredAt",
    "updatedAt",
    "version",
    "businessOwner",
    "technicalOwner",
    "monitoringOwner",
    "nextStage",
    "unmetRequirements",
    "policyVersion",
    "latestEvaluationVersion",
    "latestEvaluationPasses",
    "latestEvaluationAt",
    "improvements",
    "improvementShown",
    "valueStatement",
    "estimatedAnnualValue",
    "valueCurrency",
    "monthlyBudget",
    "budgetCurrency",
    "lastCompleteMonth",
    "lastMonthCost",
    "lastMonthReportedInFull",
    "annualisedInferenceCost",
)


def csv_row(row: dict[str, Any]) -> list[str]:
    """A JSON row flattened into ``CSV_COLUMNS``: lists joined with "; ", a metric as
    ``name: +12.5% (outcome, counts)``. A cell a spreadsheet would run as a formula (it starts
    with = + - @, a tab or a carriage return) is prefixed with a quote, as OWASP advises for
    CSV opened in spreadsheets: titles and statements are what people typed."""
    gate, evaluation = row["gate"], row["latestEvaluation"]
    flat: dict[str, Any] = {
        **{name: row.get(name) for name in CSV_COLUMNS},
        "nextStage": gate["next"],
        "unmetRequirements": "; ".join(gate["unmet"]),
        "policyVersion": gate["policyVersion"],
        "latestEvaluationVersion": evaluation and evaluation["version"],
        "latestEvaluationPasses": evaluation and evaluation["passes"],
        "latestEvaluationAt": evaluation and evaluation["evaluatedAt"],
        "improvements": "; ".join(_improvement(m) for m in row["improvements"]),
    }
    return [_cell(flat[name]) for name in CSV_COLUMNS]


def _improvement(metric: dict[str, Any]) -> str:
    change, relative = metric["change"], metric["relativeChange"]
    if change is None:
        moved = "no after-state"
    elif relative is None:
        moved = f"{change:+g} from a baseline of 0"
    else:
        moved = f"{relative:+.1%}"
    counts = "counts" if metric["counts"] else "does not count"
    return f"{metric['metric']}: {moved} ({metric['kind']}, {counts})"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
