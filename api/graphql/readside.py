"""Portfolio queries: use-case lists, the backlog, the portfolio figures, audit history.

All are served by the read models (one query per page, whatever the page asks of its nodes'
owners, evidence and gates).
"""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

import strawberry
from graphql import GraphQLError

from api.graphql.context import Context
from api.graphql.errors import RequirementCode, Stage
from api.graphql.history import PageInfo, check_page_size
from api.graphql.types import UseCase, UseCaseView
from api.graphql.value import AdoptionSeries
from domain import clock
from domain.gates import RequirementCode as DomainRequirementCode
from domain.usecase import UseCase as DomainUseCase
from domain.values import Stage as DomainStage
from projections.readmodels import UseCaseFilter, UseCaseRecord
from projections.readmodels import ValueAndCost as DomainValueAndCost

MAX_DAYS = 36_500
"""Longest span a day-count argument may name (a century): no date arithmetic overflows."""


def check_days(argument: str, days: int | None) -> None:
    if days is not None and not 0 <= days <= MAX_DAYS:
        raise GraphQLError(f"{argument} must be between 0 and {MAX_DAYS}, not {days}")


@strawberry.type
class UseCaseEdge:
    cursor: str
    node: UseCase


@strawberry.type(description="A page of use cases; `totalCount` counts every match.")
class UseCaseConnection:
    edges: list[UseCaseEdge]
    page_info: PageInfo
    filter: strawberry.Private[UseCaseFilter]

    @strawberry.field
    def total_count(self, info: strawberry.Info[Context, None]) -> int:
        return info.context.read_models.count_use_cases(self.filter)


@strawberry.type
class BacklogEdge:
    cursor: str
    rank: int = strawberry.field(description="1 is the first to invest in.")
    node: UseCase


@strawberry.type(
    description="Use cases not yet in SCALE, strongest on all three priority dimensions first: "
    "the weakest score decides, then organisational readiness, then the total; unscored last."
)
class BacklogConnection:
    edges: list[BacklogEdge]
    page_info: PageInfo


@strawberry.input(description="Every given condition must hold.")
class UseCaseFilterInput:
    stages: list[Stage] | None = None
    business_unit: str | None = None
    owner: str | None = strawberry.field(
        default=None, description="Business, technical or monitoring owner, or approver."
    )
    unmet_code: RequirementCode | None = strawberry.field(
        default=None, description="Its next gate does not meet this requirement."
    )
    stuck_for_days: int | None = strawberry.field(
        default=None,
        description=f"No stage transition for at least this many days (0 to {MAX_DAYS}).",
    )

    def to_domain(self) -> UseCaseFilter:
        check_days("stuckForDays", self.stuck_for_days)
        return UseCaseFilter(
            stages=tuple(DomainStage(s) for s in self.stages or ()),
            business_unit=self.business_unit,
            owner=self.owner,
            unmet_code=DomainRequirementCode(self.unmet_code) if self.unmet_code else None,
            stuck_for_days=self.stuck_for_days,
        )


@strawberry.type
class StageFigures:
    stage: Stage
    count: int
    average_days_in_stage: float | None = strawberry.field(
        description="Mean days spent in the stage, counting those still in it up to now."
    )


@strawberry.type(description="Stated annual value and the inference cost of one group.")
class ValueAndCost:
    estimated_annual_value: Decimal
    annual_inference_cost: Decimal

    @classmethod
    def of(cls, figures: DomainValueAndCost) -> ValueAndCost:
        return cls(
            estimated_annual_value=figures.estimated_annual_value,
            annual_inference_cost=figures.annual_inference_cost,
        )


@strawberry.type
class ValueAgainstCost:
    currency: str
    estimated_annual_value: Decimal = strawberry.field(
        description="Sum of the business owners' stated annual value."
    )
    annual_inference_cost: Decimal = strawberry.field(
        description="Inference cost reported for periods ending in the last 365 days."
    )
    proven: ValueAndCost = strawberry.field(
        description="Of the use cases whose value is proven (IMPROVEMENT_SHOWN holds)."
    )
    unproven: ValueAndCost = strawberry.field(
        description="Of the others: their value is stated, not yet shown by measurement."
    )


@strawberry.type(
    description="Of the use cases that ever entered pilot, how many reached this stage, and "
    "how long the stage took."
)
class FunnelStep:
    stage: Stage
    reached: int
    median_days_in_stage: float | None = strawberry.field(
        description="Median days of every completed stay in the stage; null while nobody has "
        "left it."
    )


@strawberry.type(description="The portfolio at a glance.")
class Portfolio:
    stages: list[StageFigures]
    stuck_pilots: list[str] = strawberry.field(
        description="Keys of pilots with no transition for `stuckAfterDays`, longest first."
    )
    stuck_after_days: int
    deployed: int = strawberry.field(description="Use cases in production, not retired.")
    deployed_with_measured_value: int
    measured_value_share: float | None = strawberry.field(
        description="Share of deployed use cases whose after-state counts as measured."
    )
    value_against_cost: list[ValueAgainstCost]
    funnel: list[FunnelStep] = strawberry.field(
        description="Pilot to production: pilot, acceptance, deployment, measurement, scale."
    )


def use_case_node(
    record: UseCaseRecord, context: Context, page: AdoptionSeries | None = None
) -> UseCase:
    """A use case of a list; ``page``: shared by the list's page, so that what the page's
    use cases read beyond their summary is read for all of them at once."""
    aggregate = DomainUseCase.from_state(
        UUID(record.id), record.version, record.registered_at, record.updated_at, record.state
    )
    return UseCase(view=UseCaseView(aggregate, context.policy(), clock.now(), adoption_series=page))


def _cursor_error(error: ValueError) -> GraphQLError:
    return GraphQLError(str(error))


@strawberry.type
class ReadQueries:
    @strawberry.field(description="Use cases by key, filtered; a Relay-style connection.")
    def use_cases(
        self,
        info: strawberry.Info[Context, None],
        filter: UseCaseFilterInput | None = None,
        first: int = 20,
        after: str | None = None,
    ) -> UseCaseConnection:
        context = info.context
        check_page_size(first)
        domain_filter = filter.to_domain() if filter else UseCaseFilter()
        context.authorize_read()
        try:
            page = context.read_models.use_cases(domain_filter, first, after)
        except ValueError as error:
            raise _cursor_error(error) from None
        shared = AdoptionSeries(tuple(record.id for record in page.items))
        edges = [
            UseCaseEdge(cursor=cursor, node=use_case_node(record, context, shared))
            for record, cursor in zip(page.items, page.cursors, strict=True)
        ]
        return UseCaseConnection(edges=edges, page_info=PageInfo.of(page), filter=domain_filter)

    @strawberry.field(description="The prioritised backlog.")
    def backlog(
        self, info: strawberry.Info[Context, None], first: int = 20, after: str | None = None
    ) -> BacklogConnection:
        context = info.context
        check_page_size(first)
        context.authorize_read()
        try:
            page = context.read_models.backlog(first, after)
        except ValueError as error:
            raise _cursor_error(error) from None
        shared = AdoptionSeries(tuple(entry.record.id for entry in page.items))
        edges = [
            BacklogEdge(
                cursor=cursor, rank=entry.rank, node=use_case_node(entry.record, context, shared)
            )
            for entry, cursor in zip(page.items, page.cursors, strict=True)
        ]
        return BacklogConnection(edges=edges, page_info=PageInfo.of(page))

    @strawberry.field(description="Counts, time in stage, stuck pilots, measured value, ROI.")
    def portfolio(
        self, info: strawberry.Info[Context, None], stuck_after_days: int | None = None
    ) -> Portfolio:
        context = info.context
        check_days("stuckAfterDays", stuck_after_days)
        context.authorize_read()
        days = stuck_after_days
        if days is None:
            days = context.policy().values.stuck_after_days
        figures = context.read_models.portfolio(days)
        return Portfolio(
            stages=[
                StageFigures(
                    stage=s.stage, count=s.count, average_days_in_stage=s.average_days_in_stage
                )
                for s in figures.stages
            ],
            stuck_pilots=figures.stuck_pilots,
            stuck_after_days=figures.stuck_after_days,
            deployed=figures.deployed,
            deployed_with_measured_value=figures.deployed_with_measured_value,
            measured_value_share=figures.measured_value_share,
            value_against_cost=[
                ValueAgainstCost(
                    currency=v.currency,
                    estimated_annual_value=v.estimated_annual_value,
                    annual_inference_cost=v.annual_inference_cost,
                    proven=ValueAndCost.of(v.proven),
                    unproven=ValueAndCost.of(v.unproven),
                )
                for v in figures.value_against_cost
            ],
            funnel=[
                FunnelStep(
                    stage=step.stage,
                    reached=step.reached,
                    median_days_in_stage=step.median_days_in_stage,
                )
                for step in figures.funnel
            ],
        )
