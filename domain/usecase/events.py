"""The events of a use case: immutable facts, each with the one ``apply`` that changes state.

Every event carries ``meta`` (who, in what role, through what, why, correlation id) and the
server's ``timestamp``; business times (``measured_at``, ``deployed_at``...) are in the payload.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from domain.costs import add_cost
from domain.eventmodel import AggregateCreated, AggregateEvent
from domain.gates import RequirementCode
from domain.state import UseCaseState
from domain.values import (
    Adoption,
    Baseline,
    BaselineKind,
    Change,
    ChangeStatus,
    Criterion,
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
    RegistrySystem,
    ScaleConfirmation,
    ScaleCriterion,
    SignOff,
    Stage,
    ValueStatement,
    WorkflowSpec,
)


class UseCaseEvent(AggregateEvent):
    """Base of every use-case event."""

    business_time_path: ClassVar[tuple[str, ...]] = ()
    """Where in the event the business time is, if it reports one (the history read model
    reads the same path out of the stored JSON)."""

    @property
    def business_time(self) -> datetime | None:
        """When the reported fact happened in the business, if the event reports one."""
        value: Any = self
        for name in self.business_time_path:
            value = getattr(value, name)
        return value if self.business_time_path else None


class Registered(UseCaseEvent, AggregateCreated):
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


class PriorityScored(UseCaseEvent):
    priority: PriorityScore

    def apply(self, aggregate: Any) -> None:
        aggregate.state.priority = self.priority


class OwnerAssigned(UseCaseEvent):
    role: OwnerRole
    person: Person

    def apply(self, aggregate: Any) -> None:
        aggregate.state.owners[self.role] = self.person


class WorkflowSpecified(UseCaseEvent):
    workflow: WorkflowSpec

    def apply(self, aggregate: Any) -> None:
        aggregate.state.workflow = self.workflow


class AcceptanceCriteriaDefined(UseCaseEvent):
    criteria: tuple[Criterion, ...]
    approver: Person

    def apply(self, aggregate: Any) -> None:
        state: UseCaseState = aggregate.state
        state.acceptance_criteria = self.criteria
        state.approver = self.approver
        state.sign_off = None  # signed against other criteria or by another approver


class BaselineCaptured(UseCaseEvent):
    class_version: ClassVar[int] = 2

    baseline: Baseline

    business_time_path: ClassVar[tuple[str, ...]] = ("baseline", "measured_at")

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        """Version 2 says whether the metric is an outcome or a guardrail. Every baseline
        captured before could only be an outcome."""
        state["baseline"]["kind"] = BaselineKind.OUTCOME.value

    def apply(self, aggregate: Any) -> None:
        aggregate.state.baselines[self.baseline.metric] = self.baseline


class ExternalModelLinked(UseCaseEvent):
    model: ExternalModel

    def apply(self, aggregate: Any) -> None:
        aggregate.state.external_models[self.model.ref] = self.model


class ExternalModelUnlinked(UseCaseEvent):
    system: RegistrySystem
    name: str

    def apply(self, aggregate: Any) -> None:
        del aggregate.state.external_models[f"{self.system.value}:{self.name}"]


class CandidateVersionRegistered(UseCaseEvent):
    version: ModelVersion

    def apply(self, aggregate: Any) -> None:
        state: UseCaseState = aggregate.state
        state.versions[self.version.label] = self.version
        state.candidate_version = self.version.label
        state.sign_off = None  # a newer candidate voids the sign-off


class EvaluationRecorded(UseCaseEvent):
    evaluation: Evaluation

    business_time_path: ClassVar[tuple[str, ...]] = ("evaluation", "evaluated_at")

    def apply(self, aggregate: Any) -> None:
        aggregate.state.evaluations.append(self.evaluation)


class AcceptanceSignedOff(UseCaseEvent):
    sign_off: SignOff

    def apply(self, aggregate: Any) -> None:
        aggregate.state.sign_off = self.sign_off


class ReadinessConfirmed(UseCaseEvent):
    confirmation: ReadinessConfirmation

    def apply(self, aggregate: Any) -> None:
        aggregate.state.readiness[self.confirmation.item] = self.confirmation


class StageAdvanced(UseCaseEvent):
    from_stage: Stage
    to_stage: Stage
    policy_version: int
    requirements_met: tuple[RequirementCode, ...]

    def apply(self, aggregate: Any) -> None:
        _enter_stage(aggregate.state, self.to_stage, self.timestamp)


class DeploymentRecorded(UseCaseEvent):
    deployment: Deployment

    business_time_path: ClassVar[tuple[str, ...]] = ("deployment", "deployed_at")

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


class RolledBack(UseCaseEvent):
    from_version: str
    to_version: str | None
    rolled_back_at: datetime

    business_time_path: ClassVar[tuple[str, ...]] = ("rolled_back_at",)

    def apply(self, aggregate: Any) -> None:
        state: UseCaseState = aggregate.state
        if state.previous_production_versions:
            state.previous_production_versions.pop()
        state.production_version = self.to_version


class MeasurementRecorded(UseCaseEvent):
    measurement: Measurement

    business_time_path: ClassVar[tuple[str, ...]] = ("measurement", "measured_at")

    def apply(self, aggregate: Any) -> None:
        latest = aggregate.state.latest_measurements
        current = latest.get(self.measurement.metric)
        if current is None or self.measurement.measured_at >= current.measured_at:
            latest[self.measurement.metric] = self.measurement


class AdoptionRecorded(UseCaseEvent):
    adoption: Adoption

    business_time_path: ClassVar[tuple[str, ...]] = ("adoption", "measured_at")

    def apply(self, aggregate: Any) -> None:
        state: UseCaseState = aggregate.state
        current = state.latest_adoption
        if current is None or self.adoption.measured_at >= current.measured_at:
            state.latest_adoption = self.adoption


class InferenceCostRecorded(UseCaseEvent):
    cost: InferenceCost

    business_time_path: ClassVar[tuple[str, ...]] = ("cost", "period_end")

    def apply(self, aggregate: Any) -> None:
        add_cost(aggregate.state.monthly_costs, self.cost)


class ValueStated(UseCaseEvent):
    statement: ValueStatement

    def apply(self, aggregate: Any) -> None:
        aggregate.state.value_statement = self.statement


class ScaleCriteriaDefined(UseCaseEvent):
    criteria: tuple[ScaleCriterion, ...]

    def apply(self, aggregate: Any) -> None:
        state: UseCaseState = aggregate.state
        state.scale_criteria = {c.dimension: c for c in self.criteria}
        state.scale_confirmations = {}  # confirmed against other targets


class ScaleCriterionConfirmed(UseCaseEvent):
    confirmation: ScaleConfirmation

    def apply(self, aggregate: Any) -> None:
        aggregate.state.scale_confirmations[self.confirmation.dimension] = self.confirmation


class ChangeRequested(UseCaseEvent):
    change: Change
    version: ModelVersion

    def apply(self, aggregate: Any) -> None:
        state: UseCaseState = aggregate.state
        state.versions[self.version.label] = self.version
        state.changes.append(self.change)


class ChangeApproved(UseCaseEvent):
    change_number: int
    approved_by: str

    def apply(self, aggregate: Any) -> None:
        changes = aggregate.state.changes
        changes[self.change_number - 1] = changes[self.change_number - 1].model_copy(
            update={"status": ChangeStatus.APPROVED, "approved_by": self.approved_by}
        )


class QualityAlertRaised(UseCaseEvent):
    alert: QualityAlert

    business_time_path: ClassVar[tuple[str, ...]] = ("alert", "raised_at")

    def apply(self, aggregate: Any) -> None:
        state: UseCaseState = aggregate.state
        state.open_quality_alerts[self.alert.alert_id] = self.alert
        state.alerts_raised += 1


class QualityAlertResolved(UseCaseEvent):
    alert_id: str
    resolved_at: datetime
    resolution: str

    business_time_path: ClassVar[tuple[str, ...]] = ("resolved_at",)

    def apply(self, aggregate: Any) -> None:
        # Resolved alerts leave the state (their history stays in the log and read models).
        del aggregate.state.open_quality_alerts[self.alert_id]


class ReturnedToStage(UseCaseEvent):
    from_stage: Stage
    to_stage: Stage

    def apply(self, aggregate: Any) -> None:
        _enter_stage(aggregate.state, self.to_stage, self.timestamp)


class Retired(UseCaseEvent):
    from_stage: Stage

    def apply(self, aggregate: Any) -> None:
        _enter_stage(aggregate.state, Stage.RETIRED, self.timestamp)


def _enter_stage(state: UseCaseState, stage: Stage, at: datetime) -> None:
    state.stage = stage
    state.stage_since = at
    if stage is Stage.DEPLOYMENT:
        state.reached_deployment = True
        state.entered_deployment_at = at
