"""Commands: what a person or a system asks stagegate to do, validated before anything runs.

Each command is a pydantic model (field names are camelCase on the wire, so a validation error
names the field as the caller wrote it), says which roles may issue it, and knows which
aggregate method carries it out. GraphQL mutations and CloudEvents both build these.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, ClassVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic.alias_generators import to_camel

from domain.errors import ValidationFailed
from domain.metadata import EventMeta
from domain.policy import PolicyInForce
from domain.usecase import UseCase
from domain.values import (
    PRODUCTION,
    AlertSeverity,
    Baseline,
    Criterion,
    Currency,
    DimensionScore,
    ExternalModel,
    FiniteFloat,
    InferenceCost,
    LongText,
    ModelVersion,
    Money,
    NamedValues,
    OwnerRole,
    PastTime,
    Person,
    PriorityScore,
    ReadinessItem,
    RegistrySystem,
    Role,
    ScaleCriterion,
    ScaleDimension,
    ShortText,
    Stage,
    UseCaseKey,
    WorkflowSpec,
)


def _now() -> datetime:
    return datetime.now(UTC)


def _goes_with(amount_field: str) -> Any:
    """A validator for ``currency``: present exactly when ``amount_field`` is."""

    def check(cls: type[BaseModel], currency: str | None, info: ValidationInfo) -> str | None:
        if amount_field not in info.data:
            return currency  # the amount itself was invalid and is reported on its own
        if (info.data[amount_field] is None) != (currency is None):
            raise ValueError(f"give a currency exactly when {to_camel(amount_field)} is given")
        return currency

    return classmethod(check)


def _canonical_environment(value: object) -> object:
    if isinstance(value, str) and value.strip().lower() in ("prod", "prd", "live", PRODUCTION):
        return PRODUCTION  # so a deployment to "prod" cannot slip past the production rules
    return value


WRITERS = frozenset({Role.ADMIN, Role.EDITOR})
APPROVERS = frozenset({Role.ADMIN, Role.APPROVER})


class Command(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        use_attribute_docstrings=True,
    )

    allowed_roles: ClassVar[frozenset[Role]] = WRITERS
    """Roles whose tokens may issue the command (who the caller is may matter too)."""
    integration_may_post: ClassVar[bool] = False
    """Whether an integration token may issue it, through CloudEvents only."""

    @classmethod
    def parse(cls, data: dict[str, Any], prefix: str = "") -> Any:
        """Build the command from wire data, or raise ValidationFailed naming each bad field."""
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            raise ValidationFailed.from_pydantic(error, prefix) from None


class RegisterUseCase(Command):
    """Register a new use case under a unique key; it starts in PROPOSED."""

    key: UseCaseKey
    """A slug such as `invoice-triage`: lower-case letters, digits, single hyphens."""
    title: ShortText
    description: LongText | None = None
    business_unit: ShortText | None = None


class SetPolicy(Command):
    """Change the thresholds; fields left out keep their current value."""

    allowed_roles: ClassVar[frozenset[Role]] = frozenset({Role.ADMIN})

    expected_version: int | None = Field(default=None, ge=0)
    """Refuse with VersionConflict unless the policy is at exactly this version."""
    # Ranges are PolicyValues' own; they are checked on the merged policy.
    measurement_window_days: int | None = None
    min_adoption: float | None = None
    min_priority_score: int | None = None
    stuck_after_days: int | None = None
    min_improvement: float | None = None
    guardrail_tolerance: float | None = None
    reason: LongText | None = None

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude={"expected_version", "reason"}, exclude_none=True)


class UseCaseCommand(Command):
    """A command addressed to one existing use case by its key."""

    key: UseCaseKey
    expected_version: int | None = Field(default=None, ge=1)
    """Refuse with VersionConflict unless the use case is at exactly this version."""
    corrects: int | None = Field(default=None, ge=1)
    """Version of an earlier event of this use case that this command corrects."""

    @property
    def reason_text(self) -> str | None:
        return getattr(self, "reason", None)

    def execute(self, use_case: UseCase, meta: EventMeta, policy: PolicyInForce) -> None:
        raise NotImplementedError


class ScorePriority(UseCaseCommand):
    leverage: DimensionScore
    feasibility: DimensionScore
    readiness: DimensionScore

    def execute(self, use_case: UseCase, meta: EventMeta, policy: PolicyInForce) -> None:
        priority = PriorityScore(
            leverage=self.leverage, feasibility=self.feasibility, readiness=self.readiness
        )
        use_case.score_priority(priority, meta)


class AssignOwner(UseCaseCommand):
    role: OwnerRole
    person: Person

    @field_validator("person")
    @classmethod
    def _technical_owner_names_the_ai_team(cls, person: Person, info: ValidationInfo) -> Person:
        if info.data.get("role") is OwnerRole.TECHNICAL and not person.team:
            raise ValueError(
                "name the technical owner's team: it is the AI team that escalations bypass"
            )
        return person

    def execute(self, use_case: UseCase, meta: EventMeta, policy: PolicyInForce) -> None:
        use_case.assign_owner(self.role, self.person, meta)


class SpecifyWorkflow(UseCaseCommand):
    workflow: WorkflowSpec

    def execute(self, use_case: UseCase, meta: EventMeta, policy: PolicyInForce) -> None:
        use_case.specify_workflow(self.workflow, meta)


class DefineAcceptanceCriteria(UseCaseCommand):
    criteria: tuple[Criterion, ...] = Field(min_length=1, max_length=50)
    approver: Person

    @field_validator("criteria")
    @classmethod
    def _one_criterion_per_metric_and_comparator(
        cls, criteria: tuple[Criterion, ...]
    ) -> tuple[Criterion, ...]:
        seen = set()
        for criterion in criteria:
            pair = (criterion.metric, criterion.comparator)
            if pair in seen:
                raise ValueError(f"criterion '{criterion.describe()}' is given twice")
            seen.add(pair)
        return criteria

    def execute(self, use_case: UseCase, meta: EventMeta, policy: PolicyInForce) -> None:
        use_case.define_acceptance_criteria(self.criteria, self.approver, meta)


class CaptureBaseline(UseCaseCommand):
    integration_may_post: ClassVar[bool] = True

    baseline: Baseline

    def execute(self, use_case: UseCase, meta: EventMeta, policy: PolicyInForce) -> None:
        use_case.capture_baseline(self.baseline, meta)


class RegisterCandidateVersion(UseCaseCommand):
    """A new candidate version (a registry's new model version arrives as one)."""

    integration_may_post: ClassVar[bool] = True

    version: ModelVersion

    def execute(self, use_case: UseCase, meta: EventMeta, policy: PolicyInForce) -> None:
        use_case.register_candidate_version(self.version, meta)


class RecordEvaluation(UseCaseCommand):
    """Results of an evaluation run; pass or fail is judged by stagegate, not the caller."""

    integration_may_post: ClassVar[bool] = True

    version: ShortText
    results: Annotated[NamedValues, Field(min_length=1)]
    evaluated_at: PastTime = Field(default_factory=_now)
    harness: ShortText | None = None
    dataset: ShortText | None = None

    def execute(self, use_case: UseCase, meta: EventMeta, policy: PolicyInForce) -> None:
        use_case.record_evaluation(
            self.version,
            {r.name: r.value for r in self.results},
            self.evaluated_at,
            self.harness,
            self.dataset,
            meta,
        )


class SignOffAcceptance(UseCaseCommand):
    """The named approver signs off a passing evaluation (the latest, unless one is named)."""

    allowed_roles: ClassVar[frozenset[Role]] = APPROVERS

    evaluation_number: int | None = Field(default=None, ge=1)
    comment: LongText | None = None

    def execute(self, use_case: UseCase, meta: EventMeta, policy: PolicyInForce) -> None:
        use_case.sign_off_acceptance(self.evaluation_number, self.comment, meta)


class ConfirmReadiness(UseCaseCommand):
    item: ReadinessItem
    evidence: LongText
    monthly_budget: Money | None = Field(default=None, validate_default=True)
    """Required when confirming cost tracking: the inference budget per month."""
    currency: Currency | None = Field(default=None, validate_default=True)

    @field_validator("monthly_budget")
    @classmethod
    def _budget_for_cost_tracking(cls, budget: Decimal | None, info: ValidationInfo) -> Any:
        if budget is None and info.data.get("item") is ReadinessItem.COST_TRACKING:
            raise ValueError("cost tracking needs a monthly budget")
        return budget

    _currency_with_budget = field_validator("currency")(_goes_with("monthly_budget"))

    def execute(self, use_case: UseCase, meta: EventMeta, policy: PolicyInForce) -> None:
        use_case.confirm_readiness(
            self.item, self.evidence, self.monthly_budget, self.currency, meta
        )


class AdvanceStage(UseCaseCommand):
    to: Stage | None = None
    """The stage the caller means to reach; refused unless it is the next one."""

    def execute(self, use_case: UseCase, meta: EventMeta, policy: PolicyInForce) -> None:
        use_case.advance_stage(policy, meta, self.to)


class RecordDeployment(UseCaseCommand):
    integration_may_post: ClassVar[bool] = True

    version: ShortText
    environment: Annotated[
        str,
        BeforeValidator(_canonical_environment),
        Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$"),
    ] = PRODUCTION
    """``production`` (also written prod, prd, live) is the one the gates and rules guard."""
    deployed_at: PastTime = Field(default_factory=_now)

    def execute(self, use_case: UseCase, meta: EventMeta, policy: PolicyInForce) -> None:
        use_case.record_deployment(self.version, self.environment, self.deployed_at, meta)


class RecordMeasurement(UseCaseCommand):
    """An after-state measurement of a baseline metric."""

    integration_may_post: ClassVar[bool] = True

    metric: ShortText
    value: FiniteFloat
    measured_at: PastTime = Field(default_factory=_now)
    method: LongText | None = None

    def execute(self, use_case: UseCase, meta: EventMeta, policy: PolicyInForce) -> None:
        use_case.record_measurement(self.metric, self.value, self.measured_at, self.method, meta)


class RecordAdoption(UseCaseCommand):
    integration_may_post: ClassVar[bool] = True

    active_users: int = Field(ge=0, le=100_000_000)
    target_users: int = Field(ge=1, le=100_000_000)
    measured_at: PastTime = Field(default_factory=_now)

    def execute(self, use_case: UseCase, meta: EventMeta, policy: PolicyInForce) -> None:
        use_case.record_adoption(self.active_users, self.target_users, self.measured_at, meta)


class LinkExternalModel(UseCaseCommand):
    """Link a model in an external registry to the use case: that registry's events about it
    become the use case's (a model is linked to one use case at most)."""

    system: RegistrySystem
    name: ShortText

    def execute(self, use_case: UseCase, meta: EventMeta, policy: PolicyInForce) -> None:
        model = ExternalModel(system=self.system, name=self.name, linked_by=meta.actor_id)
        use_case.link_external_model(model, meta)


class UnlinkExternalModel(UseCaseCommand):
    system: RegistrySystem
    name: ShortText
    reason: LongText

    def execute(self, use_case: UseCase, meta: EventMeta, policy: PolicyInForce) -> None:
        use_case.unlink_external_model(self.system, self.name, meta)


class RecordInferenceCost(UseCaseCommand):
    integration_may_post: ClassVar[bool] = True

    period_start: PastTime
    period_end: PastTime
    amount: Money
    currency: Currency

    @field_validator("period_end")
    @classmethod
    def _period_ordered(cls, end: datetime, info: ValidationInfo) -> datetime:
        start = info.data.get("period_start")
        if start is not None and end <= start:
            raise ValueError("must be after periodStart")
        return end

    def execute(self, use_case: UseCase, meta: EventMeta, policy: PolicyInForce) -> None:
        cost = InferenceCost(
            period_start=self.period_start,
            period_end=self.period_end,
            amount=self.amount,
            currency=self.currency,
        )
        use_case.record_inference_cost(cost, meta)


class StateValue(UseCaseCommand):
    """The business owner states the value in operational terms (only they may)."""

    allowed_roles: ClassVar[frozenset[Role]] = WRITERS | APPROVERS

    statement: Annotated[LongText, Field(min_length=10)]
    estimated_annual_value: Money | None = None
    currency: Currency | None = Field(default=None, validate_default=True)

    _currency_with_value = field_validator("currency")(_goes_with("estimated_annual_value"))

    def execute(self, use_case: UseCase, meta: EventMeta, policy: PolicyInForce) -> None:
        use_case.state_value(self.statement, self.estimated_annual_value, self.currency, meta)


class DefineScaleCriteria(UseCaseCommand):
    criteria: tuple[ScaleCriterion, ...] = Field(min_length=1, max_length=3)

    @field_validator("criteria")
    @classmethod
    def _one_per_dimension(cls, criteria: tuple[ScaleCriterion, ...]) -> Any:
        dimensions = [c.dimension for c in criteria]
        if len(set(dimensions)) != len(dimensions):
            raise ValueError("give at most one criterion per dimension")
        return criteria

    def execute(self, use_case: UseCase, meta: EventMeta, policy: PolicyInForce) -> None:
        use_case.define_scale_criteria(self.criteria, meta)


class ConfirmScaleCriterion(UseCaseCommand):
    dimension: ScaleDimension
    evidence: LongText

    def execute(self, use_case: UseCase, meta: EventMeta, policy: PolicyInForce) -> None:
        use_case.confirm_scale_criterion(self.dimension, self.evidence, meta)


class RequestChange(UseCaseCommand):
    """Propose a new production version; it must be evaluated and approved before deploying."""

    to_version: ModelVersion
    reason: LongText
    """Why the change is needed."""

    def execute(self, use_case: UseCase, meta: EventMeta, policy: PolicyInForce) -> None:
        use_case.request_change(self.to_version, self.reason, meta)


class ApproveChange(UseCaseCommand):
    allowed_roles: ClassVar[frozenset[Role]] = APPROVERS

    change_number: int = Field(ge=1)

    def execute(self, use_case: UseCase, meta: EventMeta, policy: PolicyInForce) -> None:
        use_case.approve_change(self.change_number, meta)


class RollBack(UseCaseCommand):
    integration_may_post: ClassVar[bool] = True

    reason: LongText
    to_version: ShortText | None = None
    """Optional check: the version the caller expects to return to."""
    rolled_back_at: PastTime = Field(default_factory=_now)

    def execute(self, use_case: UseCase, meta: EventMeta, policy: PolicyInForce) -> None:
        use_case.roll_back(self.to_version, self.rolled_back_at, meta)


class RaiseQualityAlert(UseCaseCommand):
    integration_may_post: ClassVar[bool] = True

    alert_id: ShortText | None = None
    severity: AlertSeverity
    description: LongText
    raised_at: PastTime = Field(default_factory=_now)

    def execute(self, use_case: UseCase, meta: EventMeta, policy: PolicyInForce) -> None:
        use_case.raise_quality_alert(
            self.alert_id, self.severity, self.description, self.raised_at, meta
        )


class ResolveQualityAlert(UseCaseCommand):
    integration_may_post: ClassVar[bool] = True

    alert_id: ShortText
    resolution: LongText
    resolved_at: PastTime = Field(default_factory=_now)

    def execute(self, use_case: UseCase, meta: EventMeta, policy: PolicyInForce) -> None:
        use_case.resolve_quality_alert(self.alert_id, self.resolution, self.resolved_at, meta)


class ReturnToStage(UseCaseCommand):
    stage: Stage
    reason: LongText

    def execute(self, use_case: UseCase, meta: EventMeta, policy: PolicyInForce) -> None:
        use_case.return_to_stage(self.stage, meta)


class Retire(UseCaseCommand):
    reason: LongText

    def execute(self, use_case: UseCase, meta: EventMeta, policy: PolicyInForce) -> None:
        use_case.retire(meta)


USE_CASE_COMMANDS: tuple[type[UseCaseCommand], ...] = (
    ScorePriority,
    AssignOwner,
    SpecifyWorkflow,
    DefineAcceptanceCriteria,
    CaptureBaseline,
    RegisterCandidateVersion,
    RecordEvaluation,
    SignOffAcceptance,
    ConfirmReadiness,
    AdvanceStage,
    RecordDeployment,
    RecordMeasurement,
    RecordAdoption,
    RecordInferenceCost,
    LinkExternalModel,
    UnlinkExternalModel,
    StateValue,
    DefineScaleCriteria,
    ConfirmScaleCriterion,
    RequestChange,
    ApproveChange,
    RollBack,
    RaiseQualityAlert,
    ResolveQualityAlert,
    ReturnToStage,
    Retire,
)
