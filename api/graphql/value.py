"""The read side of value per use case: cost by month against the budget, return on investment,
the adoption trend. Everything but the adoption series comes from the use case's state, so a
page of use cases asks nothing more of the database; the series is read for the whole page at
once (``AdoptionSeries``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

import strawberry
from graphql import GraphQLError

from api.graphql.context import Context
from api.graphql.history import PageInfo, check_page_size
from domain import costs
from domain.costs import Budget
from domain.gates import RequirementCode, requirement_holds
from domain.policy import PolicyValues
from domain.state import UseCaseState
from projections.readmodels import AdoptionReading as AdoptionReadingRecord
from projections.readmodels import Page


@strawberry.type(
    description="The inference cost reported for one calendar month (UTC) in one currency, "
    "against the monthly budget (COST_WITHIN_BUDGET judges the last complete month)."
)
class MonthlyCost:
    month: str = strawberry.field(description="`YYYY-MM`.")
    currency: str
    amount: Decimal = strawberry.field(
        description="The month's share of every report overlapping it, by the time in it."
    )
    days_reported: float = strawberry.field(description="Days of the month the reports cover.")
    days_in_month: int
    reported_in_full: bool = strawberry.field(
        description="The reports leave less than a day of the month uncovered."
    )
    budget: Decimal | None = strawberry.field(
        description="The monthly budget, where it is in this currency; null otherwise."
    )
    within_budget: bool | None = strawberry.field(
        description="Reported in full and at most the budget; null where there is nothing to "
        "compare (another currency, no budget, or the month reported in part)."
    )


def cost_by_month(state: UseCaseState, last: int | None) -> list[MonthlyCost]:
    """The ``last`` latest months with a cost reported (every one if None), oldest first,
    then by currency."""
    budget = costs.budget_of(state.readiness)
    found = []
    months = sorted(state.monthly_costs)
    for month in months if last is None else months[-last:] if last else []:
        for currency, cost in sorted(state.monthly_costs[month].items()):
            left_uncovered = costs.uncovered(cost)
            in_full = costs.leaves_less_than_a_day(left_uncovered)
            limit = budget.amount if budget is not None and budget.currency == currency else None
            days = costs.days_in(month)
            found.append(
                MonthlyCost(
                    month=month,
                    currency=currency,
                    amount=cost.amount,
                    days_reported=round(days - left_uncovered.total_seconds() / 86_400, 2),
                    days_in_month=days,
                    reported_in_full=in_full,
                    budget=limit,
                    within_budget=None if limit is None or not in_full else cost.amount <= limit,
                )
            )
    return found


@strawberry.type(
    description="The monthly inference budget stated when cost tracking was confirmed."
)
class MonthlyBudget:
    amount: Decimal
    currency: str

    @classmethod
    def of(cls, budget: Budget | None) -> MonthlyBudget | None:
        return None if budget is None else cls(amount=budget.amount, currency=budget.currency)


@strawberry.type(
    description="Stated annual value against annualised inference cost, in the currency the "
    "value was stated in; `proven` is false while IMPROVEMENT_SHOWN is unmet."
)
class ReturnOnInvestment:
    currency: str
    stated_annual_value: Decimal = strawberry.field(
        description="The business owner's estimate of the value per year."
    )
    annualised_inference_cost: Decimal | None = strawberry.field(
        description="The mean cost of the latest complete months reported in full (up to 12) "
        "in this currency, times twelve; null before one."
    )
    months_counted: int = strawberry.field(
        description="How many months `annualisedInferenceCost` is the mean of."
    )
    value_to_cost: float | None = strawberry.field(
        description="Stated annual value over annualised cost; null without a cost."
    )
    proven: bool = strawberry.field(
        description="IMPROVEMENT_SHOWN holds: each outcome improved, no guardrail worse than "
        "tolerated. While false, the return is unproven: a statement, not a measurement."
    )


def return_on_investment(
    state: UseCaseState, policy: PolicyValues, at: datetime
) -> ReturnOnInvestment | None:
    """None until the business owner stated an annual value in a currency."""
    statement = state.value_statement
    if statement is None or statement.estimated_annual_value is None or not statement.currency:
        return None
    value, currency = statement.estimated_annual_value, statement.currency
    cost = costs.annualised_cost(state.monthly_costs, currency, at)
    return ReturnOnInvestment(
        currency=currency,
        stated_annual_value=value,
        annualised_inference_cost=None if cost is None else cost.amount,
        months_counted=0 if cost is None else cost.months,
        value_to_cost=None if cost is None or not cost.amount else float(value / cost.amount),
        proven=requirement_holds(RequirementCode.IMPROVEMENT_SHOWN, state, policy, at),
    )


@strawberry.type(description="One adoption measurement: active against target users.")
class AdoptionReading:
    active_users: int
    target_users: int
    rate: float = strawberry.field(description="Active over target users (0.5: 50 %).")
    measured_at: datetime
    recorded_at: datetime = strawberry.field(description="The server's clock.")

    @classmethod
    def of(cls, reading: AdoptionReadingRecord) -> AdoptionReading:
        return cls(
            active_users=reading.active_users,
            target_users=reading.target_users,
            rate=reading.rate,
            measured_at=reading.measured_at,
            recorded_at=reading.recorded_at,
        )


@strawberry.type
class AdoptionEdge:
    cursor: str
    node: AdoptionReading


@strawberry.type(description="Adoption readings in the order they were measured.")
class AdoptionConnection:
    edges: list[AdoptionEdge]
    page_info: PageInfo


@dataclass
class AdoptionSeries:
    """The use cases of one page of a list, whose adoption series are read together: the
    first that asks reads the series of all of them, with the same arguments, in one query."""

    use_case_ids: tuple[str, ...]
    until_version: int | None = None
    """For a use case as it stood at a version (``asOf``): the readings recorded up to it."""
    _read: dict[tuple[int, bool], dict[str, Page[AdoptionReadingRecord]]] = field(
        default_factory=dict
    )

    def page(
        self, context: Context, use_case_id: str, size: int, after: str | None, newest: bool
    ) -> Page[AdoptionReadingRecord]:
        if after is not None or self.until_version is not None:  # one use case's own
            return context.read_models.adoption_series(
                [use_case_id], size, after, newest, self.until_version
            )[use_case_id]
        pages = self._read.get((size, newest))
        if pages is None or use_case_id not in pages:
            ids = list(self.use_case_ids) if use_case_id in self.use_case_ids else [use_case_id]
            pages = context.read_models.adoption_series(ids, size, None, newest)
            self._read[(size, newest)] = pages
        return pages[use_case_id]


def adoption_connection(
    context: Context,
    series: AdoptionSeries,
    use_case_id: str,
    first: int | None,
    after: str | None,
    last: int | None,
) -> AdoptionConnection:
    if last is not None and first is not None:
        raise GraphQLError("give first/after or last, not both")
    newest = last is not None
    size = last if last is not None else first if first is not None else 20
    check_page_size(size)
    if newest and after is not None:
        raise GraphQLError("after pages forward: give it with first")
    try:
        page = series.page(context, use_case_id, size, after, newest)
    except ValueError as error:
        raise GraphQLError(str(error)) from None
    return AdoptionConnection(
        edges=[
            AdoptionEdge(cursor=cursor, node=AdoptionReading.of(reading))
            for reading, cursor in zip(page.items, page.cursors, strict=True)
        ],
        page_info=PageInfo.of(page),
    )
