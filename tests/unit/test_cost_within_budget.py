"""``COST_WITHIN_BUDGET``: the last complete calendar month's inference cost, reported in full,
within the monthly budget stated when cost tracking was confirmed (same currency)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from domain import commands as c
from domain.application import Stagegate
from domain.costs import (
    Budget,
    MonthlyCosts,
    add_cost,
    month_length,
    reported_in_full,
    within_budget_problem,
)
from domain.errors import GateBlocked
from domain.gates import RequirementCode as R
from domain.values import InferenceCost, Stage
from tests.builders import Journey, last_month

NOV = datetime(2026, 11, 1, tzinfo=UTC)
DEC = datetime(2026, 12, 1, tzinfo=UTC)


def _cost(start: datetime, end: datetime, amount: str, currency: str = "EUR") -> InferenceCost:
    return InferenceCost(
        period_start=start, period_end=end, amount=Decimal(amount), currency=currency
    )


def test_a_months_length_is_the_calendars() -> None:
    for year in range(1970, 2101):  # leap years, 2000 (one) and 2100 (not one) included
        for number in range(1, 13):
            start = datetime(year, number, 1, tzinfo=UTC)
            following = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)
            assert month_length(f"{year}-{number:02d}") == following - start, (year, number)


@pytest.mark.parametrize("month", ["2026-13", "2026-00", "2026", "twelve"])
def test_a_month_that_is_none_is_refused(month: str) -> None:
    with pytest.raises(ValueError, match=r"month must be 1-12|invalid literal for int"):
        month_length(month)


def test_a_report_across_months_is_shared_by_its_time_in_each_and_adds_up() -> None:
    costs: MonthlyCosts = {}
    # 17 days of October, 14 of November.
    add_cost(
        costs, _cost(datetime(2026, 10, 15, tzinfo=UTC), datetime(2026, 11, 15, tzinfo=UTC), "100")
    )
    october, november = costs["2026-10"]["EUR"], costs["2026-11"]["EUR"]
    assert october.amount == Decimal("54.84")  # 100 * 17/31, to the cent
    assert november.amount == Decimal("45.16")  # the rest: the shares add up to the report
    assert not reported_in_full(october)
    assert not reported_in_full(november)


def test_reports_for_the_same_month_add_up_and_cover_it_together() -> None:
    costs: MonthlyCosts = {}
    add_cost(costs, _cost(NOV, NOV + timedelta(days=15), "400"))
    add_cost(costs, _cost(NOV + timedelta(days=15), DEC, "350.50"))
    add_cost(costs, _cost(NOV, DEC, "100", "USD"))  # another currency is kept apart
    november = costs["2026-11"]
    assert november["EUR"].amount == Decimal("750.50")
    assert reported_in_full(november["EUR"])
    assert [(p.start, p.end) for p in november["EUR"].covered] == [(NOV, DEC)]
    assert november["USD"].amount == Decimal("100")


def _budget(amount: str = "1000", currency: str = "EUR") -> Budget:
    return Budget(amount=Decimal(amount), currency=currency)


JUDGED = datetime(2026, 12, 6, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("reports", "message"),
    [
        (
            [],
            "No inference cost was reported for November 2026, the last complete month; report"
            " it to show it is within the monthly budget of 1,000.00 EUR.",
        ),
        (
            [(NOV, DEC, "200", "USD")],
            "Inference cost for November 2026 was reported in USD only;"
            " the monthly budget is 1,000.00 EUR, so report the month's cost in EUR.",
        ),
        (
            [(NOV, NOV + timedelta(days=12), "480", "EUR")],
            "Inference cost for November 2026 was"
            " reported for only 12.0 of its 30 days (480.00 EUR so far); report the whole month to"
            " compare it with the monthly budget of 1,000.00 EUR.",
        ),
        (
            [(NOV, DEC, "1234.50", "EUR")],
            "Inference cost for November 2026 was 1,234.50 EUR, over"
            " the monthly budget of 1,000.00 EUR by 234.50 EUR.",
        ),
        # A feed whose periods end a second before midnight still reports the whole month.
        ([(NOV, DEC - timedelta(seconds=1), "999.99", "EUR")], None),
        ([(NOV, DEC, "1000", "EUR")], None),
        # Only the last complete month counts: October over budget, December's so far too.
        (
            [
                (NOV - timedelta(days=31), NOV, "5000", "EUR"),
                (NOV, DEC, "900", "EUR"),
                (DEC, JUDGED, "5000", "EUR"),
            ],
            None,
        ),
    ],
)
def test_the_last_complete_month_against_the_budget(
    reports: list[tuple[datetime, datetime, str, str]], message: str | None
) -> None:
    costs: MonthlyCosts = {}
    for start, end, amount, currency in reports:
        add_cost(costs, _cost(start, end, amount, currency))
    assert within_budget_problem(costs, _budget(), JUDGED) == message


def test_without_a_budget_the_message_says_where_to_state_one() -> None:
    message = within_budget_problem({}, None, JUDGED)
    assert message is not None
    assert "cost_tracking with a monthly budget" in message


def test_a_new_month_asks_for_its_own_cost() -> None:
    costs: MonthlyCosts = {}
    add_cost(costs, _cost(NOV, DEC, "300"))
    assert within_budget_problem(costs, _budget(), JUDGED) is None
    in_january = datetime(2027, 1, 2, tzinfo=UTC)
    message = within_budget_problem(costs, _budget(), in_january)
    assert message is not None
    assert "December 2026" in message


def test_a_use_case_over_budget_cannot_scale_and_one_within_it_can(memory_app: Stagegate) -> None:
    journey = Journey(memory_app).register().reach(Stage.MEASUREMENT)
    journey.satisfy_gate(Stage.SCALE, except_=R.COST_WITHIN_BUDGET)
    start, end = last_month(journey.now)
    journey.issue(
        c.RecordInferenceCost, period_start=start, period_end=end, amount="1500", currency="EUR"
    )

    with pytest.raises(GateBlocked) as refused:
        journey.advance(Stage.SCALE)
    [requirement] = refused.value.unmet
    assert requirement.code is R.COST_WITHIN_BUDGET
    assert "1,500.00 EUR, over the monthly budget of 1,000.00 EUR by 500.00 EUR" in (
        requirement.message
    )

    journey.satisfy(R.COST_WITHIN_BUDGET)  # the next month, within budget
    assert journey.advance(Stage.SCALE).state.stage is Stage.SCALE
