"""``COST_WITHIN_BUDGET`` on the read side: the summaries' gate agrees with ``useCase(key).gate``
when a new month begins, though no event was recorded; the backlog and filters follow."""

from __future__ import annotations

from datetime import datetime, timedelta

from domain import commands as c
from domain.clock import clock_set_to
from domain.gates import RequirementCode as R
from domain.values import Stage
from infra.bootstrap import Services
from projections.readmodels import UseCaseFilter
from tests.builders import Journey, last_month, next_month


def _summary_blocked_by_cost(services: Services, key: str, at: datetime) -> bool:
    """Whether the summaries list the use case among those COST_WITHIN_BUDGET blocks."""
    with clock_set_to(lambda: at):
        page = services.read_models.use_cases(
            UseCaseFilter(unmet_code=R.COST_WITHIN_BUDGET), 100, None
        )
    return key in {r.state.key for r in page.items}


def _unmet_in_gate(services: Services, key: str, at: datetime) -> set[str]:
    with clock_set_to(lambda: at):
        return {r.code.value for r in services.app.gate(services.app.use_case(key)).unmet}


def test_the_summaries_are_judged_again_when_a_month_begins(services: Services) -> None:
    journey = Journey(services.app).register().reach(Stage.MEASUREMENT)
    journey.satisfy_gate(Stage.SCALE, except_=R.COST_WITHIN_BUDGET)
    journey.satisfy(R.COST_WITHIN_BUDGET)
    # Within the month: the summary, written with the events, has nothing unmet.
    assert _unmet_in_gate(services, journey.key, journey.now) == set()
    assert not _summary_blocked_by_cost(services, journey.key, journey.now)

    # A month later, with no event in between: that month's cost is not reported.
    later = next_month(journey.now) + timedelta(days=1)
    assert _unmet_in_gate(services, journey.key, later) == {R.COST_WITHIN_BUDGET.value}
    assert _summary_blocked_by_cost(services, journey.key, later)

    # Reported, within budget: the summary agrees again.
    start, end = last_month(later)
    journey.now = later
    journey.issue(
        c.RecordInferenceCost, period_start=start, period_end=end, amount="200", currency="EUR"
    )
    assert not _summary_blocked_by_cost(services, journey.key, journey.now)


def test_a_rebuild_judges_the_gate_as_the_live_summaries_do(services: Services) -> None:
    journey = Journey(services.app).register().reach(Stage.MEASUREMENT)
    journey.satisfy_gate(Stage.SCALE, except_=R.COST_WITHIN_BUDGET)
    start, end = last_month(journey.now)
    journey.issue(
        c.RecordInferenceCost, period_start=start, period_end=end, amount="1800", currency="EUR"
    )
    assert _unmet_in_gate(services, journey.key, journey.now) == {R.COST_WITHIN_BUDGET.value}
    assert _summary_blocked_by_cost(services, journey.key, journey.now)
    with clock_set_to(lambda: journey.now):
        services.read_models.rebuild()
    assert _summary_blocked_by_cost(services, journey.key, journey.now)
