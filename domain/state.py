"""The state of one use case, and the questions the gates and rules ask of it.

State only changes by applying events (see ``domain.usecase``); everything here reads.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from domain.costs import MonthlyCosts
from domain.values import (
    Adoption,
    Baseline,
    Change,
    ChangeStatus,
    Criterion,
    Deployment,
    Evaluation,
    ExternalModel,
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


class UseCaseState(BaseModel):
    """Everything recorded about a use case, as it stands after its last event."""

    key: str
    title: str
    description: str | None = None
    business_unit: str | None = None
    registered_by: str
    stage: Stage = Stage.PROPOSED
    stage_since: datetime
    """Server time of the last stage transition (or registration)."""
    reached_deployment: bool = False
    """Whether the use case has ever been in ``deployment``; baselines are closed from then."""
    entered_deployment_at: datetime | None = None
    """Server time the use case last entered ``deployment``; no production deployment is older."""

    priority: PriorityScore | None = None
    owners: dict[OwnerRole, Person] = Field(default_factory=dict)
    workflow: WorkflowSpec | None = None
    acceptance_criteria: tuple[Criterion, ...] = ()
    approver: Person | None = None
    baselines: dict[str, Baseline] = Field(default_factory=dict)
    """Latest baseline per metric name."""

    external_models: dict[str, ExternalModel] = Field(default_factory=dict)
    """Models in external registries linked to the use case, by ``system:name``."""
    versions: dict[str, ModelVersion] = Field(default_factory=dict)
    """Every version ever registered (as candidate or through a change), by label."""
    candidate_version: str | None = None
    evaluations: list[Evaluation] = Field(default_factory=list)
    sign_off: SignOff | None = None
    readiness: dict[ReadinessItem, ReadinessConfirmation] = Field(default_factory=dict)

    deployments: list[Deployment] = Field(default_factory=list)
    production_version: str | None = None
    previous_production_versions: list[str] = Field(default_factory=list)
    """What a rollback returns to, most recent last."""
    first_production_deployment_at: datetime | None = None
    changes: list[Change] = Field(default_factory=list)

    # What the rules need of the measurements, not their history: that lives in the read
    # models, so loading a use case stays cheap however long it has been measured.
    latest_measurements: dict[str, Measurement] = Field(default_factory=dict)
    """Per metric, the after-state measured latest (ties: the one recorded last)."""
    latest_adoption: Adoption | None = None
    """The adoption measured latest (ties: the one recorded last)."""
    monthly_costs: MonthlyCosts = Field(default_factory=dict)
    """Inference cost reported per calendar month and currency (``domain.costs``)."""
    value_statement: ValueStatement | None = None
    scale_criteria: dict[ScaleDimension, ScaleCriterion] = Field(default_factory=dict)
    scale_confirmations: dict[ScaleDimension, ScaleConfirmation] = Field(default_factory=dict)
    open_quality_alerts: dict[str, QualityAlert] = Field(default_factory=dict)
    alerts_raised: int = 0

    # --- questions ------------------------------------------------------------------------

    def owner(self, role: OwnerRole) -> Person | None:
        return self.owners.get(role)

    def evaluation_passes(self, evaluation: Evaluation) -> bool:
        """Judged against the criteria in force now, not those of the day it was recorded."""
        criteria = self.acceptance_criteria
        return bool(criteria) and all(c.met_by(evaluation.results) for c in criteria)

    def passing_evaluations(self, version: str | None) -> list[Evaluation]:
        return [e for e in self.evaluations if e.version == version and self.evaluation_passes(e)]

    def evaluation(self, number: int) -> Evaluation | None:
        return self.evaluations[number - 1] if 0 < number <= len(self.evaluations) else None

    def sign_off_is_valid(self) -> bool:
        """The named approver signed a passing evaluation of the current candidate."""
        sign_off, approver = self.sign_off, self.approver
        if sign_off is None or approver is None or sign_off.version != self.candidate_version:
            return False
        if not approver.same_person(sign_off.signed_by):
            return False
        technical = self.owner(OwnerRole.TECHNICAL)
        if technical is not None and technical.same_person(sign_off.signed_by):
            return False
        evaluation = self.evaluation(sign_off.evaluation_number)
        return evaluation is not None and self.evaluation_passes(evaluation)

    def approved_versions(self) -> set[str]:
        """Versions approved for production: the signed-off one and approved changes.

        Like the sign-off, a change's approval stands only while its version passes the
        acceptance criteria in force.
        """
        approved = {
            c.to_version
            for c in self.changes
            if c.status in (ChangeStatus.APPROVED, ChangeStatus.DEPLOYED)
            and self.passing_evaluations(c.to_version)
        }
        if self.sign_off is not None and self.sign_off_is_valid():
            approved.add(self.sign_off.version)
        return approved

    def deployable_versions(self) -> set[str]:
        """Versions a production deployment may install now.

        Nothing in production: the signed-off version or an approved change. Something in
        production: that same version again, or the target of an approved change not yet
        deployed; going back goes through a rollback.
        """
        pending_changes = {
            c.to_version
            for c in self.changes
            if c.status is ChangeStatus.APPROVED and self.passing_evaluations(c.to_version)
        }
        if self.production_version is None:
            return self.approved_versions() | pending_changes
        return {self.production_version} | pending_changes

    def after_state_for(self, metric: str, not_before: datetime) -> Measurement | None:
        """The latest measurement of ``metric``, if it was taken at or after ``not_before``."""
        latest = self.latest_measurements.get(metric)
        return latest if latest is not None and latest.measured_at >= not_before else None

    def pending_change(self, number: int) -> Change | None:
        return self.changes[number - 1] if 0 < number <= len(self.changes) else None
