"""The ``UseCase`` type and its companions, built from a loaded aggregate and the policy."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import strawberry
from graphql import GraphQLError

from api.graphql.context import Context
from api.graphql.cost import BUDGET, Costly
from api.graphql.derive import graphql_enum, in_key_order, output_type
from api.graphql.errors import Requirement, RequirementCode, Stage
from api.graphql.history import HistoryConnection, check_page_size, history_connection
from api.graphql.integrity import Integrity
from api.graphql.node import USE_CASE, Node, global_id
from api.graphql.value import (
    AdoptionConnection,
    AdoptionSeries,
    MonthlyBudget,
    MonthlyCost,
    ReturnOnInvestment,
    adoption_connection,
    cost_by_month,
    return_on_investment,
)
from domain import clock, improvement
from domain import values as v
from domain.costs import budget_of
from domain.gates import GATES, gate_status
from domain.policy import PolicyInForce
from domain.policy import PolicyValues as DomainPolicyValues
from domain.state import UseCaseState
from domain.usecase import UseCase as DomainUseCase

# mypy sees the domain classes the resolvers really return; strawberry sees GraphQL types.
if TYPE_CHECKING:
    Role = v.Role
    Person = v.Person
    PriorityScore = v.PriorityScore
    WorkflowSpec = v.WorkflowSpec
    Criterion = v.Criterion
    Baseline = v.Baseline
    ModelVersion = v.ModelVersion
    Evaluation = v.Evaluation
    SignOff = v.SignOff
    ReadinessConfirmation = v.ReadinessConfirmation
    Deployment = v.Deployment
    Change = v.Change
    Measurement = v.Measurement
    Adoption = v.Adoption
    ValueStatement = v.ValueStatement
    ScaleCriterion = v.ScaleCriterion
    ScaleConfirmation = v.ScaleConfirmation
    QualityAlert = v.QualityAlert
    ExternalModel = v.ExternalModel
    PolicyValues = DomainPolicyValues
else:
    Role = graphql_enum(v.Role)
    Person = output_type(v.Person)
    PriorityScore = output_type(v.PriorityScore)
    WorkflowSpec = output_type(v.WorkflowSpec)
    Criterion = output_type(v.Criterion)
    Baseline = output_type(v.Baseline)
    ModelVersion = output_type(v.ModelVersion)
    Evaluation = output_type(v.Evaluation)
    SignOff = output_type(v.SignOff)
    ReadinessConfirmation = output_type(v.ReadinessConfirmation)
    Deployment = output_type(v.Deployment)
    Change = output_type(v.Change)
    Measurement = output_type(v.Measurement)
    Adoption = output_type(v.Adoption)
    ValueStatement = output_type(v.ValueStatement)
    ScaleCriterion = output_type(v.ScaleCriterion)
    ScaleConfirmation = output_type(v.ScaleConfirmation)
    QualityAlert = output_type(v.QualityAlert)
    ExternalModel = output_type(v.ExternalModel)
    PolicyValues = output_type(DomainPolicyValues)


@strawberry.type(description="The three owners a use case needs; null until named.")
class Owners:
    business: Person | None
    technical: Person | None
    monitoring: Person | None


@strawberry.type(description="One requirement of a stage gate, met or not.")
class GateRequirement:
    code: RequirementCode
    met: bool
    message: str | None = strawberry.field(
        description="What to do to meet it (as `unmet` says it); null when it is met."
    )


@strawberry.type(description="Where the use case could go next and every requirement in the way.")
class GateStatus:
    stage: Stage
    next: Stage | None = strawberry.field(description="Null from SCALE and RETIRED.")
    unmet: list[Requirement]
    requirements: list[GateRequirement] = strawberry.field(
        description=(
            "Every requirement of the gate into `next`, met or not, in the order the gate "
            "lists them (a checklist; `unmet` is the part of it not met). Empty when `next` "
            "is null."
        )
    )
    policy_version: int = strawberry.field(description="The policy version this was judged by.")
    open: bool = strawberry.field(description="True when `advanceStage` would pass now.")


@strawberry.type(description="A scale-readiness criterion and whether it is confirmed met.")
class ScaleCriterionStatus:
    criterion: ScaleCriterion
    confirmation: ScaleConfirmation | None
    met: bool


@strawberry.type(description="The organisation's policy in force.")
class Policy:
    version: int = strawberry.field(description="0 is the built-in default.")
    values: PolicyValues

    @classmethod
    def from_domain(cls, policy: PolicyInForce) -> Policy:
        return cls(version=policy.version, values=policy.values)


@strawberry.type(description="Who the caller is, as their token says.")
class Principal:
    actor_id: str
    role: Role


MAX_MONTHS = 1200
"""The most months ``costByMonth`` lists at once (a hundred years)."""


@dataclass(frozen=True)
class UseCaseView:
    """A loaded use case with the policy its gate is judged by and the instant it is judged
    at (no further I/O needed): now, or the instant ``asOf`` asks about."""

    use_case: DomainUseCase
    policy: PolicyInForce
    at: datetime = field(default_factory=clock.now)
    adoption_series: AdoptionSeries | None = None
    """Shared by the use cases of one page of a list, to read their adoption at once."""


@strawberry.type(
    description="A baseline metric against its latest after-state in the measurement window, "
    "judged as IMPROVEMENT_SHOWN judges it under the policy of the use case's view."
)
class MetricImprovement:
    baseline: Baseline
    after_state: Measurement | None = strawberry.field(
        description="The latest after-state measured inside the window; null if none."
    )
    change: float | None = strawberry.field(
        description="After-state minus baseline, signed so that positive is better."
    )
    relative_change: float | None = strawberry.field(
        description="`change` over the baseline's magnitude (0.1: 10 % better); null without "
        "an after-state, and from a baseline of 0."
    )
    counts: bool = strawberry.field(
        description="Whether it meets the policy: an outcome improved by at least "
        "minImprovement, a guardrail no worse than guardrailTolerance."
    )

    @classmethod
    def of(cls, judged: improvement.MetricImprovement) -> MetricImprovement:
        relative = judged.relative_change
        return cls(
            baseline=judged.baseline,
            after_state=judged.after,
            change=judged.change,
            relative_change=relative if relative is not None and math.isfinite(relative) else None,
            counts=judged.counts,
        )


@strawberry.type(description="An AI use case and everything recorded about it.")
class UseCase(Node):
    view: strawberry.Private[UseCaseView]

    @property
    def _state(self) -> UseCaseState:
        return self.view.use_case.state

    @strawberry.field(description="Global id (Relay): `node(id)` finds this use case again.")
    def id(self) -> strawberry.ID:
        return global_id(USE_CASE, self.view.use_case.id)

    @strawberry.field
    def key(self) -> str:
        return self._state.key

    @strawberry.field
    def title(self) -> str:
        return self._state.title

    @strawberry.field
    def description(self) -> str | None:
        return self._state.description

    @strawberry.field
    def business_unit(self) -> str | None:
        return self._state.business_unit

    @strawberry.field
    def stage(self) -> Stage:
        return self._state.stage

    @strawberry.field(description="When the use case entered its current stage (server time).")
    def stage_since(self) -> datetime:
        return self._state.stage_since

    @strawberry.field(description="Number of events recorded for this use case.")
    def version(self) -> int:
        return self.view.use_case.version

    @strawberry.field
    def registered_at(self) -> datetime:
        return self.view.use_case.created_on

    @strawberry.field
    def registered_by(self) -> str:
        return self._state.registered_by

    @strawberry.field
    def updated_at(self) -> datetime:
        return self.view.use_case.modified_on

    @strawberry.field
    def priority(self) -> PriorityScore | None:
        return self._state.priority

    @strawberry.field
    def owners(self) -> Owners:
        owners = self._state.owners
        return Owners(
            business=owners.get(v.OwnerRole.BUSINESS),
            technical=owners.get(v.OwnerRole.TECHNICAL),
            monitoring=owners.get(v.OwnerRole.MONITORING),
        )

    @strawberry.field
    def workflow(self) -> WorkflowSpec | None:
        return self._state.workflow

    @strawberry.field
    def acceptance_criteria(self) -> list[Criterion]:
        return list(self._state.acceptance_criteria)

    @strawberry.field
    def approver(self) -> Person | None:
        return self._state.approver

    @strawberry.field(description="The latest baseline of each metric, by metric name.")
    def baselines(self) -> list[Baseline]:
        return in_key_order(self._state.baselines)

    @strawberry.field
    def candidate_version(self) -> ModelVersion | None:
        label = self._state.candidate_version
        return self._state.versions[label] if label else None

    @strawberry.field(
        description="Every version registered, as candidate or through a change, by label."
    )
    def versions(self) -> list[ModelVersion]:
        return in_key_order(self._state.versions)

    @strawberry.field
    def evaluations(self) -> list[Evaluation]:
        return list(self._state.evaluations)

    @strawberry.field
    def sign_off(self) -> SignOff | None:
        return self._state.sign_off

    @strawberry.field
    def readiness(self) -> list[ReadinessConfirmation]:
        return in_key_order(self._state.readiness)

    @strawberry.field
    def deployments(self) -> list[Deployment]:
        return list(self._state.deployments)

    @strawberry.field(description="The version in production now, if any.")
    def production_version(self) -> str | None:
        return self._state.production_version

    @strawberry.field
    def first_production_deployment_at(self) -> datetime | None:
        return self._state.first_production_deployment_at

    @strawberry.field
    def changes(self) -> list[Change]:
        return list(self._state.changes)

    @strawberry.field(
        description="Per baseline metric, the after-state measured latest, by metric name."
    )
    def latest_measurements(self) -> list[Measurement]:
        return in_key_order(self._state.latest_measurements)

    @strawberry.field(
        description="Each baseline metric against its latest after-state, by metric name: the "
        "value proven or not (IMPROVEMENT_SHOWN)."
    )
    def improvements(self) -> list[MetricImprovement]:
        judged = improvement.improvements(self._state, self.view.policy.values)
        return [MetricImprovement.of(m) for m in judged]

    @strawberry.field(description="The adoption measured latest.")
    def latest_adoption(self) -> Adoption | None:
        return self._state.latest_adoption

    @strawberry.field(
        description="Every adoption reading in the order measured (the trend): `first`/`after` "
        "page forward from the oldest, `last` gives the newest. Read for a whole page of use "
        "cases at once."
    )
    def adoption(
        self,
        info: strawberry.Info[Context, None],
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
    ) -> AdoptionConnection:
        view = self.view
        series = view.adoption_series or AdoptionSeries((str(view.use_case.id),))
        return adoption_connection(info.context, series, str(view.use_case.id), first, after, last)

    @strawberry.field(
        description="Inference cost reported per calendar month and currency, oldest first, "
        "against the monthly budget: the `last` months with a cost (12 unless asked; null: "
        "every one)."
    )
    def cost_by_month(self, last: int | None = 12) -> list[MonthlyCost]:
        if last is not None and not 0 <= last <= MAX_MONTHS:
            raise GraphQLError(f"last must be between 0 and {MAX_MONTHS}, not {last}")
        return cost_by_month(self._state, last)

    @strawberry.field(description="Stated when cost tracking was confirmed; null before.")
    def monthly_budget(self) -> MonthlyBudget | None:
        return MonthlyBudget.of(budget_of(self._state.readiness))

    @strawberry.field(
        description="Stated annual value against annualised inference cost; `proven` false "
        "while IMPROVEMENT_SHOWN is unmet. Null until an annual value is stated."
    )
    def return_on_investment(self) -> ReturnOnInvestment | None:
        return return_on_investment(self._state, self.view.policy.values, self.view.at)

    @strawberry.field
    def value_statement(self) -> ValueStatement | None:
        return self._state.value_statement

    @strawberry.field
    def scale_criteria(self) -> list[ScaleCriterionStatus]:
        confirmations = self._state.scale_confirmations
        return [
            ScaleCriterionStatus(
                criterion=criterion,
                confirmation=confirmations.get(criterion.dimension),
                met=criterion.dimension in confirmations,
            )
            for criterion in in_key_order(self._state.scale_criteria)
        ]

    @strawberry.field(
        description="Models in external registries (MLflow, SageMaker, W&B) linked to the use "
        "case, by system and name: their registry events are the use case's."
    )
    def external_models(self) -> list[ExternalModel]:
        return in_key_order(self._state.external_models)

    @strawberry.field(description="Output-quality alerts raised and not yet resolved, by id.")
    def open_quality_alerts(self) -> list[QualityAlert]:
        return in_key_order(self._state.open_quality_alerts)

    @strawberry.field(
        description="Audit entries, oldest first: `first`/`after` page forward from the "
        "start, `last`/`before` give the newest entries. At most "
        f"{BUDGET[Costly.HISTORY]} pages per request (past that, errors with code COST_LIMIT)."
        " Null, with an error of code FORBIDDEN at its path, for a viewer: the use case's other"
        " fields are still answered."
    )
    def history(
        self,
        info: strawberry.Info[Context, None],
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> HistoryConnection | None:
        if last is not None and (first is not None or after is not None):
            raise GraphQLError("give first/after or last/before, not both")
        newest = last is not None or before is not None
        size = last if newest else first
        size = 20 if size is None else size
        check_page_size(size)
        context = info.context
        context.authorize_history()
        context.cost.charge(Costly.HISTORY)
        try:
            page = context.read_models.history(
                str(self.view.use_case.id), size, before if newest else after, newest
            )
        except ValueError as error:
            raise GraphQLError(str(error)) from None
        return history_connection(page)

    @strawberry.field(
        description="The use case as it stood at a version, or at an instant (`at`), with its "
        "gate judged under the policy in force then. Null before it existed, and for a viewer "
        "(with an error of code FORBIDDEN at its path). At most "
        f"{BUDGET[Costly.AS_OF]} per request (past that, errors with code COST_LIMIT)."
    )
    def as_of(
        self,
        info: strawberry.Info[Context, None],
        version: int | None = None,
        at: datetime | None = None,
    ) -> UseCase | None:
        if (version is None) == (at is None):
            raise GraphQLError("give exactly one of version and at")
        if at is not None and at.tzinfo is None:
            raise GraphQLError("at needs a time zone, e.g. 2026-05-01T12:00:00Z")
        if at is not None and at < v.EARLIEST_BUSINESS_TIME:
            return None  # before anything stagegate records (and before any UTC it can hold)
        if at is not None:
            at = min(at, datetime.now(UTC))  # later than now: as it stands now
        context = info.context
        current = self.view.use_case
        context.authorize_history()
        context.cost.charge(Costly.AS_OF)
        context.read_models.refresh()  # the history (and the policy's) up to now
        wanted = version
        if at is not None:
            wanted = context.read_models.version_at(str(current.id), at)
            if wanted is None:
                return None
        assert wanted is not None
        if wanted < 1 or wanted > current.version:
            raise GraphQLError(f"version must be between 1 and {current.version}, not {wanted}")
        then = context.stagegate.use_case(current.state.key, version=wanted)
        # Judged by the policy in force at the instant asked about or, for a version, when
        # that version was recorded.
        policy_version = context.read_models.policy_version_at(at or then.modified_on)
        return UseCase(
            view=UseCaseView(
                then,
                context.stagegate.policy_at(policy_version),
                at or then.modified_on,
                AdoptionSeries((str(then.id),), until_version=then.version),
            )
        )

    @strawberry.field(
        description="Recompute and check the history's hash chain now. At most "
        f"{BUDGET[Costly.INTEGRITY]} per request (past that, errors with code COST_LIMIT)."
        " Null, with an error of code FORBIDDEN at its path, for a viewer."
    )
    def integrity(self, info: strawberry.Info[Context, None]) -> Integrity | None:
        context = info.context
        context.authorize_history()
        context.cost.charge(Costly.INTEGRITY)
        return Integrity.from_check(context.verify_integrity(self.view.use_case.id))

    @strawberry.field(description="What blocks the next forward move now.")
    def gate(self) -> GateStatus:
        status = gate_status(self._state, self.view.policy, self.view.at)
        unmet = {r.code: r.message for r in status.unmet}
        listed = GATES.get(status.next, ()) if status.next is not None else ()
        return GateStatus(
            stage=status.stage,
            next=status.next,
            unmet=[Requirement(code=r.code, message=r.message) for r in status.unmet],
            requirements=[
                GateRequirement(code=code, met=code not in unmet, message=unmet.get(code))
                for code, _check in listed
            ],
            policy_version=status.policy_version,
            open=status.open,
        )
