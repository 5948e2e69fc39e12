"""Rules that guard production: when a deployment may happen, what it may install, and what
may change once a use case is live. Every refusal appends nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain import commands as c
from domain.application import Stagegate
from domain.errors import Rule, ValidationFailed
from domain.values import PRODUCTION, Stage
from tests.builders import (
    AI_COLLEAGUE,
    APPROVER_ACTOR,
    CRITERIA,
    PASSING_RESULTS,
    TECH,
    Journey,
    R,
    workflow,
)
from tests.unit.test_rules import approved_change, in_deployment, refuse


def test_a_production_deployment_cannot_predate_the_gate_into_deployment(
    memory_app: Stagegate,
) -> None:
    journey = Journey(memory_app).register().reach(Stage.DEPLOYMENT)
    entered = journey.use_case.state.entered_deployment_at
    assert entered is not None

    refuse(
        journey,
        Rule.DEPLOYMENT_PREDATES_GATE,
        c.RecordDeployment,
        {"version": "v1", "deployed_at": entered - timedelta(days=30)},
    )
    journey.issue(c.RecordDeployment, version="v1", deployed_at=entered + timedelta(hours=1))
    assert journey.use_case.state.production_version == "v1"


def test_a_non_production_deployment_may_be_recorded_any_time(memory_app: Stagegate) -> None:
    journey = Journey(memory_app).register().reach(Stage.ACCEPTANCE)
    journey.satisfy(R.EVALUATION_PASSED)
    journey.issue(
        c.RecordDeployment,
        version="v1",
        environment="staging",
        deployed_at=journey.now - timedelta(days=100),
    )
    assert journey.use_case.state.production_version is None


@pytest.mark.parametrize("alias", ["prod", "PRD", "live", "Production"])
def test_production_aliases_are_held_to_the_production_rules(
    memory_app: Stagegate, alias: str
) -> None:
    journey = Journey(memory_app).register().reach(Stage.ACCEPTANCE)
    journey.satisfy(R.EVALUATION_PASSED)
    refuse(
        journey,
        Rule.STAGE_DOES_NOT_ALLOW,
        c.RecordDeployment,
        {"version": "v1", "environment": alias},
    )


def test_acceptance_criteria_cannot_be_redefined_in_production(memory_app: Stagegate) -> None:
    journey = in_deployment(memory_app)
    refuse(
        journey,
        Rule.STAGE_DOES_NOT_ALLOW,
        c.DefineAcceptanceCriteria,
        {"criteria": CRITERIA, "approver": {"id": APPROVER_ACTOR.id}},
    )
    journey.issue(c.ReturnToStage, stage="acceptance", reason="new regulation")
    journey.issue(c.DefineAcceptanceCriteria, criteria=CRITERIA, approver={"id": APPROVER_ACTOR.id})


def test_another_version_needs_an_approved_change_not_a_plain_redeploy(
    memory_app: Stagegate,
) -> None:
    journey = in_deployment(memory_app)
    approved_change(journey, "v2", deployed_at=journey.now)
    assert journey.use_case.state.production_version == "v2"

    # v1 is the signed-off version, but it is not in production any more: going back to it
    # is a rollback (with a reason), not a silent redeploy.
    refuse(journey, Rule.VERSION_NOT_APPROVED, c.RecordDeployment, {"version": "v1"})
    journey.issue(c.RecordDeployment, version="v2")  # the same version again is fine
    journey.issue(c.RollBack, reason="latency regression", to_version="v1")
    assert journey.use_case.state.production_version == "v1"


def test_an_approved_change_counts_only_while_its_version_passes_the_criteria(
    memory_app: Stagegate,
) -> None:
    journey = in_deployment(memory_app)
    approved_change(journey, "v2")
    assert "v2" in journey.use_case.state.deployable_versions()

    journey.issue(c.ReturnToStage, stage="acceptance", reason="criteria tightened")
    stricter = [{"metric": "accuracy", "comparator": "gte", "threshold": 0.99}]
    journey.issue(c.DefineAcceptanceCriteria, criteria=stricter, approver={"id": APPROVER_ACTOR.id})

    state = journey.use_case.state
    assert "v2" not in state.approved_versions()
    assert "v2" not in state.deployable_versions()


@pytest.mark.parametrize(
    ("workflow_fields", "path"),
    [
        (workflow(True, {"id": "ops.lead@example.com"}), "workflow.escalationPath.0"),
        (workflow(True, {"id": "x@example.com", "team": ""}), "workflow.escalationPath.0.team"),
    ],
)
def test_escalation_responders_must_name_their_team(
    memory_app: Stagegate, workflow_fields: dict[str, object], path: str
) -> None:
    journey = Journey(memory_app).register()
    with pytest.raises(ValidationFailed) as refused:
        journey.issue(c.SpecifyWorkflow, workflow=workflow_fields)
    assert [e.path for e in refused.value.errors] == [path]
    assert journey.use_case.version == 1


def test_the_technical_owner_must_name_the_ai_team(memory_app: Stagegate) -> None:
    journey = Journey(memory_app).register()
    with pytest.raises(ValidationFailed) as refused:
        journey.issue(c.AssignOwner, role="technical", person={"id": TECH["id"]})
    assert [e.path for e in refused.value.errors] == ["person"]
    journey.issue(c.AssignOwner, role="business", person={"id": "bea@example.com"})
    assert journey.use_case.version == 2


def test_a_first_responder_on_the_ai_team_fails_the_escalation_gate(
    memory_app: Stagegate,
) -> None:
    journey = Journey(memory_app).register().reach(Stage.PILOT)
    journey.satisfy_gate(Stage.ACCEPTANCE)
    journey.issue(c.SpecifyWorkflow, workflow=workflow(True, AI_COLLEAGUE))
    status = memory_app.gate(journey.use_case)
    assert [r.code for r in status.unmet] == [R.ESCALATION_OUTSIDE_AI_TEAM]


def test_generated_alert_ids_never_collide_with_chosen_ones(memory_app: Stagegate) -> None:
    journey = in_deployment(memory_app)
    journey.issue(c.RaiseQualityAlert, alert_id="alert-1", severity="low", description="drift")
    journey.issue(c.RaiseQualityAlert, severity="low", description="more drift")
    assert sorted(journey.use_case.state.open_quality_alerts) == ["alert-1", "alert-2"]


def test_an_alert_cannot_be_resolved_before_it_was_raised(memory_app: Stagegate) -> None:
    journey = in_deployment(memory_app)
    raised_at = journey.now - timedelta(days=2)
    journey.issue(
        c.RaiseQualityAlert, alert_id="a", severity="high", description="x", raised_at=raised_at
    )
    refuse(
        journey,
        Rule.RESOLVED_BEFORE_RAISED,
        c.ResolveQualityAlert,
        {"alert_id": "a", "resolution": "fixed", "resolved_at": raised_at - timedelta(hours=1)},
    )


def test_a_rollback_with_no_earlier_version_withdraws_from_production(
    memory_app: Stagegate,
) -> None:
    journey = in_deployment(memory_app)
    journey.issue(c.RollBack, reason="pulled pending legal review")
    state = journey.use_case.state
    assert state.production_version is None
    assert memory_app.gate(journey.use_case).next is Stage.MEASUREMENT
    assert R.DEPLOYED in {r.code for r in memory_app.gate(journey.use_case).unmet}
    journey.issue(c.RecordDeployment, version="v1", environment=PRODUCTION)
    assert journey.use_case.state.production_version == "v1"


def test_a_change_version_deployed_and_rolled_back_can_be_evaluated_again(
    memory_app: Stagegate,
) -> None:
    journey = in_deployment(memory_app)
    approved_change(journey, "v2", deployed_at=journey.now)
    journey.issue(c.RollBack, reason="regression")
    journey.issue(c.RecordEvaluation, version="v2", results=PASSING_RESULTS)
    refuse(journey, Rule.VERSION_NOT_APPROVED, c.RecordDeployment, {"version": "v2"})
    approved_change(journey, "v3")
    journey.issue(c.RecordDeployment, version="v3")
    assert journey.use_case.state.production_version == "v3"
