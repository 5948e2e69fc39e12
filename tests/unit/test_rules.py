"""Acceptance 2: the domain rules beyond gates, each shown through the application.

Every refusal is checked twice: the error names the rule, and the use case, reloaded from the
store, is still at the version it had before (nothing was appended).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from domain import commands as c
from domain.application import Stagegate
from domain.errors import DomainError, Forbidden, GateBlocked, NotFound, Rule, RuleViolated
from domain.metadata import Actor, CommandContext
from domain.usecase import UseCase
from domain.values import Channel, Role, Stage
from tests.builders import (
    ADMIN,
    APPROVER,
    APPROVER_ACTOR,
    AUDITOR,
    BASELINE_METRIC,
    BUSINESS_ACTOR,
    CRITERIA,
    EDITOR,
    FAILING_RESULTS,
    MONITOR,
    PASSING_RESULTS,
    PRIORITY,
    TECH,
    VIEWER,
    Journey,
    R,
    ctx,
    days_ago,
    unique_key,
    workflow,
)

OTHER_APPROVER = Actor(id="olga.other@example.com", role=Role.APPROVER)
INTEGRATION = Actor(id="ci-pipeline", role=Role.INTEGRATION)


def refuse(
    journey: Journey,
    expected: type[DomainError] | Rule,
    command: type[c.Command],
    fields: dict[str, Any] | None = None,
    actor: Actor = EDITOR,
) -> Any:
    """Issue a command that must be refused (with an error type, or RuleViolated of a code);
    check the refusal, and that the use case reloaded from the store gained no event."""
    before = journey.use_case.version
    error = RuleViolated if isinstance(expected, Rule) else expected
    with pytest.raises(error) as refused:
        journey.issue(command, actor=actor, **(fields or {}))
    if isinstance(expected, Rule):
        assert refused.value.code is expected
    assert journey.use_case.version == before, "a refused command appends nothing"
    return refused.value


BASELINE = {"metric": "errors", "unit": "errors", "value": 3.0, "direction": "lower_is_better"}
BASELINE |= {"measured_at": days_ago(1), "method": "log count"}
COST = {"period_end": days_ago(1), "amount": "12.50", "currency": "EUR"}


def events(app: Stagegate, journey: Journey) -> list[Any]:
    return list(app.events.get(journey.use_case.id))


def version(label: str) -> dict[str, str]:
    return {"label": label, "model": "gpt-x", "prompt": f"prompt for {label}"}


def in_deployment(app: Stagegate) -> Journey:
    """A use case in ``deployment`` with its signed-off v1 live since 120 days."""
    journey = Journey(app).register().reach(Stage.DEPLOYMENT)
    journey.satisfy(R.DEPLOYED)
    return journey


def approved_change(journey: Journey, label: str, deployed_at: Any = None) -> None:
    journey.issue(c.RequestChange, to_version=version(label), reason="cheaper model")
    journey.issue(c.RecordEvaluation, version=label, results=PASSING_RESULTS)
    number = len(journey.use_case.state.changes)
    journey.issue(c.ApproveChange, actor=APPROVER_ACTOR, change_number=number)
    if deployed_at is not None:
        journey.issue(c.RecordDeployment, version=label, deployed_at=deployed_at)


# --- separation of duties, who may sign, approve and state value ---------------------------


@pytest.mark.parametrize("tech_id", [TECH["id"], TECH["id"].upper()])
def test_the_technical_owner_is_never_the_approver(memory_app: Stagegate, tech_id: str) -> None:
    journey = Journey(memory_app).register().reach(Stage.ACCEPTANCE)
    journey.satisfy(R.EVALUATION_PASSED)
    define = {"criteria": CRITERIA, "approver": {**TECH, "id": tech_id}}
    refuse(journey, Rule.SEPARATION_OF_DUTIES, c.DefineAcceptanceCriteria, define)
    refuse(journey, Forbidden, c.SignOffAcceptance, actor=Actor(id=tech_id, role=Role.APPROVER))
    assert journey.use_case.state.sign_off is None


def test_refuses_making_the_named_approver_technical_owner(memory_app: Stagegate) -> None:
    journey = Journey(memory_app).register()
    journey.issue(c.DefineAcceptanceCriteria, criteria=CRITERIA, approver=APPROVER)
    assign = {"role": "technical", "person": APPROVER}
    refuse(journey, Rule.SEPARATION_OF_DUTIES, c.AssignOwner, assign)
    journey.issue(c.AssignOwner, role="business", person=APPROVER)  # other roles are fine


@pytest.mark.parametrize(
    "signer", [OTHER_APPROVER, ADMIN, Actor(id=APPROVER["id"], role=Role.EDITOR)]
)
def test_only_the_named_approver_with_an_approver_token_signs_off(
    memory_app: Stagegate, signer: Actor
) -> None:
    journey = Journey(memory_app).register().reach(Stage.ACCEPTANCE)
    journey.satisfy(R.EVALUATION_PASSED)
    refuse(journey, Forbidden, c.SignOffAcceptance, actor=signer)
    signed = journey.issue(c.SignOffAcceptance, actor=APPROVER_ACTOR)
    assert signed.state.sign_off is not None
    assert signed.state.sign_off.signed_by == APPROVER["id"]


def test_sign_off_needs_a_passing_evaluation_of_the_candidate(memory_app: Stagegate) -> None:
    journey = Journey(memory_app).register().reach(Stage.ACCEPTANCE)
    journey.issue(c.RegisterCandidateVersion, version=version("v1"))
    journey.issue(c.RecordEvaluation, version="v1", results=FAILING_RESULTS)
    refuse(journey, Rule.EVALUATION_NOT_PASSED, c.SignOffAcceptance, actor=APPROVER_ACTOR)


@pytest.mark.parametrize("stater", [EDITOR, ADMIN, APPROVER_ACTOR])
def test_only_the_named_business_owner_states_value(memory_app: Stagegate, stater: Actor) -> None:
    journey = Journey(memory_app).register().reach(Stage.ACCEPTANCE)
    statement = "Invoices routed in 5 minutes instead of 12."
    refuse(journey, Forbidden, c.StateValue, {"statement": statement}, actor=stater)
    stated = journey.issue(c.StateValue, actor=BUSINESS_ACTOR, statement=statement)
    assert stated.state.value_statement is not None
    assert stated.state.value_statement.stated_by == BUSINESS_ACTOR.id


@pytest.mark.parametrize("requester_id", [APPROVER["id"], APPROVER["id"].upper()])
def test_nobody_approves_their_own_change(memory_app: Stagegate, requester_id: str) -> None:
    journey = in_deployment(memory_app)
    requester = Actor(id=requester_id, role=Role.ADMIN)
    journey.issue(c.RequestChange, actor=requester, to_version=version("v2"), reason="drift")
    journey.issue(c.RecordEvaluation, version="v2", results=PASSING_RESULTS)
    approve = {"change_number": 1}
    refuse(journey, Rule.SELF_APPROVAL, c.ApproveChange, approve, actor=APPROVER_ACTOR)


def test_a_change_needs_a_passing_evaluation_of_its_own_version(memory_app: Stagegate) -> None:
    journey = in_deployment(memory_app)
    journey.issue(c.RequestChange, to_version=version("v2"), reason="drift")
    journey.issue(c.RecordEvaluation, version="v2", results=FAILING_RESULTS)
    journey.issue(c.RecordEvaluation, version="v1", results=PASSING_RESULTS)  # not v2's
    approve = {"change_number": 1}
    refuse(journey, Forbidden, c.ApproveChange, approve, actor=OTHER_APPROVER)
    refuse(journey, Rule.EVALUATION_NOT_PASSED, c.ApproveChange, approve, actor=APPROVER_ACTOR)
    journey.issue(c.RecordEvaluation, version="v2", results=PASSING_RESULTS)
    approved = journey.issue(c.ApproveChange, actor=APPROVER_ACTOR, **approve)
    assert approved.state.changes[0].approved_by == APPROVER["id"]


# --- what voids a sign-off -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "fields"),
    [
        (c.RegisterCandidateVersion, {"version": version("v2")}),
        (c.DefineAcceptanceCriteria, {"criteria": CRITERIA[:1], "approver": APPROVER}),
    ],
    ids=["new-candidate", "criteria-redefined"],
)
def test_sign_off_is_voided_by(memory_app: Stagegate, command: Any, fields: Any) -> None:
    journey = Journey(memory_app).register().reach(Stage.ACCEPTANCE)
    journey.satisfy(R.ACCEPTANCE_SIGNED_OFF)
    assert R.ACCEPTANCE_SIGNED_OFF not in _unmet(memory_app, journey)

    voided = journey.issue(command, **fields)

    assert voided.state.sign_off is None
    assert R.ACCEPTANCE_SIGNED_OFF in _unmet(memory_app, journey)


def _unmet(app: Stagegate, journey: Journey) -> set[R]:
    return {r.code for r in app.gate(journey.use_case).unmet}


# --- baseline, measurement window, policy ----------------------------------------------------


def test_refuses_baseline_once_deployment_was_reached_even_after_returning(
    memory_app: Stagegate,
) -> None:
    journey = Journey(memory_app).register().reach(Stage.ACCEPTANCE)
    journey.satisfy(R.BASELINE)  # before deployment it is accepted
    journey.reach(Stage.DEPLOYMENT)
    refuse(journey, Rule.BASELINE_AFTER_DEPLOYMENT, c.CaptureBaseline, {"baseline": BASELINE})
    journey.issue(c.ReturnToStage, stage="acceptance", reason="rework the prompt")
    refuse(journey, Rule.BASELINE_AFTER_DEPLOYMENT, c.CaptureBaseline, {"baseline": BASELINE})


def scale_ready_but_after_state(app: Stagegate) -> Journey:
    journey = Journey(app).register().reach(Stage.MEASUREMENT)
    journey.satisfy_gate(Stage.SCALE, except_=R.AFTER_STATE_MEASURED)
    return journey


def measure(journey: Journey, days_after_first_deployment: float) -> None:
    at = journey.deployed_at + timedelta(days=days_after_first_deployment)
    journey.issue(c.RecordMeasurement, metric=BASELINE_METRIC, value=5.0, measured_at=at)


@pytest.mark.parametrize(("days", "counts"), [(59, False), (60, True), (61, True)])
def test_after_state_counts_only_from_the_default_60_day_window(
    memory_app: Stagegate, days: int, counts: bool
) -> None:
    journey = scale_ready_but_after_state(memory_app)
    measure(journey, days)
    assert (R.AFTER_STATE_MEASURED not in _unmet(memory_app, journey)) is counts
    if not counts:
        refuse(journey, GateBlocked, c.AdvanceStage)


def test_window_starts_at_the_first_production_deployment_not_staging_nor_later_ones(
    memory_app: Stagegate,
) -> None:
    journey = Journey(memory_app).register().reach(Stage.ACCEPTANCE)
    journey.satisfy_gate(Stage.DEPLOYMENT)
    journey.issue(
        c.RecordDeployment, version="v1", environment="staging", deployed_at=days_ago(300)
    )
    journey.reach(Stage.MEASUREMENT)  # first production deployment: 120 days ago
    approved_change(journey, "v2", deployed_at=days_ago(20))
    journey.satisfy_gate(Stage.SCALE, except_=R.AFTER_STATE_MEASURED)
    measure(journey, -60)  # 240 days after staging, before production: must not count
    assert R.AFTER_STATE_MEASURED in _unmet(memory_app, journey)
    measure(journey, 60)  # 60 days after the first production, 40 before the latest
    assert R.AFTER_STATE_MEASURED not in _unmet(memory_app, journey)


def test_policy_window_changes_the_verdict_and_the_advance_records_its_version(
    memory_app: Stagegate,
) -> None:
    journey = scale_ready_but_after_state(memory_app)
    measure(journey, 40)
    assert R.AFTER_STATE_MEASURED in _unmet(memory_app, journey)
    policy = memory_app.set_policy(c.SetPolicy.parse({"measurementWindowDays": 30}), ctx(ADMIN))
    assert R.AFTER_STATE_MEASURED not in _unmet(memory_app, journey)
    memory_app.set_policy(c.SetPolicy.parse({"measurementWindowDays": 45}), ctx(ADMIN))
    with pytest.raises(GateBlocked) as blocked:
        journey.advance(Stage.SCALE)
    assert blocked.value.policy_version == policy.version + 1
    memory_app.set_policy(c.SetPolicy.parse({"measurementWindowDays": 30}), ctx(ADMIN))

    journey.advance(Stage.SCALE)

    advanced = events(memory_app, journey)[-1]
    assert isinstance(advanced, UseCase.StageAdvanced)
    assert advanced.policy_version == memory_app.policy().version == policy.version + 2
    assert memory_app.policy_at(advanced.policy_version).values.measurement_window_days == 30
    assert memory_app.policy_at(blocked.value.policy_version).values.measurement_window_days == 45


# --- deployments and rollbacks ---------------------------------------------------------------


def test_refuses_deployment_of_unapproved_version(memory_app: Stagegate) -> None:
    journey = in_deployment(memory_app)
    journey.issue(c.RequestChange, to_version=version("v2"), reason="cheaper model")
    refuse(journey, Rule.VERSION_NOT_APPROVED, c.RecordDeployment, {"version": "v2"})
    journey.issue(c.RecordEvaluation, version="v2", results=PASSING_RESULTS)
    journey.issue(c.ApproveChange, actor=APPROVER_ACTOR, change_number=1)

    deployed = journey.issue(c.RecordDeployment, version="v2")

    assert deployed.state.production_version == "v2"
    assert deployed.state.deployments[-1].change_number == 1
    assert deployed.state.changes[0].status == "deployed"


def test_rollback_without_anything_in_production_is_refused(memory_app: Stagegate) -> None:
    journey = Journey(memory_app).register().reach(Stage.DEPLOYMENT)
    refuse(journey, Rule.NOTHING_DEPLOYED, c.RollBack, {"reason": "panic"})


def test_rollback_right_after_an_unapproved_attempt_returns_to_previous_version(
    memory_app: Stagegate,
) -> None:
    journey = in_deployment(memory_app)
    approved_change(journey, "v2", deployed_at=days_ago(10))
    journey.issue(c.RequestChange, to_version=version("v3"), reason="try a new prompt")
    refuse(journey, Rule.VERSION_NOT_APPROVED, c.RecordDeployment, {"version": "v3"})
    context = CommandContext(
        actor=INTEGRATION, channel=Channel.CLOUDEVENTS, correlation_id="rb-1", source="cd"
    )
    rollback = c.RollBack.parse({"key": journey.key, "reason": "error rate doubled"})

    rolled = memory_app.execute(rollback, context)

    assert rolled.state.production_version == "v1"
    event = events(memory_app, journey)[-1]
    assert isinstance(event, UseCase.RolledBack)
    assert (event.from_version, event.to_version) == ("v2", "v1")
    assert event.meta.reason == "error rate doubled"
    assert (event.meta.actor_id, event.meta.source) == (INTEGRATION.id, "cd")


# --- retirement and returning ---------------------------------------------------------------

SAMPLES: dict[type[c.UseCaseCommand], tuple[Actor, dict[str, Any]]] = {
    c.ScorePriority: (EDITOR, PRIORITY),
    c.AssignOwner: (EDITOR, {"role": "monitoring", "person": MONITOR}),
    c.SpecifyWorkflow: (EDITOR, {"workflow": workflow()}),
    c.DefineAcceptanceCriteria: (EDITOR, {"criteria": CRITERIA, "approver": APPROVER}),
    c.CaptureBaseline: (EDITOR, {"baseline": BASELINE}),
    c.RegisterCandidateVersion: (EDITOR, {"version": version("v9")}),
    c.RecordEvaluation: (EDITOR, {"version": "v1", "results": PASSING_RESULTS}),
    c.SignOffAcceptance: (APPROVER_ACTOR, {}),
    c.ConfirmReadiness: (EDITOR, {"item": "rollback_plan", "evidence": "runbook"}),
    c.AdvanceStage: (EDITOR, {}),
    c.RecordDeployment: (EDITOR, {"version": "v1"}),
    c.RecordMeasurement: (EDITOR, {"metric": BASELINE_METRIC, "value": 5.0}),
    c.RecordAdoption: (EDITOR, {"active_users": 30, "target_users": 50}),
    c.RecordInferenceCost: (EDITOR, {"period_start": days_ago(30), **COST}),
    c.LinkExternalModel: (EDITOR, {"system": "mlflow", "name": "invoice-router"}),
    c.UnlinkExternalModel: (
        EDITOR,
        {"system": "mlflow", "name": "invoice-router", "reason": "replaced by a vendor model"},
    ),
    c.StateValue: (BUSINESS_ACTOR, {"statement": "Five minutes instead of twelve."}),
    c.DefineScaleCriteria: (EDITOR, {"criteria": [{"dimension": "volume", "target": "50k"}]}),
    c.ConfirmScaleCriterion: (EDITOR, {"dimension": "volume", "evidence": "load test"}),
    c.RequestChange: (EDITOR, {"to_version": version("v2"), "reason": "cheaper"}),
    c.ApproveChange: (APPROVER_ACTOR, {"change_number": 1}),
    c.RollBack: (EDITOR, {"reason": "outputs degraded"}),
    c.RaiseQualityAlert: (EDITOR, {"severity": "high", "description": "drift"}),
    c.ResolveQualityAlert: (EDITOR, {"alert_id": "alert-1", "resolution": "fixed"}),
    c.ReturnToStage: (EDITOR, {"stage": "pilot", "reason": "rework"}),
    c.Retire: (EDITOR, {"reason": "superseded"}),
}


@pytest.mark.parametrize("command", c.USE_CASE_COMMANDS, ids=lambda k: k.__name__)
def test_retired_use_case_accepts_nothing(memory_app: Stagegate, command: Any) -> None:
    journey = in_deployment(memory_app)
    journey.issue(c.Retire, reason="superseded by a vendor product")
    assert journey.use_case.state.stage is Stage.RETIRED
    actor, fields = SAMPLES[command]
    refuse(journey, Rule.RETIRED, command, fields, actor=actor)


def test_retire_records_its_reason(memory_app: Stagegate) -> None:
    journey = Journey(memory_app).register()  # a missing reason: see test_validation
    journey.issue(c.Retire, reason="no business owner found")
    event = events(memory_app, journey)[-1]
    assert isinstance(event, UseCase.Retired)
    assert (event.from_stage, event.meta.reason) == (Stage.PROPOSED, "no business owner found")


@pytest.mark.parametrize("target", ["proposed", "acceptance", "deployment", "retired"])
def test_return_only_to_an_earlier_stage_never_proposed(memory_app: Stagegate, target: str) -> None:
    journey = Journey(memory_app).register().reach(Stage.ACCEPTANCE)
    back = {"stage": target, "reason": "rework"}
    refuse(journey, Rule.INVALID_RETURN_TARGET, c.ReturnToStage, back)


def test_returning_keeps_evidence_and_judges_the_gate_again(memory_app: Stagegate) -> None:
    journey = in_deployment(memory_app)
    before = journey.use_case.state

    returned = journey.issue(c.ReturnToStage, stage="acceptance", reason="accuracy drift")

    kept = returned.state.model_dump(exclude={"stage", "stage_since"})
    assert kept == before.model_dump(exclude={"stage", "stage_since"})
    assert returned.state.stage is Stage.ACCEPTANCE
    assert events(memory_app, journey)[-1].meta.reason == "accuracy drift"
    journey.issue(c.RegisterCandidateVersion, version=version("v2"))
    blocked = refuse(journey, GateBlocked, c.AdvanceStage)
    assert {r.code for r in blocked.unmet} == {R.EVALUATION_PASSED, R.ACCEPTANCE_SIGNED_OFF}
    journey.satisfy(R.ACCEPTANCE_SIGNED_OFF)
    assert journey.advance(Stage.DEPLOYMENT).state.stage is Stage.DEPLOYMENT


def test_after_returning_a_newly_signed_off_version_must_be_deployed_before_measurement(
    memory_app: Stagegate,
) -> None:
    journey = in_deployment(memory_app)
    journey.issue(c.ReturnToStage, stage="acceptance", reason="new model needed")
    journey.issue(c.RegisterCandidateVersion, version=version("v2"))
    journey.satisfy(R.ACCEPTANCE_SIGNED_OFF)
    journey.advance(Stage.DEPLOYMENT)  # v1 is still what runs in production

    blocked = refuse(journey, GateBlocked, c.AdvanceStage)  # DEPLOYED: "of the signed-off version"

    assert {r.code for r in blocked.unmet} == {R.DEPLOYED}


# --- roles -----------------------------------------------------------------------------------


@pytest.mark.parametrize("reader", [VIEWER, AUDITOR], ids=lambda a: a.role.value)
@pytest.mark.parametrize("command", c.USE_CASE_COMMANDS, ids=lambda k: k.__name__)
def test_readers_cannot_issue_any_command(
    memory_app: Stagegate, reader: Actor, command: Any
) -> None:
    journey = in_deployment(memory_app)
    refuse(journey, Forbidden, command, SAMPLES[command][1], actor=reader)


@pytest.mark.parametrize("reader", [VIEWER, AUDITOR], ids=lambda a: a.role.value)
def test_readers_cannot_register(memory_app: Stagegate, reader: Actor) -> None:
    key = unique_key()
    with pytest.raises(Forbidden):
        memory_app.execute(c.RegisterUseCase.parse({"key": key, "title": "T"}), ctx(reader))
    with pytest.raises(NotFound):
        memory_app.use_case(key)


POSTABLE = {c.CaptureBaseline, c.RecordEvaluation, c.RecordDeployment, c.RollBack}
POSTABLE |= {c.RecordMeasurement, c.RecordAdoption, c.RecordInferenceCost}
POSTABLE |= {c.RaiseQualityAlert, c.ResolveQualityAlert, c.RegisterCandidateVersion}
"""The commands behind the spec's CloudEvents types, and a registry's new model version."""


@pytest.mark.parametrize("command", c.USE_CASE_COMMANDS, ids=lambda k: k.__name__)
def test_integration_tokens_post_only_lifecycle_events_through_cloudevents(
    memory_app: Stagegate, command: Any
) -> None:
    if command in (c.CaptureBaseline, c.RegisterCandidateVersion):  # both close at deployment
        journey = Journey(memory_app).register().reach(Stage.ACCEPTANCE)
    else:
        journey = in_deployment(memory_app)
        journey.issue(c.RaiseQualityAlert, severity="low", description="noise", alert_id="alert-1")
    parsed = command.parse({"key": journey.key, **SAMPLES[command][1]})
    before = journey.use_case.version
    with pytest.raises(Forbidden):
        memory_app.execute(parsed, ctx(INTEGRATION, Channel.GRAPHQL))
    assert command.integration_may_post is (command in POSTABLE)
    if command in POSTABLE:
        memory_app.execute(parsed, ctx(INTEGRATION, Channel.CLOUDEVENTS))
        assert journey.use_case.version == before + 1
    else:
        with pytest.raises(Forbidden):
            memory_app.execute(parsed, ctx(INTEGRATION, Channel.CLOUDEVENTS))
        assert journey.use_case.version == before


NON_ADMINS = [EDITOR, APPROVER_ACTOR, INTEGRATION, VIEWER, AUDITOR]


@pytest.mark.parametrize("actor", NON_ADMINS, ids=lambda a: a.role.value)
def test_only_admin_sets_policy(memory_app: Stagegate, actor: Actor) -> None:
    command = c.SetPolicy.parse({"minAdoption": 0.8, "reason": "stricter"})
    with pytest.raises(Forbidden):
        memory_app.set_policy(command, ctx(actor, Channel.CLOUDEVENTS))
    assert memory_app.policy().version == 0
    policy = memory_app.set_policy(command, ctx(ADMIN))
    assert (policy.version, policy.values.min_adoption) == (1, 0.8)


# --- metadata ------------------------------------------------------------------------------


def test_every_event_carries_who_through_what_why_and_correlation(memory_app: Stagegate) -> None:
    journey = in_deployment(memory_app)
    cloud = CommandContext(actor=INTEGRATION, channel=Channel.CLOUDEVENTS, correlation_id="c-1")
    cloud = cloud.model_copy(
        update={"source": "urn:eval-harness", "delivery_id": "d-42", "delivery_fingerprint": "f0"}
    )
    cli = CommandContext(actor=ADMIN, channel=Channel.CLI, correlation_id="c-2")
    alert = {"key": journey.key, "severity": "low", "description": "drift"}
    memory_app.execute(c.RaiseQualityAlert.parse(alert), cloud)
    change = {"key": journey.key, "toVersion": version("v2"), "reason": "cost"}
    memory_app.execute(c.RequestChange.parse(change), cli)

    *earlier, alert_event, change_event = events(memory_app, journey)

    assert alert_event.meta.model_dump() == {
        **{"actor_id": INTEGRATION.id, "actor_role": Role.INTEGRATION, "corrects": None},
        **{"channel": Channel.CLOUDEVENTS, "correlation_id": "c-1", "reason": None},
        **{"source": "urn:eval-harness", "delivery_id": "d-42", "delivery_fingerprint": "f0"},
    }
    meta = change_event.meta
    assert (meta.actor_id, meta.actor_role, meta.channel) == (ADMIN.id, Role.ADMIN, Channel.CLI)
    assert (meta.correlation_id, meta.reason, meta.source) == ("c-2", "cost", None)
    assert all(e.meta.correlation_id.startswith("test-") for e in earlier)
    signed = next(e for e in earlier if isinstance(e, UseCase.AcceptanceSignedOff))
    assert (signed.meta.actor_id, signed.meta.actor_role) == (APPROVER["id"], Role.APPROVER)


def test_a_correction_must_name_an_existing_version(memory_app: Stagegate) -> None:
    journey = Journey(memory_app).register()
    journey.issue(c.ScorePriority, **PRIORITY)
    current = journey.use_case.version
    correction = {**PRIORITY, "corrects": current + 1}
    refuse(journey, Rule.CORRECTS_UNKNOWN_VERSION, c.ScorePriority, correction)

    journey.issue(c.ScorePriority, corrects=current, **PRIORITY)

    assert events(memory_app, journey)[-1].meta.corrects == current
