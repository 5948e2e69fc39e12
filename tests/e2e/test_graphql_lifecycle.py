"""Acceptance 5: a use case taken from PROPOSED to SCALE through GraphQL alone, over HTTP.

At each of the five gates ``advanceStage`` is refused first, naming exactly the requirements
still unmet, and passes once the evidence is recorded through mutations. Around the journey:
stale writes, wrong roles and wrong people are refused, and nothing is appended when they are.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.clock import clock_set_to
from tests.builders import (
    AI_COLLEAGUE,
    APPROVER,
    BASELINE_METRIC,
    BUSINESS,
    CRITERIA,
    EDITOR,
    FAILING_RESULTS,
    MONITOR,
    PASSING_RESULTS,
    PRIORITY,
    READINESS_ITEMS,
    TECH,
    last_month,
    unique_key,
)
from tests.e2e.conftest import Api

# GraphQL spells enum values in upper case.
GRAPHQL_CRITERIA = [{**c, "comparator": c["comparator"].upper()} for c in CRITERIA]


def iso(moment: datetime) -> str:
    return moment.isoformat()


def days_ago(days: float) -> str:
    return iso(datetime.now(UTC) - timedelta(days=days))


def workflow(first_responder: dict[str, str]) -> dict[str, Any]:
    return {
        "steps": [
            {"description": "Model drafts the routing", "performedByRole": "system"},
            {"description": "Clerk reviews the draft", "performedByRole": "clerk"},
            {
                "description": "Unclear invoices go to the supervisor",
                "performedByRole": "supervisor",
                "handlesExceptions": True,
            },
        ],
        "escalationPath": [first_responder, TECH],
    }


def codes(requirements: list[dict[str, Any]]) -> list[str]:
    return sorted(r["code"] for r in requirements)


class GraphQLJourney:
    """One use case driven through mutations, counting the ones that were accepted."""

    def __init__(self, api: Api, key: str) -> None:
        self.api = api
        self.key = key
        self.accepted = 0

    def accept(self, name: str, token: str | None = None, **input: Any) -> dict[str, Any]:
        """Issue a mutation that must be accepted; its event is the next version."""
        result = self.api.mutate(name, {"key": self.key, **input}, token)
        assert result["__typename"] == "UseCase", (name, result)
        self.accepted += 1
        assert result["version"] == self.accepted, (name, result)
        return result

    def refuse(
        self, name: str, typename: str, token: str | None = None, **input: Any
    ) -> dict[str, Any]:
        """Issue a mutation that must be refused with ``typename``; nothing may be appended."""
        before = self.api.version(self.key)
        result = self.api.mutate(name, {"key": self.key, **input}, token)
        assert result["__typename"] == typename, (name, result)
        assert self.api.version(self.key) == before, f"{name} appended although refused"
        return result

    def blocked(self, stage: str, target: str, unmet: list[str]) -> None:
        """``advanceStage`` is refused naming exactly ``unmet``; the gate query agrees."""
        refused = self.refuse("advanceStage", "GateBlocked")
        assert (refused["stage"], refused["target"]) == (stage, target)
        assert codes(refused["unmet"]) == sorted(unmet), refused
        assert all(r["message"] for r in refused["unmet"]), refused
        gate = self.state("stage gate { next unmet { code } }")
        assert gate["stage"] == stage
        assert gate["gate"]["next"] == target
        assert codes(gate["gate"]["unmet"]) == sorted(unmet)

    def advance(self, to: str) -> None:
        result = self.accept("advanceStage", to=to)
        assert result["stage"] == to, result

    def state(self, selection: str) -> dict[str, Any]:
        found = self.api.use_case(self.key, selection)
        assert found is not None, f"use case {self.key} vanished"
        return found


def test_takes_a_use_case_from_proposed_to_scale_through_every_gate(api: Api) -> None:
    # The server records the way to deployment 130 days ago (its clock is moved in-process),
    # so that a deployment 120 days ago can pass the 60-day measurement window today.
    with clock_set_to(lambda: datetime.now(UTC) - timedelta(days=130)):
        journey = _to_deployment(api)
    _from_deployment_to_scale(api, journey)


def _to_deployment(api: Api) -> GraphQLJourney:
    t = api.tokens
    journey = GraphQLJourney(api, unique_key("invoice-triage"))
    registered = journey.accept("registerUseCase", title="Invoice triage", businessUnit="Finance")
    assert registered["stage"] == "PROPOSED"

    # --- proposed -> pilot ---------------------------------------------------------------
    journey.blocked("PROPOSED", "PILOT", ["PRIORITY_SCORED", "TECHNICAL_OWNER"])
    journey.accept("scorePriority", **PRIORITY)
    journey.blocked("PROPOSED", "PILOT", ["TECHNICAL_OWNER"])
    journey.accept("assignOwner", role="TECHNICAL", person=TECH)
    journey.advance("PILOT")

    # --- pilot -> acceptance -------------------------------------------------------------
    journey.blocked(
        "PILOT",
        "ACCEPTANCE",
        [
            "BUSINESS_OWNER",
            "WORKFLOW_SPECIFIED",
            "ESCALATION_OUTSIDE_AI_TEAM",
            "ACCEPTANCE_CRITERIA",
        ],
    )
    # Evidence that is there but wrong: the technical owner named business owner too, and an
    # escalation path that starts on the AI team.
    journey.accept("assignOwner", role="BUSINESS", person=TECH)
    journey.accept("specifyWorkflow", workflow=workflow(first_responder=AI_COLLEAGUE))
    journey.blocked(
        "PILOT",
        "ACCEPTANCE",
        ["OWNERS_DISTINCT", "ESCALATION_OUTSIDE_AI_TEAM", "ACCEPTANCE_CRITERIA"],
    )
    journey.accept("assignOwner", role="BUSINESS", person=BUSINESS)
    journey.accept("specifyWorkflow", workflow=workflow(first_responder=BUSINESS))
    journey.accept("defineAcceptanceCriteria", criteria=GRAPHQL_CRITERIA, approver=APPROVER)
    journey.advance("ACCEPTANCE")

    # --- acceptance -> deployment --------------------------------------------------------
    journey.blocked(
        "ACCEPTANCE",
        "DEPLOYMENT",
        [
            "BASELINE",
            "EVALUATION_PASSED",
            "ACCEPTANCE_SIGNED_OFF",
            "PLATFORM_READY",
            "MONITORING_OWNER",
        ],
    )
    journey.accept(
        "captureBaseline",
        baseline={
            "metric": BASELINE_METRIC,
            "unit": "minutes",
            "value": 12.0,
            "direction": "LOWER_IS_BETTER",
            "measuredAt": days_ago(200),
            "method": "time study of 200 invoices",
        },
    )
    journey.accept(
        "registerCandidateVersion",
        version={"label": "v1", "model": "gpt-x", "prompt": "Route the invoice."},
    )
    journey.accept("recordEvaluation", version="v1", results=FAILING_RESULTS)
    evaluation = journey.state("evaluations { passed } gate { unmet { code } }")
    assert evaluation["evaluations"] == [{"passed": False}], "pass/fail is the domain's call"
    assert "EVALUATION_PASSED" in codes(evaluation["gate"]["unmet"])
    journey.accept("recordEvaluation", version="v1", results=PASSING_RESULTS)
    journey.accept("signOffAcceptance", token=t.approver, comment="Meets the criteria.")
    for item in READINESS_ITEMS:
        budget = {"monthlyBudget": "1000", "currency": "EUR"} if item == "cost_tracking" else {}
        journey.accept(
            "confirmReadiness", item=item.upper(), evidence=f"evidence for {item}", **budget
        )
    journey.blocked("ACCEPTANCE", "DEPLOYMENT", ["MONITORING_OWNER"])
    journey.accept("assignOwner", role="MONITORING", person=MONITOR)
    journey.advance("DEPLOYMENT")
    return journey


def _from_deployment_to_scale(api: Api, journey: GraphQLJourney) -> None:
    t = api.tokens

    # --- deployment -> measurement -------------------------------------------------------
    journey.blocked("DEPLOYMENT", "MEASUREMENT", ["DEPLOYED"])
    journey.accept("recordDeployment", version="v1", deployedAt=days_ago(120))
    journey.advance("MEASUREMENT")

    # --- measurement -> scale ------------------------------------------------------------
    journey.accept(
        "raiseQualityAlert",
        alertId="drift-1",
        severity="HIGH",
        description="Routing accuracy dropped on supplier invoices.",
    )
    journey.blocked(
        "MEASUREMENT",
        "SCALE",
        [
            "AFTER_STATE_MEASURED",
            "IMPROVEMENT_SHOWN",
            "COST_WITHIN_BUDGET",
            "ADOPTION",
            "VALUE_STATEMENT",
            "SCALE_CRITERIA_MET",
            "NO_OPEN_QUALITY_ALERT",
        ],
    )
    journey.accept("recordMeasurement", metric=BASELINE_METRIC, value=5.0, measuredAt=days_ago(10))
    journey.accept("recordAdoption", activeUsers=40, targetUsers=50, measuredAt=days_ago(5))
    month_start, month_end = last_month(datetime.now(UTC))
    journey.accept(
        "recordInferenceCost",
        periodStart=month_start.isoformat(),
        periodEnd=month_end.isoformat(),
        amount="640.00",
        currency="EUR",
    )
    journey.accept(
        "stateValue",
        token=t.business_owner,
        statement="Invoices are routed in 5 minutes instead of 12.",
    )
    journey.accept("defineScaleCriteria", criteria=[{"dimension": "VOLUME", "target": "50k/month"}])
    journey.blocked("MEASUREMENT", "SCALE", ["SCALE_CRITERIA_MET", "NO_OPEN_QUALITY_ALERT"])
    journey.accept("confirmScaleCriterion", dimension="VOLUME", evidence="load test at 60k/month")
    journey.accept("resolveQualityAlert", alertId="drift-1", resolution="Supplier data fixed.")
    journey.advance("SCALE")

    final = journey.state(
        "stage version gate { next unmet { code } open } "
        "owners { business { id } technical { id } monitoring { id } } "
        "signOff { signedBy version } productionVersion valueStatement { statedBy }"
    )
    assert final["stage"] == "SCALE"
    assert final["version"] == journey.accepted
    assert final["gate"] == {"next": None, "unmet": [], "open": False}
    assert final["owners"] == {
        "business": {"id": BUSINESS["id"]},
        "technical": {"id": TECH["id"]},
        "monitoring": {"id": MONITOR["id"]},
    }
    assert final["signOff"] == {"signedBy": APPROVER["id"], "version": "v1"}
    assert final["productionVersion"] == "v1"
    assert final["valueStatement"] == {"statedBy": BUSINESS["id"]}
    # Past SCALE there is no forward move at all.
    assert journey.refuse("advanceStage", "RuleViolated")["code"] == "NO_NEXT_STAGE"


# --- refusals around the journey ----------------------------------------------------------


def register(api: Api, key: str | None = None) -> GraphQLJourney:
    journey = GraphQLJourney(api, key or unique_key())
    journey.accept("registerUseCase", title="Invoice triage")
    return journey


def test_a_stale_expected_version_is_a_version_conflict(api: Api) -> None:
    journey = register(api)
    journey.accept("scorePriority", expectedVersion=1, **PRIORITY)

    conflict = journey.refuse(
        "assignOwner", "VersionConflict", expectedVersion=1, role="TECHNICAL", person=TECH
    )
    assert (conflict["expectedVersion"], conflict["actualVersion"]) == (1, 2)
    assert journey.state("owners { technical { id } }")["owners"]["technical"] is None

    journey.accept("assignOwner", expectedVersion=2, role="TECHNICAL", person=TECH)


READ_ONLY_OR_INTEGRATION = ["viewer", "auditor", "integration"]


@pytest.mark.parametrize("role", READ_ONLY_OR_INTEGRATION)
def test_read_only_roles_and_integrations_cannot_issue_mutations(api: Api, role: str) -> None:
    token = getattr(api.tokens, role)
    journey = register(api)
    journey.refuse("scorePriority", "Forbidden", token=token, **PRIORITY)
    journey.refuse("assignOwner", "Forbidden", token=token, role="TECHNICAL", person=TECH)
    journey.refuse("advanceStage", "Forbidden", token=token)
    journey.refuse("retire", "Forbidden", token=token, reason="not worth it")

    key = unique_key()
    refused = api.mutate("registerUseCase", {"key": key, "title": "Sneaky"}, token)
    assert refused["__typename"] == "Forbidden", refused
    assert api.use_case(key) is None


def test_read_only_roles_still_read_use_cases(api: Api) -> None:
    journey = register(api)
    for token in (api.tokens.viewer, api.tokens.auditor):
        body = api.gql(
            "query Get($key: String!) { useCase(key: $key) { key version } }",
            {"key": journey.key},
            token,
        )
        assert body == {"data": {"useCase": {"key": journey.key, "version": 1}}}


def _ready_for_sign_off(api: Api) -> GraphQLJourney:
    """Criteria with a named approver, a candidate and a passing evaluation of it."""
    journey = register(api)
    journey.accept("assignOwner", role="TECHNICAL", person=TECH)
    journey.accept("defineAcceptanceCriteria", criteria=GRAPHQL_CRITERIA, approver=APPROVER)
    journey.accept("registerCandidateVersion", version={"label": "v1", "model": "m", "prompt": "p"})
    journey.accept("recordEvaluation", version="v1", results=PASSING_RESULTS)
    return journey


def test_only_the_named_approver_signs_off(api: Api) -> None:
    journey = _ready_for_sign_off(api)

    journey.refuse("signOffAcceptance", "Forbidden", token=api.tokens.other_approver)
    journey.refuse("signOffAcceptance", "Forbidden", token=api.tokens.editor)
    assert journey.state("signOff { signedBy }")["signOff"] is None

    journey.accept("signOffAcceptance", token=api.tokens.approver)
    assert journey.state("signOff { signedBy }")["signOff"] == {"signedBy": APPROVER["id"]}


def test_only_the_business_owner_states_value(api: Api) -> None:
    journey = register(api)
    journey.accept("assignOwner", role="BUSINESS", person=BUSINESS)
    statement = "Invoices are routed in 5 minutes instead of 12."

    for someone_else in (api.tokens.editor, api.tokens.approver):
        journey.refuse("stateValue", "Forbidden", token=someone_else, statement=statement)
    assert journey.state("valueStatement { statedBy }")["valueStatement"] is None

    journey.accept("stateValue", token=api.tokens.business_owner, statement=statement)
    stated = journey.state("valueStatement { statedBy statement }")["valueStatement"]
    assert stated == {"statedBy": BUSINESS["id"], "statement": statement}


def test_registering_a_taken_key_is_refused(api: Api) -> None:
    journey = register(api)

    taken = api.mutate(
        "registerUseCase", {"key": journey.key, "title": "Another use case"}, api.tokens.editor
    )
    assert taken["__typename"] == "RuleViolated", taken
    assert taken["code"] == "KEY_TAKEN"
    assert journey.state("title version registeredBy") == {
        "title": "Invoice triage",
        "version": 1,
        "registeredBy": EDITOR.id,
    }


def test_a_command_to_an_unknown_key_is_not_found(api: Api) -> None:
    key = unique_key("nobody-registered")

    missing = api.mutate("scorePriority", {"key": key, **PRIORITY})
    assert missing["__typename"] == "NotFound", missing
    assert missing["key"] == key
    assert api.use_case(key) is None
