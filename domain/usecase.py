"""The ``UseCase`` aggregate: one AI use case on its way from proposal to scale.

Commands are methods that check every rule first and only then trigger an event, so a refused
command leaves the aggregate exactly as it was. Events are nested past-tense classes; each
``apply`` is the only place state changes.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid5

from domain.errors import Forbidden, GateBlocked, Rule, RuleViolated
from domain.eventmodel import AggregateCreated, AggregateEvent, StatefulAggregate
from domain.gates import GATES, RequirementCode, unmet_requirements
from domain.metadata import EventMeta
from domain.policy import STAGEGATE_NAMESPACE, PolicyInForce
from domain.state import UseCaseState
from domain.values import (
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
    InferenceCost,
    Measurement,
    ModelVersion,
    OwnerRole,
    Person,
    PriorityScore,
    QualityAlert,
    ReadinessConfirmation,
    ReadinessItem,
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


def use_case_id(key: str) -> UUID:
    """The id follows from the key, so the store itself refuses a second use case per key."""
    return uuid5(STAGEGATE_NAMESPACE, f"use-case:{key}")


class UseCase(StatefulAggregate[UseCaseState]):
    state_class = UseCaseState

    # --- events ---------------------------------------------------------------------------

    class Event(AggregateEvent):
        pass

    class Registered(Event, AggregateCreated):
        key: str
        title: str
        description: str | None
        business_unit: str | None

        def apply(self, aggregate: Any) -> None:
            aggregate.state = UseCaseState(
                key=self.key,
                title=self.title,
                description=self.description,
                business_unit=self.business_unit,
                registered_by=self.meta.actor_id,
                stage_since=self.timestamp,
            )

    class PriorityScored(Event):
        priority: PriorityScore

        def apply(self, aggregate: Any) -> None:
            aggregate.state.priority = self.priority

    class OwnerAssigned(Event):
        role: OwnerRole
        person: Person

        def apply(self, aggregate: Any) -> None:
            aggregate.state.owners[self.role] = self.person

    class WorkflowSpecified(Event):
        workflow: WorkflowSpec

        def apply(self, aggregate: Any) -> None:
            aggregate.state.workflow = self.workflow

    class AcceptanceCriteriaDefined(Event):
        criteria: tuple[Criterion, ...]
        approver: Person

        def apply(self, aggregate: Any) -> None:
            state: UseCaseState = aggregate.state
            state.acceptance_criteria = self.criteria
            state.approver = self.approver
            state.sign_off = None  # signed against other criteria or by another approver

    class BaselineCaptured(Event):
        baseline: Baseline

        def apply(self, aggregate: Any) -> None:
            aggregate.state.baselines[self.baseline.metric] = self.baseline

    class CandidateVersionRegistered(Event):
        version: ModelVersion

        def apply(self, aggregate: Any) -> None:
            state: UseCaseState = aggregate.state
            state.versions[self.version.label] = self.version
            state.candidate_version = self.version.label
            state.sign_off = None  # a newer candidate voids the sign-off

    class EvaluationRecorded(Event):
        evaluation: Evaluation

        def apply(self, aggregate: Any) -> None:
            aggregate.state.evaluations.append(self.evaluation)

    class AcceptanceSignedOff(Event):
        sign_off: SignOff

        def apply(self, aggregate: Any) -> None:
            aggregate.state.sign_off = self.sign_off

    class ReadinessConfirmed(Event):
        confirmation: ReadinessConfirmation

        def apply(self, aggregate: Any) -> None:
            aggregate.state.readiness[self.confirmation.item] = self.confirmation

    class StageAdvanced(Event):
        from_stage: Stage
        to_stage: Stage
        policy_version: int
        requirements_met: tuple[RequirementCode, ...]

        def apply(self, aggregate: Any) -> None:
            _enter_stage(aggregate.state, self.to_stage, self.timestamp)

    class DeploymentRecorded(Event):
        deployment: Deployment

        def apply(self, aggregate: Any) -> None:
            state: UseCaseState = aggregate.state
            deployment = self.deployment
            state.deployments.append(deployment)
            if not deployment.is_production:
                return
            current = state.production_version
            if current is not None and current != deployment.version:
                state.previous_production_versions.append(current)
            state.production_version = deployment.version
            first = state.first_production_deployment_at
            if first is None or deployment.deployed_at < first:
                state.first_production_deployment_at = deployment.deployed_at
            if deployment.change_number is not None:
                change = state.changes[deployment.change_number - 1]
                state.changes[deployment.change_number - 1] = change.model_copy(
                    update={"status": ChangeStatus.DEPLOYED}
                )

    class RolledBack(Event):
        from_version: str
        to_version: str | None
        rolled_back_at: datetime

        def apply(self, aggregate: Any) -> None:
            state: UseCaseState = aggregate.state
            if state.previous_production_versions:
                state.previous_production_versions.pop()
            state.production_version = self.to_version

    class MeasurementRecorded(Event):
        measurement: Measurement

        def apply(self, aggregate: Any) -> None:
            aggregate.state.measurements.append(self.measurement)

    class AdoptionRecorded(Event):
        adoption: Adoption

        def apply(self, aggregate: Any) -> None:
            aggregate.state.adoption.append(self.adoption)

    class InferenceCostRecorded(Event):
        cost: InferenceCost

        def apply(self, aggregate: Any) -> None:
            aggregate.state.inference_costs.append(self.cost)

    class ValueStated(Event):
        statement: ValueStatement

        def apply(self, aggregate: Any) -> None:
            aggregate.state.value_statement = self.statement

    class ScaleCriteriaDefined(Event):
        criteria: tuple[ScaleCriterion, ...]

        def apply(self, aggregate: Any) -> None:
            state: UseCaseState = aggregate.state
            state.scale_criteria = {c.dimension: c for c in self.criteria}
            state.scale_confirmations = {}  # confirmed against other targets

    class ScaleCriterionConfirmed(Event):
        confirmation: ScaleConfirmation

        def apply(self, aggregate: Any) -> None:
            aggregate.state.scale_confirmations[self.confirmation.dimension] = self.confirmation

    class ChangeRequested(Event):
        change: Change
        version: ModelVersion

        def apply(self, aggregate: Any) -> None:
            state: UseCaseState = aggregate.state
            state.versions[self.version.label] = self.version
            state.changes.append(self.change)

    class ChangeApproved(Event):
        change_number: int
        approved_by: str

        def apply(self, aggregate: Any) -> None:
            changes = aggregate.state.changes
            changes[self.change_number - 1] = changes[self.change_number - 1].model_copy(
                update={"status": ChangeStatus.APPROVED, "approved_by": self.approved_by}
            )

    class QualityAlertRaised(Event):
        alert: QualityAlert

        def apply(self, aggregate: Any) -> None:
            aggregate.state.quality_alerts[self.alert.alert_id] = self.alert

    class QualityAlertResolved(Event):
        alert_id: str
        resolved_at: datetime
        resolution: str

        def apply(self, aggregate: Any) -> None:
            alerts = aggregate.state.quality_alerts
            alerts[self.alert_id] = alerts[self.alert_id].model_copy(
                update={"resolved_at": self.resolved_at, "resolution": self.resolution}
            )

    class ReturnedToStage(Event):
        from_stage: Stage
        to_stage: Stage

        def apply(self, aggregate: Any) -> None:
            _enter_stage(aggregate.state, self.to_stage, self.timestamp)

    class Retired(Event):
        from_stage: Stage

        def apply(self, aggregate: Any) -> None:
            _enter_stage(aggregate.state, Stage.RETIRED, self.timestamp)

    # --- commands -------------------------------------------------------------------------

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
            cls.Registered,
            id=use_case_id(key),
            key=key,
            title=title,
            description=description,
            business_unit=business_unit,
            meta=meta,
        )

    def score_priority(self, priority: PriorityScore, meta: EventMeta) -> None:
        self._check_active()
        self.trigger_event(self.PriorityScored, priority=priority, meta=meta)

    def assign_owner(self, role: OwnerRole, person: Person, meta: EventMeta) -> None:
        self._check_active()
        approver = self.state.approver
        if role is OwnerRole.TECHNICAL and approver is not None and approver.same_person(person):
            raise RuleViolated(
                Rule.SEPARATION_OF_DUTIES,
                f"{person.id} is the named approver and cannot also be the technical owner.",
            )
        self.trigger_event(self.OwnerAssigned, role=role, person=person, meta=meta)

    def specify_workflow(self, workflow: WorkflowSpec, meta: EventMeta) -> None:
        self._check_active()
        self.trigger_event(self.WorkflowSpecified, workflow=workflow, meta=meta)

    def define_acceptance_criteria(
        self, criteria: tuple[Criterion, ...], approver: Person, meta: EventMeta
    ) -> None:
        self._check_active()
        technical = self.state.owner(OwnerRole.TECHNICAL)
        if technical is not None and technical.same_person(approver):
            raise RuleViolated(
                Rule.SEPARATION_OF_DUTIES,
                f"The approver cannot be the technical owner ({technical.id}).",
            )
        self.trigger_event(
            self.AcceptanceCriteriaDefined, criteria=criteria, approver=approver, meta=meta
        )

    def capture_baseline(self, baseline: Baseline, meta: EventMeta) -> None:
        self._check_active()
        if self.state.reached_deployment or self.state.first_production_deployment_at:
            raise RuleViolated(
                Rule.BASELINE_AFTER_DEPLOYMENT,
                "A baseline can only be captured before the use case first reaches "
                "deployment; record an after-state measurement instead.",
            )
        self.trigger_event(self.BaselineCaptured, baseline=baseline, meta=meta)

    def register_candidate_version(self, version: ModelVersion, meta: EventMeta) -> None:
        self._check_active()
        self._check_stage(_BEFORE_DEPLOYMENT, "register a candidate version; request a change")
        self._check_label_free(version.label)
        self.trigger_event(self.CandidateVersionRegistered, version=version, meta=meta)

    def record_evaluation(
        self,
        version: str,
        results: dict[str, float],
        evaluated_at: datetime,
        harness: str | None,
        dataset: str | None,
        meta: EventMeta,
    ) -> Evaluation:
        self._check_active()
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
        self.trigger_event(self.EvaluationRecorded, evaluation=evaluation, meta=meta)
        return evaluation

    def sign_off_acceptance(
        self, evaluation_number: int | None, comment: str | None, meta: EventMeta
    ) -> None:
        self._check_active()
        self._check_stage(_BEFORE_DEPLOYMENT, "sign off acceptance; approve a change")
        signer = meta.actor_id
        self._check_is_approver(signer, "sign off acceptance")
        state = self.state
        if state.candidate_version is None:
            raise RuleViolated(Rule.NO_CANDIDATE_VERSION, "There is no candidate version.")
        if evaluation_number is None:
            passing = state.passing_evaluations(state.candidate_version)
            if not passing:
                raise RuleViolated(
                    Rule.EVALUATION_NOT_PASSED,
                    f"No evaluation of the candidate version {state.candidate_version} "
                    "meets every acceptance criterion.",
                )
            evaluation = passing[-1]
        else:
            found = state.evaluation(evaluation_number)
            if found is None:
                raise RuleViolated(
                    Rule.UNKNOWN_EVALUATION, f"There is no evaluation {evaluation_number}."
                )
            evaluation = found
            if evaluation.version != state.candidate_version or not state.evaluation_passes(
                evaluation
            ):
                raise RuleViolated(
                    Rule.EVALUATION_NOT_PASSED,
                    f"Evaluation {evaluation_number} is not a passing evaluation of the "
                    f"candidate version {state.candidate_version}.",
                )
        sign_off = SignOff(
            evaluation_number=evaluation.number,
            version=evaluation.version,
            signed_by=signer,
            comment=comment,
        )
        self.trigger_event(self.AcceptanceSignedOff, sign_off=sign_off, meta=meta)

    def confirm_readiness(
        self,
        item: ReadinessItem,
        evidence: str,
        monthly_budget: Decimal | None,
        currency: str | None,
        meta: EventMeta,
    ) -> None:
        self._check_active()
        confirmation = ReadinessConfirmation(
            item=item,
            evidence=evidence,
            confirmed_by=meta.actor_id,
            monthly_budget=monthly_budget,
            currency=currency,
        )
        self.trigger_event(self.ReadinessConfirmed, confirmation=confirmation, meta=meta)

    def advance_stage(self, policy: PolicyInForce, meta: EventMeta, to: Stage | None) -> None:
        self._check_active()
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
        unmet = unmet_requirements(self.state, target, policy.values)
        if unmet:
            raise GateBlocked(stage, target, unmet, policy.version)
        self.trigger_event(
            self.StageAdvanced,
            from_stage=stage,
            to_stage=target,
            policy_version=policy.version,
            requirements_met=tuple(code for code, _ in GATES[target]),
            meta=meta,
        )

    def record_deployment(
        self, version: str, environment: str, deployed_at: datetime, meta: EventMeta
    ) -> None:
        self._check_active()
        if version not in self.state.versions:
            raise RuleViolated(
                Rule.UNKNOWN_VERSION, f"Version '{version}' is not registered for this use case."
            )
        change_number = None
        if environment == PRODUCTION:
            self._check_stage(_IN_PRODUCTION_STAGES, "record a production deployment")
            if version not in self.state.approved_versions():
                raise RuleViolated(
                    Rule.VERSION_NOT_APPROVED,
                    f"Version '{version}' is neither the signed-off version nor the target of "
                    "an approved change; it cannot go to production.",
                )
            change_number = next(
                (
                    c.number
                    for c in reversed(self.state.changes)
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
        self.trigger_event(self.DeploymentRecorded, deployment=deployment, meta=meta)

    def roll_back(self, to_version: str | None, rolled_back_at: datetime, meta: EventMeta) -> None:
        """Always allowed while something is in production; ``meta.reason`` says why."""
        self._check_active()
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
            self.RolledBack,
            from_version=current,
            to_version=target,
            rolled_back_at=rolled_back_at,
            meta=meta,
        )

    def record_measurement(
        self,
        metric: str,
        value: float,
        measured_at: datetime,
        method: str | None,
        meta: EventMeta,
    ) -> None:
        self._check_active()
        if metric not in self.state.baselines:
            raise RuleViolated(
                Rule.NO_BASELINE_FOR_METRIC,
                f"No baseline was captured for '{metric}', so an after-state cannot be "
                "compared; measured metrics: "
                f"{', '.join(sorted(self.state.baselines)) or 'none'}.",
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
        self.trigger_event(self.MeasurementRecorded, measurement=measurement, meta=meta)

    def record_adoption(
        self, active_users: int, target_users: int, measured_at: datetime, meta: EventMeta
    ) -> None:
        self._check_active()
        adoption = Adoption(
            active_users=active_users, target_users=target_users, measured_at=measured_at
        )
        self.trigger_event(self.AdoptionRecorded, adoption=adoption, meta=meta)

    def record_inference_cost(self, cost: InferenceCost, meta: EventMeta) -> None:
        self._check_active()
        self.trigger_event(self.InferenceCostRecorded, cost=cost, meta=meta)

    def state_value(
        self,
        statement: str,
        estimated_annual_value: Decimal | None,
        currency: str | None,
        meta: EventMeta,
    ) -> None:
        self._check_active()
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
        self.trigger_event(self.ValueStated, statement=value, meta=meta)

    def define_scale_criteria(self, criteria: tuple[ScaleCriterion, ...], meta: EventMeta) -> None:
        self._check_active()
        self.trigger_event(self.ScaleCriteriaDefined, criteria=criteria, meta=meta)

    def confirm_scale_criterion(
        self, dimension: ScaleDimension, evidence: str, meta: EventMeta
    ) -> None:
        self._check_active()
        if dimension not in self.state.scale_criteria:
            defined = ", ".join(d.value for d in self.state.scale_criteria) or "none"
            raise RuleViolated(
                Rule.UNKNOWN_SCALE_CRITERION,
                f"No scale criterion is defined for {dimension.value}; defined: {defined}.",
            )
        confirmation = ScaleConfirmation(
            dimension=dimension, evidence=evidence, confirmed_by=meta.actor_id
        )
        self.trigger_event(self.ScaleCriterionConfirmed, confirmation=confirmation, meta=meta)

    def request_change(self, to_version: ModelVersion, why: str, meta: EventMeta) -> Change:
        self._check_active()
        self._check_stage(_IN_PRODUCTION_STAGES, "request a change")
        self._check_label_free(to_version.label)
        state = self.state
        from_label = state.production_version or (
            state.sign_off.version if state.sign_off else None
        )
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
        self.trigger_event(self.ChangeRequested, change=change, version=to_version, meta=meta)
        return change

    def approve_change(self, change_number: int, meta: EventMeta) -> None:
        self._check_active()
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
            self.ChangeApproved, change_number=change_number, approved_by=approver, meta=meta
        )

    def raise_quality_alert(
        self,
        alert_id: str | None,
        severity: AlertSeverity,
        description: str,
        raised_at: datetime,
        meta: EventMeta,
    ) -> QualityAlert:
        self._check_active()
        alert_id = alert_id or f"alert-{len(self.state.quality_alerts) + 1}"
        if alert_id in self.state.quality_alerts:
            raise RuleViolated(
                Rule.ALERT_ALREADY_RAISED, f"Quality alert '{alert_id}' was already raised."
            )
        alert = QualityAlert(
            alert_id=alert_id, severity=severity, description=description, raised_at=raised_at
        )
        self.trigger_event(self.QualityAlertRaised, alert=alert, meta=meta)
        return alert

    def resolve_quality_alert(
        self, alert_id: str, resolution: str, resolved_at: datetime, meta: EventMeta
    ) -> None:
        self._check_active()
        alert = self.state.quality_alerts.get(alert_id)
        if alert is None:
            raise RuleViolated(Rule.UNKNOWN_ALERT, f"There is no quality alert '{alert_id}'.")
        if not alert.is_open:
            raise RuleViolated(
                Rule.ALERT_ALREADY_RESOLVED, f"Quality alert '{alert_id}' is already resolved."
            )
        self.trigger_event(
            self.QualityAlertResolved,
            alert_id=alert_id,
            resolved_at=resolved_at,
            resolution=resolution,
            meta=meta,
        )

    def return_to_stage(self, stage: Stage, meta: EventMeta) -> None:
        self._check_active()
        current = self.state.stage
        if stage in (Stage.PROPOSED, Stage.RETIRED) or stage.rank >= current.rank:
            allowed = [s.value for s in _earlier_stages(current)]
            raise RuleViolated(
                Rule.INVALID_RETURN_TARGET,
                f"From {current.value} a use case can be sent back to: "
                f"{', '.join(allowed) or 'no stage'}; not {stage.value}.",
            )
        self.trigger_event(self.ReturnedToStage, from_stage=current, to_stage=stage, meta=meta)

    def retire(self, meta: EventMeta) -> None:
        self._check_active()
        self.trigger_event(self.Retired, from_stage=self.state.stage, meta=meta)

    # --- guards ---------------------------------------------------------------------------

    def _check_active(self) -> None:
        if self.state.stage is Stage.RETIRED:
            raise RuleViolated(
                Rule.RETIRED, f"Use case '{self.state.key}' is retired and accepts nothing."
            )

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
        # The approver is never the technical owner: assign_owner and
        # define_acceptance_criteria refuse that pairing, so no check is needed here.


def _enter_stage(state: UseCaseState, stage: Stage, at: datetime) -> None:
    state.stage = stage
    state.stage_since = at
    if stage is Stage.DEPLOYMENT:
        state.reached_deployment = True


def _earlier_stages(current: Stage) -> list[Stage]:
    return [
        s
        for s in (Stage.PILOT, Stage.ACCEPTANCE, Stage.DEPLOYMENT, Stage.MEASUREMENT)
        if s.rank < current.rank
    ]
