"""The read side of value over GraphQL: cost by month against the budget, return on investment
flagged unproven until IMPROVEMENT_SHOWN holds, the adoption trend as a connection; and a page
of use cases asking for all of it costs the same queries whatever its size (no N+1)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from domain import commands as c
from domain.clock import clock_set_to
from domain.gates import RequirementCode as R
from domain.values import Stage
from infra import database
from infra.bootstrap import Services
from tests.builders import BUSINESS_ACTOR, Journey, last_month
from tests.e2e.conftest import Api

VALUE = """
monthlyBudget { amount currency }
costByMonth {
  month currency amount daysReported daysInMonth reportedInFull budget withinBudget
}
returnOnInvestment {
  currency statedAnnualValue annualisedInferenceCost monthsCounted valueToCost proven
}
"""


def _in_measurement_with_value(services: Services) -> Journey:
    journey = Journey(services.app).register().reach(Stage.MEASUREMENT)
    journey.issue(
        c.StateValue,
        actor=BUSINESS_ACTOR,
        statement="Invoices routed in 5 minutes instead of 12.",
        estimated_annual_value="120000",
        currency="EUR",
    )
    return journey


def test_cost_by_month_against_the_budget_and_the_return_it_buys(
    services: Services, api: Api
) -> None:
    journey = _in_measurement_with_value(services)
    start, end = last_month(journey.now)
    before_start, _ = last_month(start)
    # The month before in part (its last 10 days), the last month in full, and a report in
    # another currency than the budget's.
    journey.issue(
        c.RecordInferenceCost,
        period_start=start - timedelta(days=10),
        period_end=start,
        amount="250",
        currency="EUR",
    )
    journey.issue(
        c.RecordInferenceCost, period_start=start, period_end=end, amount="800", currency="EUR"
    )
    journey.issue(
        c.RecordInferenceCost, period_start=start, period_end=end, amount="90", currency="USD"
    )

    with clock_set_to(lambda: journey.now):
        use_case = api.use_case(journey.key, VALUE)
    assert use_case is not None
    assert use_case["monthlyBudget"] == {"amount": "1000", "currency": "EUR"}
    by_month = {(m["month"], m["currency"]): m for m in use_case["costByMonth"]}
    earlier = by_month[(f"{before_start:%Y-%m}", "EUR")]
    assert Decimal(earlier["amount"]) == Decimal("250")
    assert earlier["daysReported"] == 10
    assert (earlier["reportedInFull"], earlier["withinBudget"]) == (False, None)
    last = by_month[(f"{start:%Y-%m}", "EUR")]
    assert Decimal(last["amount"]) == Decimal("800")
    assert last["daysInMonth"] == (end - start).days == last["daysReported"]
    assert (last["reportedInFull"], last["budget"], last["withinBudget"]) == (True, "1000", True)
    other = by_month[(f"{start:%Y-%m}", "USD")]
    assert (other["budget"], other["withinBudget"]) == (None, None)

    latest = api.use_case(journey.key, "costByMonth(last: 1) { month currency }")
    assert latest is not None
    assert latest["costByMonth"] == [
        {"month": f"{start:%Y-%m}", "currency": "EUR"},
        {"month": f"{start:%Y-%m}", "currency": "USD"},
    ]  # the latest month with a cost, in each of its currencies

    # One complete month of 800 EUR: 9,600 a year against the 120,000 stated, unproven: the
    # after-state is not measured yet.
    roi = use_case["returnOnInvestment"]
    assert roi["currency"] == "EUR"
    assert Decimal(roi["statedAnnualValue"]) == Decimal("120000")
    assert Decimal(roi["annualisedInferenceCost"]) == Decimal("9600")
    assert roi["monthsCounted"] == 1
    assert roi["valueToCost"] == pytest.approx(12.5)
    assert roi["proven"] is False

    journey.satisfy(R.AFTER_STATE_MEASURED)  # better than the baseline, inside the window
    with clock_set_to(lambda: journey.now):
        proven = api.use_case(journey.key, "returnOnInvestment { proven }")
    assert proven is not None
    assert proven["returnOnInvestment"] == {"proven": True}


ADOPTION = """
query Adoption($key: String!, $first: Int, $after: String, $last: Int) {
  useCase(key: $key) {
    adoption(first: $first, after: $after, last: $last) {
      edges { cursor node { activeUsers targetUsers rate measuredAt } }
      pageInfo { hasNextPage hasPreviousPage endCursor }
    }
    version
  }
}
"""


def _adoption(api: Api, key: str, **arguments: Any) -> dict[str, Any]:
    body = api.gql(ADOPTION, {"key": key, **arguments})
    assert "errors" not in body, body
    connection: dict[str, Any] = body["data"]["useCase"]["adoption"]
    return connection


def test_the_adoption_trend_is_a_connection_in_the_order_measured(
    services: Services, api: Api
) -> None:
    journey = Journey(services.app).register()
    base = journey.now
    # Recorded out of order: a reading from two weeks back is sent last.
    for active, days in ((10, 21), (25, 7), (31, 0), (18, 14)):
        journey.issue(
            c.RecordAdoption,
            active_users=active,
            target_users=50,
            measured_at=base - timedelta(days=days),
        )

    first = _adoption(api, journey.key, first=3)
    assert [e["node"]["activeUsers"] for e in first["edges"]] == [10, 18, 25]
    assert first["edges"][0]["node"]["rate"] == pytest.approx(0.2)
    assert first["pageInfo"]["hasNextPage"] is True
    rest = _adoption(api, journey.key, first=3, after=first["pageInfo"]["endCursor"])
    assert [e["node"]["activeUsers"] for e in rest["edges"]] == [31]
    assert rest["pageInfo"]["hasNextPage"] is False

    newest = _adoption(api, journey.key, last=2)
    assert [e["node"]["activeUsers"] for e in newest["edges"]] == [25, 31]
    assert newest["pageInfo"]["hasPreviousPage"] is True

    # As the use case stood before the last reading was recorded: without it.
    as_of = api.gql(
        """query($key: String!) { useCase(key: $key) { asOf(version: 4) {
             adoption { edges { node { activeUsers } } } } } }""",
        {"key": journey.key},
        api.tokens.auditor,
    )
    edges = as_of["data"]["useCase"]["asOf"]["adoption"]["edges"]
    assert [e["node"]["activeUsers"] for e in edges] == [10, 25, 31]


# --- no N+1 ---------------------------------------------------------------------------------

PAGE = (
    """
query Page($first: Int!) {
  useCases(first: $first) {
    edges { node {
      key stage
      gate { unmet { code message } }
      improvements { baseline { metric } afterState { value } change relativeChange counts }
      latestAdoption { activeUsers }
      adoption(last: 6) { edges { node { activeUsers rate measuredAt } } }
"""
    + VALUE
    + """
    } }
  }
}
"""
)


@contextlib.contextmanager
def _statements_counted() -> Iterator[list[str]]:
    """Every SQL statement sent to either store while the block runs, in any thread."""
    sent: list[str] = []
    originals = {
        psycopg.Cursor: psycopg.Cursor.execute,
        database.SQLiteCursor: database.SQLiteCursor.execute,
    }

    def counting(original: Any) -> Any:
        def execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            sent.append(str(query))
            return original(self, query, *args, **kwargs)

        return execute

    for cls, original in originals.items():
        cls.execute = counting(original)  # type: ignore[method-assign]
    try:
        yield sent
    finally:
        for cls, original in originals.items():
            cls.execute = original  # type: ignore[method-assign]


def test_a_page_of_use_cases_with_all_of_value_costs_the_same_queries_at_5_and_50(
    services: Services, api: Api
) -> None:
    for index in range(50):
        journey = (
            _in_measurement_with_value(services) if index < 3 else Journey(services.app).register()
        )
        start, end = last_month(journey.now)
        journey.issue(
            c.RecordInferenceCost, period_start=start, period_end=end, amount="700", currency="EUR"
        )
        for days in (3, 2, 1):
            journey.issue(
                c.RecordAdoption,
                active_users=10 + index,
                target_users=100,
                measured_at=journey.now - timedelta(days=days),
            )
    api.gql(PAGE, {"first": 1})  # the policy and the process's first-use work, once

    counts = {}
    for size in (5, 50):
        with _statements_counted() as sent:
            body = api.gql(PAGE, {"first": size})
        assert "errors" not in body, body["errors"]
        edges = body["data"]["useCases"]["edges"]
        assert len(edges) == size
        assert all(len(e["node"]["adoption"]["edges"]) == 3 for e in edges)
        assert all(e["node"]["costByMonth"] for e in edges)
        counts[size] = len(sent)
    assert counts[5] == counts[50], counts
    # The token, the page, the policy's version (is the cached policy current?) and the
    # adoption series of every use case of the page, in one query.
    assert counts[50] == 4, counts
    with_value = [
        e["node"] for e in body["data"]["useCases"]["edges"] if e["node"]["returnOnInvestment"]
    ]
    assert len(with_value) == 3
