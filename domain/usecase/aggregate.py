"""The ``UseCase`` aggregate: one AI use case on its way from proposal to scale.

Each command method checks every rule first and only then triggers an event (see
``events.py``), so a refused command leaves the aggregate exactly as it was.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from typing import Concatenate, ParamSpec, TypeVar
from uuid import UUID, uuid5

from domain import clock
from domain.errors import Forbidden, GateBlocked, Rule, RuleViolated
from domain.eventmodel import SavedState, StatefulAggregate, TypedStateSnapshot
from domain.gates import GATES, unmet_requirements
from domain.metadata import EventMeta
from domain.policy import STAGEGATE_NAMESPACE, PolicyInForce
from domain.state import UseCaseState
from domain.usecase import events as e
from domain.values import (
    CLOCK_SKEW,
    PRODUCTION,
    Adoption,
    AlertSeverity,
    Baseline,
    Change,
    ChangeStatus,
    Criterion,
    CriterionOutcome,
    Deployment,
    Evaluation,
    ExternalModel,
    InferenceCost,
    Measurement,
    ModelVersion,
    OwnerRole,
    Person,
    PriorityScore,
    QualityAlert,
    ReadinessConfirmation,
    ReadinessItem,
    RegistrySystem,
    ScaleConfirmation,
    ScaleCriterion,
    ScaleDimension,
    SignOff,
    Stage,
    ValueStatement,
    WorkflowSpec,
)

_BEFORE_DEPLOYMENT = (Stage.PROPOSED, Stage.PILOT, Stage.ACCEPTANCE)
_IN_PRODUCTION_STAGES = (Stage.DEPLOYMENT, Stage.MEASUREMENT, Stage.SCALE)

P = ParamSpec("P")
T = TypeVar("T")


def use_case_id(key: str) -> UUID:
    """The id follows from the key, so the store itself refuses a second use case per key."""
    return uuid5(STAGEGATE_NAMESPACE, f"use-case:{key}")


def command(
    method: Callable[Concatenate[UseCase, P], T],
) -> Callable[Concatenate[UseCase, P], T]:
    """A command method: a retired use case refuses it before anything else is judged."""

    def checked(self: UseCase, /, *args: P.args, **kwargs: P.kwargs) -> T:
        if self.state.stage is Stage.RETIRED:
            raise RuleViolated(
                Rule.RETIRED, f"Use case '{self.state.key}' is retired and accepts nothing."
            )
        return method(self, *args, **kwargs)

    functools.update_wrapper(checked, method)
    return checked


class UseCaseSnapshot(TypedStateSnapshot):
    """A use case's state at a version, loaded in one validation pass."""

    state: SavedState[UseCaseState]


class UseCase(StatefulAggregate[UseCaseState]):
    state_class = UseCaseState
    Snapshot = UseCaseSnapshot

    # The events, reachable as UseCase.StageAdvanced and so on.
    Event = e.UseCaseEvent
    Registered = e.Registered
    PriorityScored = e.PriorityScored
    OwnerAssigned = e.OwnerAssigned
    WorkflowSpecified = e.WorkflowSpecified
    AcceptanceCriteriaDefined = e.AcceptanceCriteriaDefined
    BaselineCaptured = e.BaselineCaptured
    CandidateVersionRegistered = e.CandidateVersionRegistered
    EvaluationRecorded = e.EvaluationRecorded
    AcceptanceSignedOff = e.AcceptanceSignedOff
    ReadinessConfirmed = e.ReadinessConfirmed
    StageAdvanced = e.StageAdvanced
    DeploymentRecorded = e.DeploymentRecorded
    RolledBack = e.RolledBack
    MeasurementRecorded = e.MeasurementRecorded
    AdoptionRecorded = e.AdoptionRecorded
    InferenceCostRecorded = e.InferenceCostRecorded
    ExternalModelLinked = e.ExternalModelLinked
    ExternalModelUnlinked = e.ExternalModelUnlinked
    ValueStated = e.ValueStated
    ScaleCriteriaDefined = e.ScaleCriteriaDefined
    ScaleCriterionConfirmed = e.ScaleCriterionConfirmed
    ChangeRequested = e.ChangeRequested
    ChangeApproved = e.ChangeApproved
    QualityAlertRaised = e.QualityAlertRaised
    QualityAlertResolved = e.QualityAlertResolved
    ReturnedToStage = e.ReturnedToStage
    Retired = e.Retired

    # --- defining the use case ------------------------------------------------------------

    @classmethod
    def register(
        cls,
        key: str,
        title: str,
        description: str | None,
        business_unit: str | None,
        meta: EventMeta,
    ) -> UseCase:
        return cls._create(
            e.Registered,
            id=use_case_id(key),
            key=key,
            title=title,
            description=description,
            business_unit=business_unit,
            meta=meta,
        )

    @command
    def score_priority(self, priority: PriorityScore, meta: EventMeta) -> None:
        self.trigger_event(e.PriorityScored, priority=priority, meta=meta)

    @command
    def assign_owner(self, role: OwnerRole, person: Person, meta: EventMeta) -> None:
        approver = self.state.approver
        if role is OwnerRole.TECHNICAL and approver is not None and approver.same_person(person):
            raise RuleViolated(
                Rule.SEPARATION_OF_DUTIES,
                f"{person.id} is the named approver and cannot also be the technical owner.",
            )
        self.trigger_event(e.OwnerAssigned, role=role, person=person, meta=meta)

    @command
    def specify_workflow(self, workflow: WorkflowSpec, meta: EventMeta) -> None:
        self.trigger_event(e.WorkflowSpecified, workflow=workflow, meta=meta)

    @command
    def define_acceptance_criteria(
        self, criteria: tuple[Criterion, ...], approver: Person, meta: EventMeta
    ) -> None:
        # In production, criteria and approver would change what was approved outside change
        # management; send the use case back to acceptance to redefine them.
        self._check_stage(_BEFORE_DEPLOYMENT, "redefine acceptance criteria")
        technical = self.state.owner(OwnerRole.TECHNICAL)
        if technical is not None and technical.same_person(approver):
            raise RuleViolated(
                Rule.SEPARATION_OF_DUTIES,
                f"The approver cannot be the technical owner ({technical.id}).",
            )
        self.trigger_event(
            e.AcceptanceCriteriaDefined, criteria=criteria, approver=approver, meta=meta
        )

    @command
    def capture_baseline(self, baseline: Baseline, meta: EventMeta) -> None:
        if self.state.reached_deployment:
            raise RuleViolated(
                Rule.BASELINE_AFTER_DEPLOYMENT,
                "A baseline can only be captured before the use case first reaches "
                "deployment; record an after-state measurement instead.",
            )
        self.trigger_event(e.BaselineCaptured, baseline=baseline, meta=meta)

    # --- acceptance -----------------------------------------------------------------------

    @command
    def register_candidate_version(self, version: ModelVersion, meta: EventMeta) -> None:
        self._check_stage(_BEFORE_DEPLOYMENT, "register a candidate version; request a change")
        self._check_label_free(version.label)
        self.trigger_event(e.CandidateVersionRegistered, version=version, meta=meta)

    @command
    def record_evaluation(
        self,
        version: str,
        results: dict[str, float],
        evaluated_at: datetime,
        harness: str | None,
        dataset: str | None,
        meta: EventMeta,
    ) -> Evaluation:
        if version not in self.state.versions:
            raise RuleViolated(
                Rule.UNKNOWN_VERSION,
                f"Version '{version}' is not registered for this use case; register it as "
                "the candidate or request a change to it first.",
            )
        criteria = self.state.acceptance_criteria
        outcomes = tuple(
            CriterionOutcome(criterion=c, value=results.get(c.metric), met=c.met_by(results))
            for c in criteria
        )
        evaluation = Evaluation(
            number=len(self.state.evaluations) + 1,
            version=version,
            results=results,
            outcomes=outcomes,
            passed=bool(criteria) and all(o.met for o in outcomes),
            evaluated_at=evaluated_at,
            harness=harness,
            dataset=dataset,
        )
        self.trigger_event(e.EvaluationRecorded, evaluation=evaluation, meta=meta)
        return evaluation

    @command
    def sign_off_acceptance(
        self, evaluation_number: int | None, comment: str | None, meta: EventMeta
    ) -> None:
        self._check_stage(_BEFORE_DEPLOYMENT, "sign off acceptance; approve a change")
        self._check_is_approver(meta.actor_id, "sign off acceptance")
        state = self.state
        candidate = state.candidate_version
        if candidate is None:
            raise RuleViolated(Rule.NO_CANDIDATE_VERSION, "There is no candidate version.")
        if evaluation_number is None:
            passing = state.passing_evaluations(candidate)
            if not passing:
                raise RuleViolated(
                    Rule.EVALUATION_NOT_PASSED,
                    f"No evaluation of the candidate version {candidate} meets every "
                    "acceptance criterion.",
                )
            evaluation = passing[-1]
        else:
            found = state.evaluation(evaluation_number)
            if found is None:
                raise RuleViolated(
                    Rule.UNKNOWN_EVALUATION, f"There is no evaluation {evaluation_number}."
                )
            if found.version != candidate or not state.evaluation_passes(found):
                raise RuleViolated(
                    Rule.EVALUATION_NOT_PASSED,
                    f"Evaluation {evaluation_number} is not a passing evaluation of the "
                    f"candidate version {candidate}.",
                )
            evaluation = found
        sign_off = SignOff(
            evaluation_number=evaluation.number,
            version=evaluation.version,
            signed_by=meta.actor_id,
            comment=comment,
        )
        self.trigger_event(e.AcceptanceSignedOff, sign_off=sign_off, meta=meta)

    @command
    def confirm_readiness(
        self,
        item: ReadinessItem,
        evidence: str,
        monthly_budget: Decimal | None,
        currency: str | None,
        meta: EventMeta,
    ) -> None:
        confirmation = ReadinessConfirmation(
            item=item,
            evidence=evidence,
            confirmed_by=meta.actor_id,
            monthly_budget=monthly_budget,
            currency=currency,
        )
        self.trigger_event(e.ReadinessConfirmed, confirmation=confirmation, meta=meta)

    # --- moving between stages ------------------------------------------------------------

    @command
    def advance_stage(self, policy: PolicyInForce, meta: EventMeta, to: Stage | None) -> None:
        stage = self.state.stage
        target = stage.next
        if target is None:
            raise RuleViolated(Rule.NO_NEXT_STAGE, f"There is no stage after {stage.value}.")
        if to is not None and to is not target:
            raise RuleViolated(
                Rule.NOT_NEXT_STAGE,
                f"From {stage.value} the only forward move is to {target.value}, "
                f"not {to.value}; stages are passed one at a time.",
            )
        # Judged at the server's time now, as the event is stamped (COST_WITHIN_BUDGET looks
        # at the last complete month before it).
        unmet = unmet_requirements(self.state, target, policy.values, clock.now())
        if unmet:
            raise GateBlocked(stage, target, unmet, policy.version)
        self.trigger_event(
            e.StageAdvanced,
            from_stage=stage,
            to_stage=target,
            policy_version=policy.version,
            requirements_met=tuple(code for code, _ in GATES[target]),
            meta=meta,
        )

    @command
    def return_to_stage(self, stage: Stage, meta: EventMeta) -> None:
        current = self.state.stage
        if stage in (Stage.PROPOSED, Stage.RETIRED) or stage.rank >= current.rank:
            allowed = [s.value for s in _earlier_stages(current)]
            raise RuleViolated(
                Rule.INVALID_RETURN_TARGET,
                f"From {current.value} a use case can be sent back to: "
                f"{', '.join(allowed) or 'no stage'}; not {stage.value}.",
            )
        self.trigger_event(e.ReturnedToStage, from_stage=current, to_stage=stage, meta=meta)

    @command
    def retire(self, meta: EventMeta) -> None:
        self.trigger_event(e.Retired, from_stage=self.state.stage, meta=meta)

    # --- production and change management -------------------------------------------------

    @command
    def record_deployment(
        self, version: str, environment: str, deployed_at: datetime, meta: EventMeta
    ) -> None:
        state = self.state
        if version not in state.versions:
            raise RuleViolated(
                Rule.UNKNOWN_VERSION, f"Version '{version}' is not registered for this use case."
            )
        change_number = None
        if environment == PRODUCTION:
            self._check_stage(_IN_PRODUCTION_STAGES, "record a production deployment")
            entered = state.entered_deployment_at
            if entered is not None and deployed_at < entered - CLOCK_SKEW:
                raise RuleViolated(
                    Rule.DEPLOYMENT_PREDATES_GATE,
                    f"deployedAt {deployed_at.isoformat()} is before the use case passed the "
                    f"gate into deployment ({entered.isoformat()}); a production deployment "
                    "cannot predate its approval.",
                )
            if version not in state.deployable_versions():
                raise RuleViolated(Rule.VERSION_NOT_APPROVED, _not_deployable(state, version))
            change_number = next(
                (
                    c.number
                    for c in reversed(state.changes)
                    if c.to_version == version and c.status is ChangeStatus.APPROVED
                ),
                None,
            )
        deployment = Deployment(
            version=version,
            environment=environment,
            deployed_at=deployed_at,
            change_number=change_number,
        )
        self.trigger_event(e.DeploymentRecorded, deployment=deployment, meta=meta)

    @command
    def roll_back(self, to_version: str | None, rolled_back_at: datetime, meta: EventMeta) -> None:
        """Always allowed while something is in production; ``meta.reason`` says why.

        With no earlier version to return to, the version is withdrawn from production.
        """
        current = self.state.production_version
        if current is None:
            raise RuleViolated(Rule.NOTHING_DEPLOYED, "Nothing is deployed to production.")
        previous = self.state.previous_production_versions
        target = previous[-1] if previous else None
        if to_version is not None and to_version != target:
            raise RuleViolated(
                Rule.ROLLBACK_TARGET_MISMATCH,
                f"A rollback returns to the previously deployed version "
                f"({target or 'none'}), not '{to_version}'.",
            )
        self.trigger_event(
            e.RolledBack,
            from_version=current,
            to_version=target,
            rolled_back_at=rolled_back_at,
            meta=meta,
        )

    @command
    def request_change(self, to_version: ModelVersion, why: str, meta: EventMeta) -> Change:
        self._check_stage(_IN_PRODUCTION_STAGES, "request a change")
        self._check_label_free(to_version.label)
        state = self.state
        signed_off = state.sign_off.version if state.sign_off else None
        from_label = state.production_version or signed_off
        from_version = state.versions.get(from_label) if from_label else None
        components = to_version.differences(from_version) if from_version else ()
        if from_version is not None and not components:
            raise RuleViolated(
                Rule.NO_CHANGE,
                f"Version '{to_version.label}' has the same model, prompt and thresholds as "
                f"'{from_label}'.",
            )
        change = Change(
            number=len(state.changes) + 1,
            from_version=from_label,
            to_version=to_version.label,
            components=components,
            why=why,
            requested_by=meta.actor_id,
        )
        self.trigger_event(e.ChangeRequested, change=change, version=to_version, meta=meta)
        return change

    @command
    def approve_change(self, change_number: int, meta: EventMeta) -> None:
        approver = meta.actor_id
        self._check_is_approver(approver, "approve a change")
        change = self.state.pending_change(change_number)
        if change is None:
            raise RuleViolated(Rule.UNKNOWN_CHANGE, f"There is no change {change_number}.")
        if change.status is not ChangeStatus.REQUESTED:
            raise RuleViolated(
                Rule.CHANGE_NOT_PENDING,
                f"Change {change_number} is already {change.status.value}.",
            )
        if change.requested_by.casefold() == approver.casefold():
            raise RuleViolated(
                Rule.SELF_APPROVAL,
                f"{approver} requested change {change_number} and cannot approve it.",
            )
        if not self.state.passing_evaluations(change.to_version):
            raise RuleViolated(
                Rule.EVALUATION_NOT_PASSED,
                f"Version '{change.to_version}' has no evaluation that meets every acceptance "
                "criterion; evaluate it before approving the change.",
            )
        self.trigger_event(
            e.ChangeApproved, change_number=change_number, approved_by=approver, meta=meta
        )

    @command
    def raise_quality_alert(
        self,
        alert_id: str | None,
        severity: AlertSeverity,
        description: str,
        raised_at: datetime,
        meta: EventMeta,
    ) -> QualityAlert:
        alerts = self.state.open_quality_alerts
        if alert_id is None:
            number = self.state.alerts_raised + 1
            while f"alert-{number}" in alerts:  # callers may have taken the obvious ids
                number += 1
            alert_id = f"alert-{number}"
        elif alert_id in alerts:
            # A resolved alert that fires again (same id from the monitor) is a new alert.
            raise RuleViolated(
                Rule.ALERT_ALREADY_RAISED, f"Quality alert '{alert_id}' is already open."
            )
        alert = QualityAlert(
            alert_id=alert_id, severity=severity, description=description, raised_at=raised_at
        )
        self.trigger_event(e.QualityAlertRaised, alert=alert, meta=meta)
        return alert

    @command
    def resolve_quality_alert(
        self, alert_id: str, resolution: str, resolved_at: datetime, meta: EventMeta
    ) -> None:
        alert = self.state.open_quality_alerts.get(alert_id)
        if alert is None:
            open_ids = ", ".join(self.state.open_quality_alerts) or "none"
            raise RuleViolated(
                Rule.UNKNOWN_ALERT,
                f"There is no open quality alert '{alert_id}' (open: {open_ids}).",
            )
        if resolved_at < alert.raised_at:
            raise RuleViolated(
                Rule.RESOLVED_BEFORE_RAISED,
                f"resolvedAt {resolved_at.isoformat()} is before the alert was raised "
                f"({alert.raised_at.isoformat()}).",
            )
        self.trigger_event(
            e.QualityAlertResolved,
            alert_id=alert_id,
            resolved_at=resolved_at,
            resolution=resolution,
            meta=meta,
        )

    # --- measuring value ------------------------------------------------------------------

    @command
    def record_measurement(
        self,
        metric: str,
        value: float,
        measured_at: datetime,
        method: str | None,
        meta: EventMeta,
    ) -> None:
        baselines = self.state.baselines
        if metric not in baselines:
            raise RuleViolated(
                Rule.NO_BASELINE_FOR_METRIC,
                f"No baseline was captured for '{metric}', so an after-state cannot be "
                f"compared; metrics with a baseline: {', '.join(sorted(baselines)) or 'none'}.",
            )
        if self.state.first_production_deployment_at is None:
            raise RuleViolated(
                Rule.NOT_YET_DEPLOYED,
                "An after-state can only be measured after the first production deployment; "
                "capture a baseline instead.",
            )
        measurement = Measurement(
            metric=metric, value=value, measured_at=measured_at, method=method
        )
        self.trigger_event(e.MeasurementRecorded, measurement=measurement, meta=meta)

    @command
    def record_adoption(
        self, active_users: int, target_users: int, measured_at: datetime, meta: EventMeta
    ) -> None:
        adoption = Adoption(
            active_users=active_users, target_users=target_users, measured_at=measured_at
        )
        self.trigger_event(e.AdoptionRecorded, adoption=adoption, meta=meta)

    @command
    def link_external_model(self, model: ExternalModel, meta: EventMeta) -> None:
        if model.ref in self.state.external_models:
            raise RuleViolated(
                Rule.MODEL_ALREADY_LINKED,
                f"The {model.system.value} model '{model.name}' is already linked to "
                f"'{self.state.key}'.",
            )
        self.trigger_event(e.ExternalModelLinked, model=model, meta=meta)

    @command
    def unlink_external_model(self, system: RegistrySystem, name: str, meta: EventMeta) -> None:
        if f"{system.value}:{name}" not in self.state.external_models:
            linked = ", ".join(sorted(self.state.external_models)) or "none"
            raise RuleViolated(
                Rule.MODEL_NOT_LINKED,
                f"The {system.value} model '{name}' is not linked to '{self.state.key}' "
                f"(linked: {linked}).",
            )
        self.trigger_event(e.ExternalModelUnlinked, system=system, name=name, meta=meta)

    @command
    def record_inference_cost(self, cost: InferenceCost, meta: EventMeta) -> None:
        self.trigger_event(e.InferenceCostRecorded, cost=cost, meta=meta)

    @command
    def state_value(
        self,
        statement: str,
        estimated_annual_value: Decimal | None,
        currency: str | None,
        meta: EventMeta,
    ) -> None:
        business = self.state.owner(OwnerRole.BUSINESS)
        if business is None:
            raise RuleViolated(
                Rule.NO_BUSINESS_OWNER_NAMED,
                "Name a business owner first; only they can state the value.",
            )
        if not business.same_person(meta.actor_id):
            raise Forbidden(
                f"Only the business owner ({business.id}) can state the value, not {meta.actor_id}."
            )
        value = ValueStatement(
            statement=statement,
            stated_by=meta.actor_id,
            estimated_annual_value=estimated_annual_value,
            currency=currency,
        )
        self.trigger_event(e.ValueStated, statement=value, meta=meta)

    @command
    def define_scale_criteria(self, criteria: tuple[ScaleCriterion, ...], meta: EventMeta) -> None:
        self.trigger_event(e.ScaleCriteriaDefined, criteria=criteria, meta=meta)

    @command
    def confirm_scale_criterion(
        self, dimension: ScaleDimension, evidence: str, meta: EventMeta
    ) -> None:
        if dimension not in self.state.scale_criteria:
            defined = ", ".join(d.value for d in self.state.scale_criteria) or "none"
            raise RuleViolated(
                Rule.UNKNOWN_SCALE_CRITERION,
                f"No scale criterion is defined for {dimension.value}; defined: {defined}.",
            )
        confirmation = ScaleConfirmation(
            dimension=dimension, evidence=evidence, confirmed_by=meta.actor_id
        )
        self.trigger_event(e.ScaleCriterionConfirmed, confirmation=confirmation, meta=meta)

    # --- guards ---------------------------------------------------------------------------

    def _check_stage(self, allowed: Iterable[Stage], action: str) -> None:
        allowed = tuple(allowed)
        if self.state.stage not in allowed:
            raise RuleViolated(
                Rule.STAGE_DOES_NOT_ALLOW,
                f"Cannot {action} in stage {self.state.stage.value}; allowed in: "
                f"{', '.join(s.value for s in allowed)}.",
            )

    def _check_label_free(self, label: str) -> None:
        if label in self.state.versions:
            raise RuleViolated(
                Rule.VERSION_LABEL_TAKEN,
                f"Version label '{label}' is already used by this use case; versions are "
                "immutable, so give the new one its own label.",
            )

    def _check_is_approver(self, actor_id: str, action: str) -> None:
        # The approver is never the technical owner: assign_owner and
        # define_acceptance_criteria refuse that pairing, so only identity is checked here.
        approver = self.state.approver
        if approver is None:
            raise RuleViolated(
                Rule.NO_APPROVER_NAMED,
                f"No approver is named; define acceptance criteria with an approver to {action}.",
            )
        if not approver.same_person(actor_id):
            raise Forbidden(
                f"Only the named approver ({approver.id}) can {action}, not {actor_id}."
            )


def _not_deployable(state: UseCaseState, version: str) -> str:
    if state.production_version is None:
        return (
            f"Version '{version}' is neither the signed-off version nor the target of an "
            "approved change; it cannot go to production."
        )
    return (
        f"Version '{state.production_version}' is in production; installing '{version}' needs "
        "an approved change to it (or a rollback, to return to the previous version)."
    )


def _earlier_stages(current: Stage) -> list[Stage]:
    return [
        s
        for s in (Stage.PILOT, Stage.ACCEPTANCE, Stage.DEPLOYMENT, Stage.MEASUREMENT)
        if s.rank < current.rank
    ]
