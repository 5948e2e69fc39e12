"""Inference cost by calendar month, against the monthly budget (``COST_WITHIN_BUDGET``).

A cost report covers a period (``period_start`` up to, not including, ``period_end``) that need
not match a calendar month: a daily, weekly or monthly feed all work. Each report is shared
among the UTC calendar months it overlaps, in proportion to the time it spends in each (to the
cent; the last month's share takes the rounding, so the shares add up to the report), and the
time it covers is kept per month and currency. Reports for the same time add up: several cost
sources (GPU hours, an API bill) may each report the same month.

The gate looks at the last *complete* calendar month before the instant it is judged at (the
command's time, or ``asOf``'s): its cost in the budget's currency must be reported for the whole
month and be within the budget stated when cost tracking was confirmed. A month is reported in
full when what its reports leave uncovered adds up to less than a day, so that a feed whose
periods end at 23:59:59, or a day late, is not refused for it; a month with no cost, or only
part of one, does not meet the requirement ("tracked and bounded" means reported).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from domain.values import InferenceCost, ReadinessConfirmation, ReadinessItem, Value

CENT = Decimal("0.01")
FULL_MONTH_SLACK = timedelta(days=1)
"""A month whose reports leave less than this uncovered counts as reported in full."""
_MICROSECOND = timedelta(microseconds=1)


class CoveredPeriod(Value):
    start: datetime
    end: datetime


class MonthlyCost(Value):
    """The cost reported for one calendar month in one currency, and what time it covers."""

    month: str
    """``YYYY-MM`` (UTC)."""
    currency: str
    amount: Decimal
    covered: tuple[CoveredPeriod, ...] = ()
    """The periods of the month the reports cover, merged, in order."""


MonthlyCosts = dict[str, dict[str, MonthlyCost]]
"""Month (``YYYY-MM``) -> currency -> the cost reported; what ``UseCaseState`` keeps."""


def month_of(at: datetime) -> str:
    return f"{at.astimezone(UTC):%Y-%m}"


def _year_and_month(month: str) -> tuple[int, int]:
    year, _, number = month.partition("-")
    return int(year), int(number)


def month_start(month: str) -> datetime:
    year, number = _year_and_month(month)
    return datetime(year, number, 1, tzinfo=UTC)


def next_month_start(start: datetime) -> datetime:
    return (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )


def last_complete_month(at: datetime) -> str:
    """The calendar month (UTC) that ended last before ``at``."""
    this_month = at.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return month_of(this_month - timedelta(days=1))


def month_name(month: str) -> str:
    return f"{month_start(month):%B %Y}"


def add_cost(costs: MonthlyCosts, cost: InferenceCost) -> None:
    """Share ``cost`` among the months its period overlaps and add each share to ``costs``."""
    start, end = cost.period_start.astimezone(UTC), cost.period_end.astimezone(UTC)
    total = (end - start) // _MICROSECOND
    pieces = []
    month = start.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    while month < end:
        following = next_month_start(month)
        piece_start, piece_end = max(start, month), min(end, following)
        pieces.append((month_of(month), piece_start, piece_end))
        month = following
    shared = Decimal(0)
    for index, (name, piece_start, piece_end) in enumerate(pieces):
        if index == len(pieces) - 1:
            share = cost.amount - shared
        else:
            part = Decimal((piece_end - piece_start) // _MICROSECOND) / Decimal(total)
            share = (cost.amount * part).quantize(CENT, rounding=ROUND_HALF_EVEN)
        shared += share
        by_currency = costs.setdefault(name, {})
        held = by_currency.get(cost.currency)
        covered: tuple[CoveredPeriod, ...] = (CoveredPeriod(start=piece_start, end=piece_end),)
        if held is not None:
            covered = _merged((*held.covered, *covered))
        by_currency[cost.currency] = MonthlyCost(
            month=name,
            currency=cost.currency,
            amount=(held.amount if held else Decimal(0)) + share,
            covered=covered,
        )


def _merged(periods: tuple[CoveredPeriod, ...]) -> tuple[CoveredPeriod, ...]:
    merged: list[CoveredPeriod] = []
    for period in sorted(periods, key=lambda p: p.start):
        if merged and period.start <= merged[-1].end:
            if period.end > merged[-1].end:
                merged[-1] = CoveredPeriod(start=merged[-1].start, end=period.end)
        else:
            merged.append(period)
    return tuple(merged)


_MONTH_LENGTHS = tuple(
    timedelta(days=days) for days in (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
)
_LEAP_FEBRUARY = timedelta(days=29)


def month_length(month: str) -> timedelta:
    # Called for every month of every use case of a page (costByMonth, the budget rule), so
    # read off a table: two datetimes subtracted, or the calendar module, cost 8 % of a page.
    year, number = _year_and_month(month)
    if not 1 <= number <= 12:
        raise ValueError(f"month must be 1-12 in {month!r}")
    if number == 2 and calendar.isleap(year):
        return _LEAP_FEBRUARY
    return _MONTH_LENGTHS[number - 1]


def uncovered(cost: MonthlyCost) -> timedelta:
    """How much of the month no report covers."""
    return month_length(cost.month) - sum((p.end - p.start for p in cost.covered), timedelta())


def days_in(month: str) -> int:
    return month_length(month).days


def reported_in_full(cost: MonthlyCost) -> bool:
    return leaves_less_than_a_day(uncovered(cost))


def leaves_less_than_a_day(left_uncovered: timedelta) -> bool:
    """Whether a month that ``uncovered`` leaves this much of counts as reported in full."""
    return left_uncovered < FULL_MONTH_SLACK


@dataclass(frozen=True)
class Budget:
    amount: Decimal
    currency: str


def budget_of(readiness: dict[ReadinessItem, ReadinessConfirmation]) -> Budget | None:
    """The monthly budget stated when cost tracking was last confirmed."""
    confirmation = readiness.get(ReadinessItem.COST_TRACKING)
    if confirmation is None or confirmation.monthly_budget is None or not confirmation.currency:
        return None
    return Budget(amount=confirmation.monthly_budget, currency=confirmation.currency)


def money(amount: Decimal, currency: str) -> str:
    return f"{amount:,.2f} {currency}"


def within_budget_problem(costs: MonthlyCosts, budget: Budget | None, at: datetime) -> str | None:
    """None when the last complete month's cost is reported in full and within ``budget``;
    else the sentence saying which month, what was reported and what the budget is."""
    if budget is None:
        return (
            "No monthly inference budget was stated: confirm platform readiness for "
            "cost_tracking with a monthly budget and its currency."
        )
    month = last_complete_month(at)
    name = month_name(month)
    limit = money(budget.amount, budget.currency)
    reported = costs.get(month, {})
    cost = reported.get(budget.currency)
    if cost is None:
        others = ", ".join(sorted(reported))
        if others:
            return (
                f"Inference cost for {name} was reported in {others} only; the monthly "
                f"budget is {limit}, so report the month's cost in {budget.currency}."
            )
        return (
            f"No inference cost was reported for {name}, the last complete month; report it "
            f"to show it is within the monthly budget of {limit}."
        )
    if not reported_in_full(cost):
        covered_days = (days_in(month) * 86_400 - uncovered(cost).total_seconds()) / 86_400
        return (
            f"Inference cost for {name} was reported for only {covered_days:.1f} of its "
            f"{days_in(month)} days ({money(cost.amount, cost.currency)} so far); report the "
            f"whole month to compare it with the monthly budget of {limit}."
        )
    if cost.amount > budget.amount:
        return (
            f"Inference cost for {name} was {money(cost.amount, cost.currency)}, over the "
            f"monthly budget of {limit} by {money(cost.amount - budget.amount, cost.currency)}."
        )
    return None


@dataclass(frozen=True)
class AnnualisedCost:
    amount: Decimal
    """The mean cost of the months counted, times twelve."""
    currency: str
    months: int
    """How many complete calendar months, reported in full, the mean is of."""


ANNUALISED_FROM_MONTHS = 12
"""An annualised cost is the mean of at most this many of the latest complete months."""


def annualised_cost(costs: MonthlyCosts, currency: str, at: datetime) -> AnnualisedCost | None:
    """The inference cost for a year at the rate of the latest complete months before ``at``
    reported in full in ``currency`` (at most twelve of them); None without one."""
    last = last_complete_month(at)
    months = sorted(
        (
            month
            for month, by_currency in costs.items()
            if month <= last and currency in by_currency and reported_in_full(by_currency[currency])
        ),
        reverse=True,
    )[:ANNUALISED_FROM_MONTHS]
    if not months:
        return None
    total = sum((costs[month][currency].amount for month in months), Decimal(0))
    yearly = (total * 12 / len(months)).quantize(CENT, rounding=ROUND_HALF_EVEN)
    return AnnualisedCost(amount=yearly, currency=currency, months=len(months))
