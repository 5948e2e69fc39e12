"""The read side over real HTTP, on SQLite and PostgreSQL: ``useCases`` (filters, cursor
pagination, ``totalCount``), ``backlog``, ``portfolio``, ``UseCase.history`` and ``asOf``,
read-your-writes, and who may read what.

Portfolios are written in-process through the application (``tests.builders.Journey``, each
use case on its own server clock so stage times are known to the minute), then the read models
are brought up to date the way ``stagegate serve``'s projection thread does
(``read_models.catch_up()``), and everything is read over HTTP. Where a test is about writes
showing up in reads, the writes are GraphQL mutations too.

Expected answers are worked out by hand from how each portfolio was built, never read back
from the system under test.
"""

from __future__ import annotations

import base64
import statistics
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from domain import commands as c
from domain.application import Stagegate
from domain.clock import clock_set_to
from domain.values import Role, Stage
from infra.bootstrap import Services
from tests.builders import (
    AI_COLLEAGUE,
    APPROVER,
    BASELINE_METRIC,
    BUSINESS,
    BUSINESS_ACTOR,
    EDITOR,
    MONITOR,
    TECH,
    Journey,
)
from tests.e2e.conftest import RESULT_FRAGMENT, Api

CARLA = {"id": "carla.claims@example.com", "name": "Carla Claims", "team": "Claims"}
MAX = {"id": "max.monitor@example.com", "name": "Max Monitor", "team": "ML Operations"}
OLGA = {"id": "olga.other-approver@example.com", "name": "Olga Other", "team": "Governance"}
NOBODY = "nobody@example.com"


# --- helpers ------------------------------------------------------------------------------


class TrackedJourney(Journey):
    """A ``Journey`` that starts at a given server time and remembers when it entered each
    stage (for the expected time-in-stage figures)."""

    def __init__(
        self, app: Stagegate, key: str, registered_at: datetime, business_unit: str = "Finance"
    ) -> None:
        super().__init__(app, key)
        self.now = registered_at - timedelta(minutes=1)
        self.issue(c.RegisterUseCase, title=f"Use case {key}", business_unit=business_unit)
        assert self.now == registered_at
        self.entries: list[tuple[str, datetime]] = [("proposed", self.now)]

    def advance(self, to: Stage | None = None) -> Any:
        use_case = super().advance(to)
        self.entries.append((use_case.state.stage.value, self.now))
        return use_case

    def move_to(self, stage: Stage, at: datetime | None = None) -> TrackedJourney:
        """Satisfy each gate on the way and advance; the last move recorded at ``at``."""
        while self.use_case.state.stage.rank < stage.rank:
            target = self.use_case.state.stage.next
            assert target is not None
            self.satisfy_gate(target)
            if target is stage and at is not None:
                assert at > self.now, f"{self.key}: cannot enter {stage} back in time"
                self.now = at - timedelta(minutes=1)
            self.advance(target)
        if at is not None:
            assert self.now == at
        return self

    def retire(self, at: datetime) -> None:
        assert at > self.now
        self.now = at - timedelta(minutes=1)
        self.issue(c.Retire, reason="No longer needed.")
        self.entries.append(("retired", self.now))

    def score(self, leverage: int, feasibility: int, readiness: int) -> None:
        self.issue(
            c.ScorePriority,
            leverage={"score": leverage, "rationale": "Volume and cost of errors."},
            feasibility={"score": feasibility, "rationale": "Data access."},
            readiness={"score": readiness, "rationale": "Owner commitment."},
        )


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


def data_of(body: dict[str, Any]) -> dict[str, Any]:
    assert "errors" not in body, body["errors"]
    data: dict[str, Any] = body["data"]
    return data


def error_messages(body: dict[str, Any]) -> list[str]:
    assert body.get("errors"), f"expected a GraphQL error, got {body}"
    return [e["message"] for e in body["errors"]]


def iso(moment: datetime) -> str:
    return moment.isoformat()


def parse(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def admin_token(services: Services) -> str:
    return services.tokens.issue("admin", Role.ADMIN).secret_token


USE_CASES = """
query List($filter: UseCaseFilterInput, $first: Int!, $after: String) {
  useCases(filter: $filter, first: $first, after: $after) {
    totalCount
    edges { cursor node { key stage version } }
    pageInfo { hasNextPage endCursor }
  }
}
"""

BACKLOG = """
query Backlog($first: Int!, $after: String) {
  backlog(first: $first, after: $after) {
    edges { cursor rank node { key stage priority { leverage { score } } } }
    pageInfo { hasNextPage endCursor }
  }
}
"""

PORTFOLIO = """
query Portfolio($days: Int) {
  portfolio(stuckAfterDays: $days) {
    stages { stage count averageDaysInStage }
    stuckPilots stuckAfterDays deployed deployedWithMeasuredValue measuredValueShare
    valueAgainstCost {
      currency estimatedAnnualValue annualInferenceCost
      proven { estimatedAnnualValue annualInferenceCost }
      unproven { estimatedAnnualValue annualInferenceCost }
    }
    funnel { stage reached medianDaysInStage }
  }
}
"""

HISTORY = """
query History($key: String!, $first: Int, $after: String, $last: Int, $before: String) {
  useCase(key: $key) {
    history(first: $first, after: $after, last: $last, before: $before) {
      edges {
        cursor
        node {
          version type recordedAt businessTime actorId actorRole channel reason
          correlationId source deliveryId corrects payload
        }
      }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    }
  }
}
"""


def list_keys(
    api: Api, filter: dict[str, Any] | None = None, token: str | None = None
) -> tuple[list[str], int]:
    """Every key ``useCases(filter)`` lists (one page of 100) and its ``totalCount``."""
    body = api.gql(USE_CASES, {"filter": filter, "first": 100}, token)
    connection = data_of(body)["useCases"]
    assert connection["pageInfo"]["hasNextPage"] is False
    return [e["node"]["key"] for e in connection["edges"]], connection["totalCount"]


def walk(
    api: Api, first: int, filter: dict[str, Any] | None = None
) -> tuple[list[list[str]], list[int]]:
    """Every page of ``useCases`` of size ``first`` following ``endCursor``, checking each
    page's ``pageInfo``; the keys per page and the ``totalCount`` each page reported."""
    pages: list[list[str]] = []
    totals: list[int] = []
    after = None
    while True:
        body = api.gql(USE_CASES, {"filter": filter, "first": first, "after": after})
        connection = data_of(body)["useCases"]
        edges, info = connection["edges"], connection["pageInfo"]
        pages.append([e["node"]["key"] for e in edges])
        totals.append(connection["totalCount"])
        assert len(edges) <= first
        if edges:
            assert info["endCursor"] == edges[-1]["cursor"], "endCursor is not the last edge's"
        else:
            assert info["endCursor"] is None
        if not info["hasNextPage"]:
            return pages, totals
        assert len(edges) == first, "a page before the last one was short"
        after = info["endCursor"]
        assert len(pages) <= 100, "pagination does not end"


def history_page(api: Api, key: str, token: str | None = None, **arguments: Any) -> Any:
    body = api.gql(HISTORY, {"key": key, **arguments}, token)
    return data_of(body)["useCase"]["history"]


# --- useCases: filters --------------------------------------------------------------------


@pytest.fixture
def filter_portfolio(services: Services) -> datetime:
    """Eight use cases (keys a..h) whose stages, units, owners, gates and stage times are
    known; returns the instant they were built relative to."""
    app = services.app
    now = datetime.now(UTC)

    def ago(days: float) -> datetime:
        return now - timedelta(days=days)

    # a: Finance, proposed for a day, nothing recorded.
    TrackedJourney(app, "a-proposed-fin", ago(1))
    # b: Finance, in pilot for 41 days (technical owner TECH).
    TrackedJourney(app, "b-pilot-fin", ago(42)).move_to(Stage.PILOT, at=ago(41))
    # c: Claims, in pilot for 2 days.
    TrackedJourney(app, "c-pilot-claims", ago(3), "Claims").move_to(Stage.PILOT, at=ago(2))
    # d: Claims, in acceptance for 15 days; business owner Carla, approver Olga.
    d = TrackedJourney(app, "d-acceptance-claims", ago(16), "Claims")
    d.move_to(Stage.ACCEPTANCE, at=ago(15))
    d.issue(c.AssignOwner, role="business", person=CARLA)
    d.issue(
        c.DefineAcceptanceCriteria,
        criteria=[{"metric": "accuracy", "comparator": "gte", "threshold": 0.9}],
        approver=OLGA,
    )
    # e: HR, in deployment for 20 days, not deployed; monitoring owner Max.
    e = TrackedJourney(app, "e-deployment-hr", ago(21), "HR")
    e.move_to(Stage.DEPLOYMENT, at=ago(20))
    e.issue(c.AssignOwner, role="monitoring", person=MAX)
    # f: Finance, in scale for months (never "stuck").
    TrackedJourney(app, "f-scale-fin", ago(300)).move_to(Stage.SCALE)
    # g: HR, retired from pilot 200 days ago.
    g = TrackedJourney(app, "g-retired-hr", ago(250), "HR")
    g.move_to(Stage.PILOT, at=ago(249))
    g.retire(at=ago(200))
    # h: Operations, proposed for 50 days, technical owner Alan, not scored.
    h = TrackedJourney(app, "h-proposed-ops", ago(50), "Operations")
    h.issue(c.AssignOwner, role="technical", person=AI_COLLEAGUE)
    services.read_models.catch_up()
    return now


ALL = [
    "a-proposed-fin",
    "b-pilot-fin",
    "c-pilot-claims",
    "d-acceptance-claims",
    "e-deployment-hr",
    "f-scale-fin",
    "g-retired-hr",
    "h-proposed-ops",
]
A, B, C, D, E, F, G, H = ALL

FILTERS: list[tuple[str, dict[str, Any], list[str]]] = [
    ("no filter", {}, ALL),
    ("pilot", {"stages": ["PILOT"]}, [B, C]),
    ("pilot or acceptance", {"stages": ["PILOT", "ACCEPTANCE"]}, [B, C, D]),
    ("scale or retired", {"stages": ["SCALE", "RETIRED"]}, [F, G]),
    ("measurement", {"stages": ["MEASUREMENT"]}, []),
    ("Finance", {"businessUnit": "Finance"}, [A, B, F]),
    ("Claims", {"businessUnit": "Claims"}, [C, D]),
    ("unknown unit", {"businessUnit": "Legal"}, []),
    ("business owner Carla", {"owner": CARLA["id"]}, [D]),
    ("business owner Bob", {"owner": BUSINESS["id"]}, [E, F]),
    ("technical owner Alan", {"owner": AI_COLLEAGUE["id"]}, [H]),
    ("technical owner Tina", {"owner": TECH["id"]}, [B, C, D, E, F, G]),
    ("monitoring owner Max", {"owner": MAX["id"]}, [E]),
    ("monitoring owner Mo", {"owner": MONITOR["id"]}, [F]),
    ("approver Olga", {"owner": OLGA["id"]}, [D]),
    ("approver Ada", {"owner": APPROVER["id"]}, [E, F]),
    ("owner nobody", {"owner": NOBODY}, []),
    ("unmet PRIORITY_SCORED", {"unmetCode": "PRIORITY_SCORED"}, [A, H]),
    ("unmet TECHNICAL_OWNER", {"unmetCode": "TECHNICAL_OWNER"}, [A]),
    ("unmet BUSINESS_OWNER", {"unmetCode": "BUSINESS_OWNER"}, [B, C]),
    ("unmet EVALUATION_PASSED", {"unmetCode": "EVALUATION_PASSED"}, [D]),
    ("unmet DEPLOYED", {"unmetCode": "DEPLOYED"}, [E]),
    ("unmet ADOPTION", {"unmetCode": "ADOPTION"}, []),
    ("stuck 30 days", {"stuckForDays": 30}, [B, H]),
    ("stuck 10 days", {"stuckForDays": 10}, [B, D, E, H]),
    ("stuck 0 days", {"stuckForDays": 0}, [A, B, C, D, E, H]),
    ("stuck 100 days", {"stuckForDays": 100}, []),
    ("pilot in Finance", {"stages": ["PILOT"], "businessUnit": "Finance"}, [B]),
    ("Tina's, stuck 10 days", {"owner": TECH["id"], "stuckForDays": 10}, [B, D, E]),
    ("unscored in Operations", {"unmetCode": "PRIORITY_SCORED", "businessUnit": "Operations"}, [H]),
    ("retired and stuck", {"stages": ["RETIRED"], "stuckForDays": 0}, []),
]


def test_use_cases_filters_list_exactly_the_matching_use_cases(
    api: Api, filter_portfolio: datetime
) -> None:
    for name, filter, expected in FILTERS:
        keys, total = list_keys(api, filter)
        assert keys == expected, f"{name}: listed {keys}, expected {expected}"
        assert total == len(expected), f"{name}: totalCount {total}, expected {len(expected)}"


def test_total_count_counts_every_match_not_the_page(api: Api, filter_portfolio: datetime) -> None:
    body = api.gql(USE_CASES, {"filter": {"owner": TECH["id"]}, "first": 2})
    connection = data_of(body)["useCases"]
    assert [e["node"]["key"] for e in connection["edges"]] == [B, C]
    assert connection["totalCount"] == 6
    assert connection["pageInfo"]["hasNextPage"] is True


# --- useCases: pagination -----------------------------------------------------------------

# Keys whose order is decided by hyphens and digits: key order is the keys' character order.
PAGINATION_KEYS = ["zeta-9", "alpha", "bb", "alpha-b", "beta", "alphab", "alpha-1"]


@pytest.fixture
def seven_use_cases(services: Services) -> list[str]:
    start = datetime.now(UTC) - timedelta(days=3)
    for i, key in enumerate(PAGINATION_KEYS):
        journey = TrackedJourney(
            services.app, key, start + timedelta(hours=i), "Odd" if i % 2 else "Even"
        )
        if i % 3 == 0:
            journey.move_to(Stage.PILOT)
    services.read_models.catch_up()
    return sorted(PAGINATION_KEYS)


def test_pagination_walks_every_use_case_once_in_key_order(
    api: Api, seven_use_cases: list[str]
) -> None:
    for first in (1, 2, 3, 6, 7, 8, 100):
        pages, totals = walk(api, first)
        walked = [key for page in pages for key in page]
        assert walked == seven_use_cases, f"pages of {first}: {pages}"
        assert set(totals) == {7}, f"pages of {first}: totalCount per page {totals}"
        assert len(pages) == -(-7 // first), f"pages of {first}: {pages}"


def test_pagination_with_a_filter(api: Api, seven_use_cases: list[str]) -> None:
    odd = [k for i, k in enumerate(PAGINATION_KEYS) if i % 2]
    pilots = [k for i, k in enumerate(PAGINATION_KEYS) if i % 3 == 0]
    pages, totals = walk(api, 2, {"businessUnit": "Odd"})
    assert [k for p in pages for k in p] == sorted(odd)
    assert set(totals) == {len(odd)}
    pages, totals = walk(api, 1, {"stages": ["PILOT"]})
    assert [k for p in pages for k in p] == sorted(pilots)
    assert set(totals) == {len(pilots)}


def test_past_the_last_page_is_empty(api: Api, seven_use_cases: list[str]) -> None:
    last = data_of(api.gql(USE_CASES, {"first": 7}))["useCases"]
    assert last["pageInfo"]["hasNextPage"] is False
    beyond = data_of(api.gql(USE_CASES, {"first": 7, "after": last["pageInfo"]["endCursor"]}))
    connection = beyond["useCases"]
    assert connection["edges"] == []
    assert connection["pageInfo"] == {"hasNextPage": False, "endCursor": None}
    assert connection["totalCount"] == 7


def test_a_cursor_stays_valid_when_use_cases_are_added_before_it(
    api: Api, seven_use_cases: list[str]
) -> None:
    """Keys, not offsets: a use case registered on an earlier page neither repeats nor hides
    one on the next."""
    first = data_of(api.gql(USE_CASES, {"first": 3}))["useCases"]
    seen = [e["node"]["key"] for e in first["edges"]]
    assert api.mutate("registerUseCase", {"key": "aaa-late", "title": "Late"})["__typename"] == (
        "UseCase"
    )
    rest = data_of(api.gql(USE_CASES, {"first": 100, "after": first["pageInfo"]["endCursor"]}))
    assert seen + [e["node"]["key"] for e in rest["useCases"]["edges"]] == seven_use_cases
    assert rest["useCases"]["totalCount"] == 8


# --- malformed cursors and page sizes ----------------------------------------------------

CONNECTIONS = {
    "useCases": "query Q($after: String, $first: Int!) "
    "{ useCases(first: $first, after: $after) { edges { cursor } } }",
    "backlog": "query Q($after: String, $first: Int!) "
    "{ backlog(first: $first, after: $after) { edges { cursor } } }",
    "history": "query Q($key: String!, $after: String, $first: Int!) "
    "{ useCase(key: $key) { history(first: $first, after: $after) { edges { cursor } } } }",
    "history backwards": "query Q($key: String!, $after: String, $first: Int!) "
    "{ useCase(key: $key) { history(last: $first, before: $after) { edges { cursor } } } }",
}
MALFORMED = {
    "not base64": "!!!",
    "bad padding": "abc",
    "not a number": b64("abc"),
}
"""Cursors no page ever gave out and that name no position: an error naming the cursor."""
NUMBERED = ("backlog", "history", "history backwards")
"""Connections whose cursors are positions (rank, version); a useCases cursor is a key, so any
text that decodes is a position between keys."""
OUT_OF_RANGE = {"negative": b64("-5"), "huge": b64("9" * 20)}
"""Numbers no page gave out: an error naming the cursor, or a page that makes sense."""


@pytest.fixture
def three_use_cases(services: Services) -> str:
    app = services.app
    for key in ("one", "two", "three"):
        journey = TrackedJourney(app, key, datetime.now(UTC) - timedelta(days=1))
        journey.score(3, 3, 3)
    services.read_models.catch_up()
    return "one"


@pytest.mark.parametrize("connection", sorted(CONNECTIONS))
def test_a_malformed_cursor_is_a_graphql_error_naming_the_cursor(
    api: Api, three_use_cases: str, connection: str
) -> None:
    problems = []
    for malformed, cursor in sorted(MALFORMED.items()):
        if connection == "useCases" and malformed == "not a number":
            continue  # a useCases cursor is a key: any decodable text is a position
        variables = {"key": three_use_cases, "after": cursor, "first": 2}
        body = api.gql(CONNECTIONS[connection], variables)
        messages = [e["message"] for e in body.get("errors") or []]
        if not any("cursor" in m.lower() for m in messages):
            problems.append(f"{malformed} cursor {cursor!r}: {messages or body['data']}")
    assert not problems, f"{connection}: " + "; ".join(problems)


@pytest.mark.parametrize("connection", NUMBERED)
def test_a_cursor_number_out_of_range_is_refused_or_harmless(
    api: Api, three_use_cases: str, connection: str
) -> None:
    """Not an internal error, and not ranks or versions that do not exist."""
    if connection == "backlog":
        query = CONNECTIONS[connection].replace("edges { cursor }", "edges { rank }")
    else:
        query = CONNECTIONS[connection].replace("edges { cursor }", "edges { node { version } }")
    problems = []
    for number, cursor in sorted(OUT_OF_RANGE.items()):
        body = api.gql(query, {"key": three_use_cases, "after": cursor, "first": 2})
        if body.get("errors"):
            messages = [e["message"] for e in body["errors"]]
            if not any("cursor" in m.lower() for m in messages):
                problems.append(f"{number} cursor {cursor!r}: {messages}")
        elif connection == "backlog":
            ranks = [e["rank"] for e in body["data"]["backlog"]["edges"]]
            if not all(1 <= r <= 3 for r in ranks):
                problems.append(f"{number} cursor {cursor!r}: ranks {ranks}")
        else:
            edges = body["data"]["useCase"]["history"]["edges"]
            versions = [e["node"]["version"] for e in edges]
            if not all(1 <= v <= 2 for v in versions):  # each use case has two events
                problems.append(f"{number} cursor {cursor!r}: versions {versions}")
    assert not problems, f"{connection}: " + "; ".join(problems)


PAGE_SIZE_QUERIES = [
    "{ useCases(first: SIZE) { totalCount } }",
    "{ backlog(first: SIZE) { edges { rank } } }",
    '{ useCase(key: "one") { history(first: SIZE) { edges { cursor } } } }',
    '{ useCase(key: "one") { history(last: SIZE) { edges { cursor } } } }',
]


def test_a_page_size_outside_1_to_100_is_a_graphql_error(api: Api, three_use_cases: str) -> None:
    for query in PAGE_SIZE_QUERIES:
        for size in (0, -1, 101):
            sent = query.replace("SIZE", str(size))
            messages = error_messages(api.gql(sent))
            assert any("between 1 and 100" in m and str(size) in m for m in messages), (
                sent,
                messages,
            )


def test_page_sizes_1_and_100_are_accepted(api: Api, three_use_cases: str) -> None:
    for size in (1, 100):
        connection = data_of(api.gql(USE_CASES, {"first": size}))["useCases"]
        assert len(connection["edges"]) == min(size, 3)


@pytest.mark.parametrize("days", [-1, 36_501, 999_999_999, 2**31 - 1])
def test_stuck_days_outside_0_to_36500_are_a_graphql_error(
    api: Api, three_use_cases: str, days: int
) -> None:
    # 999,999,999 days made the date arithmetic overflow: "Unexpected error." (issue 8).
    messages = error_messages(api.gql(USE_CASES, {"filter": {"stuckForDays": days}, "first": 5}))
    assert messages == [f"stuckForDays must be between 0 and 36500, not {days}"]
    messages = error_messages(api.gql(PORTFOLIO, {"days": days}))
    assert messages == [f"stuckAfterDays must be between 0 and 36500, not {days}"]


def test_a_century_of_stuck_days_is_answered(api: Api, three_use_cases: str) -> None:
    connection = data_of(api.gql(USE_CASES, {"filter": {"stuckForDays": 36_500}, "first": 5}))
    assert connection["useCases"]["edges"] == []
    assert data_of(api.gql(PORTFOLIO, {"days": 36_500}))["portfolio"]["stuckPilots"] == []


# --- backlog ------------------------------------------------------------------------------

# (key, leverage, feasibility, readiness); documented order: the weakest score first, then
# readiness, then the total, then the key; unscored last.
SCORED = [
    ("uc-a", 4, 4, 4),  # strong on all three
    ("uc-b", 5, 5, 2),  # strong on leverage and feasibility, weak readiness
    ("uc-c", 5, 5, 1),  # the same, weaker still
    ("uc-e", 5, 4, 4),
    ("uc-f", 4, 5, 4),  # ties with uc-e on every score: the key decides
    ("uc-g", 5, 5, 3),
    ("uc-h", 3, 3, 5),
    ("uc-i", 1, 1, 5),
]
BACKLOG_ORDER = ["uc-e", "uc-f", "uc-a", "uc-h", "uc-g", "uc-b", "uc-i", "uc-c", "uc-u1", "uc-u2"]


@pytest.fixture
def backlog_portfolio(services: Services) -> None:
    app = services.app
    start = datetime.now(UTC) - timedelta(days=300)
    for i, (key, leverage, feasibility, readiness) in enumerate(SCORED):
        journey = TrackedJourney(app, key, start + timedelta(days=i))
        if key == "uc-a":
            journey.move_to(Stage.PILOT)  # any stage before scale is in the backlog
        if key == "uc-g":
            journey.move_to(Stage.MEASUREMENT)
        journey.score(leverage, feasibility, readiness)
    for key in ("uc-u2", "uc-u1"):
        TrackedJourney(app, key, start + timedelta(days=20))
    # Strongest of all, but in scale or retired: not in the backlog.
    in_scale = TrackedJourney(app, "uc-0-scale", start)
    in_scale.reach(Stage.SCALE)
    in_scale.score(5, 5, 5)
    retired = TrackedJourney(app, "uc-0-retired", start)
    retired.score(5, 5, 5)
    retired.retire(at=start + timedelta(days=1))
    services.read_models.catch_up()


def backlog_pages(api: Api, first: int) -> list[list[tuple[int, str]]]:
    pages, after = [], None
    while True:
        connection = data_of(api.gql(BACKLOG, {"first": first, "after": after}))["backlog"]
        edges, info = connection["edges"], connection["pageInfo"]
        pages.append([(e["rank"], e["node"]["key"]) for e in edges])
        if edges:
            assert info["endCursor"] == edges[-1]["cursor"]
        if not info["hasNextPage"]:
            return pages
        assert len(edges) == first
        after = info["endCursor"]
        assert len(pages) <= 100


def test_backlog_ranks_strong_on_all_three_above_weak_readiness(
    api: Api, backlog_portfolio: None
) -> None:
    [page] = backlog_pages(api, 100)
    keys = [key for _, key in page]
    rank = {key: r for r, key in page}
    # SPEC: strong on all three ranks above strong on leverage and feasibility but weak on
    # readiness, whatever its leverage (uc-b and uc-c have leverage 5, uc-a only 4).
    assert rank["uc-a"] < rank["uc-b"]
    assert rank["uc-a"] < rank["uc-c"]
    assert rank["uc-e"] < rank["uc-b"]
    assert rank["uc-f"] < rank["uc-c"]
    # The documented order, in full; unscored last; scale and retired left out.
    assert keys == BACKLOG_ORDER
    assert [r for r, _ in page] == list(range(1, len(BACKLOG_ORDER) + 1))


def test_backlog_ranks_run_on_across_pages(api: Api, backlog_portfolio: None) -> None:
    for first in (1, 3, 4, 10):
        pages = backlog_pages(api, first)
        flat = [entry for page in pages for entry in page]
        assert [key for _, key in flat] == BACKLOG_ORDER, f"pages of {first}: {pages}"
        assert [r for r, _ in flat] == list(range(1, len(BACKLOG_ORDER) + 1)), pages
        assert len(pages) == -(-len(BACKLOG_ORDER) // first), f"pages of {first}: {pages}"


# --- portfolio ----------------------------------------------------------------------------


@pytest.fixture
def money_portfolio(services: Services) -> dict[str, TrackedJourney]:
    """Ten use cases whose stage times, deployments, measurements, value and costs are known.

    Deployed (in production, not retired): measured-d1 (after-state 100 days after its first
    deployment), unmeasured-d2 (10 days after), scale-d3 (61 days after). retired-d4 was
    deployed but is retired; deploying-d5 is in deployment but never deployed.
    """
    app = services.app
    now = datetime.now(UTC)

    def ago(days: float) -> datetime:
        return now - timedelta(days=days)

    journeys = {}

    def journey(key: str, registered_days_ago: float) -> TrackedJourney:
        journeys[key] = TrackedJourney(app, key, ago(registered_days_ago))
        return journeys[key]

    journey("pilot-long", 50).move_to(Stage.PILOT, at=ago(40))
    journey("pilot-mid", 36).move_to(Stage.PILOT, at=ago(35))
    journey("pilot-new", 11).move_to(Stage.PILOT, at=ago(10))
    journey("proposed-b", 20)
    acceptance = journey("acceptance-c", 30)
    acceptance.move_to(Stage.PILOT, at=ago(25))
    acceptance.move_to(Stage.ACCEPTANCE, at=ago(5))

    def measure(j: TrackedJourney, days_after_deployment: int) -> None:
        j.now = j.deployed_at + timedelta(days=days_after_deployment)
        j.issue(c.RecordMeasurement, metric=BASELINE_METRIC, value=5.0, measured_at=j.now)

    def value(j: TrackedJourney, amount: str, currency: str) -> None:
        j.issue(
            c.StateValue,
            actor=BUSINESS_ACTOR,
            statement="Invoices routed in 5 minutes instead of 12.",
            estimated_annual_value=amount,
            currency=currency,
        )

    def cost(j: TrackedJourney, ended_days_ago: int, amount: str, currency: str) -> None:
        j.now = max(j.now, ago(2))
        j.issue(
            c.RecordInferenceCost,
            period_start=ago(ended_days_ago + 30),
            period_end=ago(ended_days_ago),
            amount=amount,
            currency=currency,
        )

    d1 = journey("measured-d1", 250).move_to(Stage.MEASUREMENT)
    measure(d1, 100)
    value(d1, "120000", "EUR")
    cost(d1, 30, "1000.00", "EUR")
    cost(d1, 400, "500", "EUR")  # ended more than a year ago: not in the annual cost
    d2 = journey("unmeasured-d2", 240).move_to(Stage.MEASUREMENT)
    measure(d2, 10)
    value(d2, "50000", "USD")
    cost(d2, 10, "200.50", "USD")
    d3 = journey("scale-d3", 230)
    d3.reach(Stage.SCALE)  # after-state measured 61 days after deployment
    value(d3, "80000", "EUR")
    cost(d3, 100, "300", "EUR")
    d4 = journey("retired-d4", 220).move_to(Stage.MEASUREMENT)
    value(d4, "999", "EUR")
    cost(d4, 5, "777", "EUR")
    d4.retire(at=max(d4.now, ago(100)) + timedelta(minutes=5))
    journey("deploying-d5", 210).move_to(Stage.DEPLOYMENT)
    services.read_models.catch_up()
    return journeys


def expected_days_in_stage(
    journeys: dict[str, TrackedJourney], now: datetime
) -> dict[str, float | None]:
    """Mean length of every stay in each stage, the ones still going counted up to ``now``."""
    stays: dict[str, list[float]] = {s.value: [] for s in Stage}
    for j in journeys.values():
        for i, (stage, entered) in enumerate(j.entries):
            left = j.entries[i + 1][1] if i + 1 < len(j.entries) else now
            stays[stage].append((left - entered) / timedelta(days=1))
    return {s: sum(d) / len(d) if d else None for s, d in stays.items()}


def test_portfolio_figures_on_a_known_portfolio(
    api: Api, services: Services, money_portfolio: dict[str, TrackedJourney]
) -> None:
    portfolio = data_of(api.gql(PORTFOLIO, {"days": None}))["portfolio"]
    now = datetime.now(UTC)

    counts = {s["stage"]: s["count"] for s in portfolio["stages"]}
    assert counts == {
        "PROPOSED": 1,
        "PILOT": 3,
        "ACCEPTANCE": 1,
        "DEPLOYMENT": 1,
        "MEASUREMENT": 2,
        "SCALE": 1,
        "RETIRED": 1,
    }
    assert [s["stage"] for s in portfolio["stages"]] == [s.name for s in Stage]
    expected_days = expected_days_in_stage(money_portfolio, now)
    for figures in portfolio["stages"]:
        expected = expected_days[figures["stage"].lower()]
        assert figures["averageDaysInStage"] == pytest.approx(expected, abs=2e-3), figures

    # Pilots with no transition for the policy's 30 days, longest stuck first.
    assert portfolio["stuckAfterDays"] == 30
    assert portfolio["stuckPilots"] == ["pilot-long", "pilot-mid"]

    assert portfolio["deployed"] == 3
    assert portfolio["deployedWithMeasuredValue"] == 2
    assert portfolio["measuredValueShare"] == pytest.approx(2 / 3)

    value = {
        v["currency"]: (Decimal(v["estimatedAnnualValue"]), Decimal(v["annualInferenceCost"]))
        for v in portfolio["valueAgainstCost"]
    }
    # EUR: d1's 1,000, d3's 300 and the 300 d3 reported for its last month to pass
    # COST_WITHIN_BUDGET on its way to scale; d1's report of over a year ago and retired d4's
    # are not counted.
    assert value == {
        "EUR": (Decimal("200000"), Decimal("1600")),
        "USD": (Decimal("50000"), Decimal("200.50")),
    }
    assert [v["currency"] for v in portfolio["valueAgainstCost"]] == ["EUR", "USD"]

    # Proven and unproven apart: d1 and d3 improved on their baselines inside the window;
    # d2's after-state was measured too soon, so its value is only stated.
    def split(part: str) -> dict[str, tuple[Decimal, Decimal]]:
        return {
            v["currency"]: (
                Decimal(v[part]["estimatedAnnualValue"]),
                Decimal(v[part]["annualInferenceCost"]),
            )
            for v in portfolio["valueAgainstCost"]
        }

    assert split("proven") == {
        "EUR": (Decimal("200000"), Decimal("1600")),
        "USD": (Decimal(0), Decimal(0)),
    }
    assert split("unproven") == {
        "EUR": (Decimal(0), Decimal(0)),
        "USD": (Decimal("50000"), Decimal("200.50")),
    }


def test_the_funnel_counts_pilots_onward_with_the_median_stay_of_each_stage(
    api: Api, services: Services, money_portfolio: dict[str, TrackedJourney]
) -> None:
    funnel = data_of(api.gql(PORTFOLIO, {"days": None}))["portfolio"]["funnel"]

    onward = ["pilot", "acceptance", "deployment", "measurement", "scale"]
    piloted = [j for j in money_portfolio.values() if "pilot" in {s for s, _ in j.entries}]
    completed: dict[str, list[float]] = {stage: [] for stage in onward}
    for j in money_portfolio.values():
        for (stage, entered), (_, left) in zip(j.entries, j.entries[1:], strict=False):
            if stage in completed:
                completed[stage].append((left - entered) / timedelta(days=1))
    assert [step["stage"] for step in funnel] == [stage.upper() for stage in onward]
    for step in funnel:
        stage = step["stage"].lower()
        assert step["reached"] == sum(stage in {s for s, _ in j.entries} for j in piloted)
        stays = completed[stage]
        if stays:
            assert step["medianDaysInStage"] == pytest.approx(statistics.median(stays), abs=2e-3)
        else:
            assert step["medianDaysInStage"] is None
    # The known portfolio: nine entered pilot (three still there, acceptance-c and d1-d5);
    # six reached acceptance, five deployment, four measurement (d4 then retired), one scale.
    assert [step["reached"] for step in funnel] == [9, 6, 5, 4, 1]


def test_portfolio_stuck_pilots_follow_the_argument_and_the_policy(
    api: Api, services: Services, money_portfolio: dict[str, TrackedJourney]
) -> None:
    def stuck(days: int | None) -> tuple[list[str], int]:
        portfolio = data_of(api.gql(PORTFOLIO, {"days": days}))["portfolio"]
        return portfolio["stuckPilots"], portfolio["stuckAfterDays"]

    assert stuck(38) == (["pilot-long"], 38)
    assert stuck(5) == (["pilot-long", "pilot-mid", "pilot-new"], 5)
    assert stuck(45) == ([], 45)
    policy = api.gql(
        'mutation { setPolicy(input: {stuckAfterDays: 8, reason: "Weekly review."}) '
        "{ __typename } }",
        token=admin_token(services),
    )
    assert data_of(policy)["setPolicy"]["__typename"] == "Policy"
    assert stuck(None) == (["pilot-long", "pilot-mid", "pilot-new"], 8)


def test_measured_value_is_judged_again_when_the_window_changes(
    api: Api, services: Services, money_portfolio: dict[str, TrackedJourney]
) -> None:
    """A 90-day window: scale-d3's after-state (61 days) no longer counts, measured-d1's
    (100 days) still does."""
    policy = api.gql(
        "mutation { setPolicy(input: {measurementWindowDays: 90}) { __typename } }",
        token=admin_token(services),
    )
    assert data_of(policy)["setPolicy"]["__typename"] == "Policy"
    portfolio = data_of(api.gql(PORTFOLIO, {"days": None}))["portfolio"]
    assert (portfolio["deployed"], portfolio["deployedWithMeasuredValue"]) == (3, 1)
    assert portfolio["measuredValueShare"] == pytest.approx(1 / 3)


# --- history ------------------------------------------------------------------------------


@pytest.fixture
def audited(api: Api) -> dict[str, Any]:
    """A use case written through GraphQL, each mutation at a known server time and with its
    own X-Correlation-ID; what was sent, per version."""
    key = "audited-use-case"
    start = datetime.now(UTC) - timedelta(days=30)
    t = api.tokens
    measured_at = start + timedelta(days=2)
    steps: list[tuple[str, dict[str, Any], str | None]] = [
        ("registerUseCase", {"title": "Audited", "businessUnit": "Finance"}, None),
        (
            "scorePriority",
            {
                "leverage": {"score": 4, "rationale": "r"},
                "feasibility": {"score": 4, "rationale": "r"},
                "readiness": {"score": 4, "rationale": "r"},
            },
            None,
        ),
        ("assignOwner", {"role": "TECHNICAL", "person": TECH}, None),
        ("advanceStage", {"to": "PILOT"}, None),
        ("assignOwner", {"role": "BUSINESS", "person": BUSINESS}, None),
        (
            "recordAdoption",
            {"activeUsers": 5, "targetUsers": 50, "measuredAt": iso(measured_at)},
            None,
        ),
        (
            "defineAcceptanceCriteria",
            {
                "criteria": [{"metric": "accuracy", "comparator": "GTE", "threshold": 0.9}],
                "approver": APPROVER,
            },
            None,
        ),
        (
            "registerCandidateVersion",
            {"version": {"label": "v1", "model": "m", "prompt": "p"}},
            None,
        ),
        (
            "recordEvaluation",
            {"version": "v1", "results": [{"name": "accuracy", "value": 0.95}]},
            None,
        ),
        ("signOffAcceptance", {"comment": "Meets the criteria."}, t.approver),
        ("stateValue", {"statement": "Saves ten minutes per invoice."}, t.business_owner),
        ("retire", {"reason": "No budget this year."}, None),
    ]
    sent = []
    for number, (name, fields, token) in enumerate(steps, start=1):
        recorded_at = start + timedelta(days=number)
        input_type = f"{name[0].upper()}{name[1:]}Input"
        query = (
            f"mutation Run($input: {input_type}!) {{ result: {name}(input: $input) "
            f"{{ ...Result }} }}\n{RESULT_FRAGMENT}"
        )
        with clock_set_to(lambda at=recorded_at: at):
            response = api.post_graphql(
                query,
                {"input": {"key": key, **fields}},
                token or t.editor,
                headers={"X-Correlation-ID": f"corr-{number}"},
            )
        result = data_of(response.json())["result"]
        assert result["__typename"] == "UseCase", (name, result)
        assert result["version"] == number
        assert response.headers["X-Correlation-ID"] == f"corr-{number}"
        sent.append({"name": name, "recorded_at": recorded_at, "token": token})
    return {"key": key, "sent": sent, "measured_at": measured_at}


def test_history_entries_say_who_when_why_through_what(api: Api, audited: dict[str, Any]) -> None:
    page = history_page(api, audited["key"], first=100)
    entries = [e["node"] for e in page["edges"]]
    assert [e["version"] for e in entries] == list(range(1, 13))
    assert page["pageInfo"]["hasNextPage"] is False
    t = api.tokens
    for entry, sent in zip(entries, audited["sent"], strict=True):
        what = f"v{entry['version']} ({sent['name']})"
        assert parse(entry["recordedAt"]) == sent["recorded_at"], what
        assert entry["channel"] == "GRAPHQL", what
        assert entry["correlationId"] == f"corr-{entry['version']}", what
        assert entry["source"] is None, what
        assert entry["deliveryId"] is None, what
        assert entry["corrects"] is None, what
        assert entry["payload"], what
        if sent["token"] == t.approver:
            assert (entry["actorId"], entry["actorRole"]) == (APPROVER["id"], "approver"), what
        elif sent["token"] == t.business_owner:
            assert (entry["actorId"], entry["actorRole"]) == (BUSINESS["id"], "editor"), what
        else:
            assert (entry["actorId"], entry["actorRole"]) == (EDITOR.id, "editor"), what
    types = [e["type"] for e in entries]
    assert types[0] == "Registered"
    assert types[3] == "StageAdvanced"
    assert types[5] == "AdoptionRecorded"
    assert types[-1] == "Retired"
    # Business time is when the fact happened, apart from when it was recorded.
    adoption = entries[5]
    assert parse(adoption["businessTime"]) == audited["measured_at"]
    assert parse(adoption["recordedAt"]) != audited["measured_at"]
    assert entries[0]["businessTime"] is None
    assert entries[-1]["reason"] == "No budget this year."
    assert entries[0]["reason"] is None


def test_history_pages_forward(api: Api, audited: dict[str, Any]) -> None:
    versions, after, pages = [], None, 0
    while True:
        page = history_page(api, audited["key"], first=5, after=after)
        edges = page["edges"]
        versions.append([e["node"]["version"] for e in edges])
        assert page["pageInfo"]["endCursor"] == edges[-1]["cursor"]
        pages += 1
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert versions == [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10], [11, 12]]
    exact = history_page(api, audited["key"], first=12)
    assert exact["pageInfo"]["hasNextPage"] is False
    assert len(exact["edges"]) == 12
    default = history_page(api, audited["key"])
    assert [e["node"]["version"] for e in default["edges"]] == list(range(1, 13))


def test_history_pages_backwards_from_the_newest(api: Api, audited: dict[str, Any]) -> None:
    """``last``/``before``: the newest entries, oldest first within a page; the next page
    back starts before the page's oldest entry. Relay page info: ``hasPreviousPage`` says
    older entries remain, ``hasNextPage`` that newer ones follow the page."""
    newest = history_page(api, audited["key"], last=5)
    assert [e["node"]["version"] for e in newest["edges"]] == [8, 9, 10, 11, 12]
    assert newest["pageInfo"]["hasPreviousPage"] is True
    assert newest["pageInfo"]["hasNextPage"] is False
    older = history_page(api, audited["key"], last=5, before=newest["pageInfo"]["startCursor"])
    assert [e["node"]["version"] for e in older["edges"]] == [3, 4, 5, 6, 7]
    assert older["pageInfo"]["hasPreviousPage"] is True
    assert older["pageInfo"]["hasNextPage"] is True
    oldest = history_page(api, audited["key"], last=5, before=older["pageInfo"]["startCursor"])
    assert [e["node"]["version"] for e in oldest["edges"]] == [1, 2]
    assert oldest["pageInfo"]["hasPreviousPage"] is False
    everything = history_page(api, audited["key"], last=12)
    assert [e["node"]["version"] for e in everything["edges"]] == list(range(1, 13))
    assert everything["pageInfo"]["hasPreviousPage"] is False


def test_history_backwards_page_info_lets_a_relay_client_continue(
    api: Api, audited: dict[str, Any]
) -> None:
    """A Relay client pages backwards with ``pageInfo { hasPreviousPage startCursor }``; the
    connection's page info must let it continue without overlap."""
    body = api.gql(
        "query H($key: String!) { useCase(key: $key) { history(last: 5) "
        "{ edges { cursor node { version } } pageInfo { hasPreviousPage startCursor } } } }",
        {"key": audited["key"]},
    )
    history = data_of(body)["useCase"]["history"]
    assert history["pageInfo"]["hasPreviousPage"] is True
    assert history["pageInfo"]["startCursor"] == history["edges"][0]["cursor"]


def test_history_first_and_last_together_is_an_error(api: Api, audited: dict[str, Any]) -> None:
    body = api.gql(HISTORY, {"key": audited["key"], "first": 2, "last": 2})
    assert any("not both" in m for m in error_messages(body))


def test_an_invalid_correlation_id_is_replaced_and_the_replacement_recorded(
    api: Api, audited: dict[str, Any]
) -> None:
    key = "invalid-correlation"
    query = (
        "mutation Run($input: RegisterUseCaseInput!) { result: registerUseCase(input: $input) "
        f"{{ ...Result }} }}\n{RESULT_FRAGMENT}"
    )
    response = api.post_graphql(
        query,
        {"input": {"key": key, "title": "Invalid correlation"}},
        api.tokens.editor,
        headers={"X-Correlation-ID": "not valid!"},
    )
    assert data_of(response.json())["result"]["__typename"] == "UseCase"
    given = response.headers["X-Correlation-ID"]
    assert given != "not valid!"
    [entry] = [e["node"] for e in history_page(api, key, first=5)["edges"]]
    assert entry["correlationId"] == given


# --- asOf ---------------------------------------------------------------------------------


def test_as_of_an_instant_before_registration_is_null(api: Api, audited: dict[str, Any]) -> None:
    registered = audited["sent"][0]["recorded_at"]
    query = (
        "query A($key: String!, $before: DateTime!, $at: DateTime!, $later: DateTime!) {"
        " useCase(key: $key) {"
        " before: asOf(at: $before) { version }"
        " at: asOf(at: $at) { version stage gate { unmet { code } } }"
        " later: asOf(at: $later) { version stage } } }"
    )
    answer = data_of(
        api.gql(
            query,
            {
                "key": audited["key"],
                "before": iso(registered - timedelta(seconds=1)),
                "at": iso(registered),
                "later": iso(audited["sent"][4]["recorded_at"] + timedelta(hours=1)),
            },
            api.tokens.auditor,
        )
    )["useCase"]
    assert answer["before"] is None
    assert answer["at"]["version"] == 1
    assert answer["at"]["stage"] == "PROPOSED"
    assert sorted(r["code"] for r in answer["at"]["gate"]["unmet"]) == [
        "PRIORITY_SCORED",
        "TECHNICAL_OWNER",
    ]
    assert answer["later"] == {"version": 5, "stage": "PILOT"}


AS_OF_ARGUMENTS = [
    ("", "exactly one"),
    ('version: 1, at: "2026-01-01T00:00:00Z"', "exactly one"),
    ('at: "2026-01-01T00:00:00"', "time zone"),
    ("version: 0", "between 1 and 12"),
    ("version: 13", "between 1 and 12"),
]


def test_as_of_arguments_are_checked(api: Api, audited: dict[str, Any]) -> None:
    for arguments, names in AS_OF_ARGUMENTS:
        call = f"asOf({arguments})" if arguments else "asOf"
        query = f'{{ useCase(key: "{audited["key"]}") {{ {call} {{ version }} }} }}'
        messages = error_messages(api.gql(query, None, api.tokens.auditor))
        assert any(names in m for m in messages), (arguments, messages)


# --- read-your-writes ---------------------------------------------------------------------


def test_a_mutation_is_visible_to_the_next_query(api: Api, services: Services) -> None:
    key = "fresh-write"
    unit = {"businessUnit": "Fresh"}
    registered = api.mutate("registerUseCase", {"key": key, "title": "Fresh", **unit})
    assert registered["__typename"] == "UseCase"
    assert list_keys(api, unit) == ([key], 1)

    api.mutate(
        "scorePriority",
        {
            "key": key,
            "leverage": {"score": 5, "rationale": "r"},
            "feasibility": {"score": 5, "rationale": "r"},
            "readiness": {"score": 2, "rationale": "r"},
        },
    )
    assert list_keys(api, {"unmetCode": "TECHNICAL_OWNER"}) == ([key], 1)
    api.mutate("assignOwner", {"key": key, "role": "TECHNICAL", "person": TECH})
    assert list_keys(api, {"unmetCode": "TECHNICAL_OWNER"}) == ([], 0)
    advanced = api.mutate("advanceStage", {"key": key})
    assert (advanced["__typename"], advanced["stage"]) == ("UseCase", "PILOT")
    assert list_keys(api, {"stages": ["PILOT"]}) == ([key], 1)
    newest = history_page(api, key, last=1)["edges"]
    assert [(e["node"]["version"], e["node"]["type"]) for e in newest] == [(4, "StageAdvanced")]
    [entry] = data_of(api.gql(BACKLOG, {"first": 5}))["backlog"]["edges"]
    assert (entry["rank"], entry["node"]["key"]) == (1, key)
    portfolio = data_of(api.gql(PORTFOLIO, {"days": None}))["portfolio"]
    assert {s["stage"]: s["count"] for s in portfolio["stages"]}["PILOT"] == 1

    # A policy change re-judges every gate at once: readiness 2 falls below a minimum of 3.
    other = "fresh-proposed"
    api.mutate("registerUseCase", {"key": other, "title": "Fresh too"})
    api.mutate(
        "scorePriority",
        {
            "key": other,
            "leverage": {"score": 5, "rationale": "r"},
            "feasibility": {"score": 5, "rationale": "r"},
            "readiness": {"score": 2, "rationale": "r"},
        },
    )
    assert list_keys(api, {"unmetCode": "PRIORITY_SCORED"}) == ([], 0)
    policy = api.gql(
        "mutation { setPolicy(input: {minPriorityScore: 3}) { __typename } }",
        token=admin_token(services),
    )
    assert data_of(policy)["setPolicy"]["__typename"] == "Policy"
    assert list_keys(api, {"unmetCode": "PRIORITY_SCORED"}) == ([other], 1)


# --- who may read what --------------------------------------------------------------------

LIST = "{ useCases(first: 5) { totalCount edges { node { key } } } }"
BACKLOG_QUERY = "{ backlog(first: 5) { edges { rank } } }"
PORTFOLIO_QUERY = "{ portfolio { deployed } }"


def use_case_query(selection: str) -> str:
    return f'{{ useCase(key: "audited-use-case") {{ key {selection} }} }}'


HISTORY_QUERY = use_case_query("history(first: 3) { edges { node { version } } }")
AS_OF_QUERY = use_case_query("asOf(version: 1) { version }")


def test_a_viewer_lists_but_does_not_read_history_or_past_states(
    api: Api, audited: dict[str, Any]
) -> None:
    viewer = api.tokens.viewer
    listed = data_of(api.gql(LIST, token=viewer))["useCases"]
    assert listed["totalCount"] == 1
    assert data_of(api.gql(BACKLOG_QUERY, token=viewer))["backlog"]["edges"] == []
    assert data_of(api.gql(PORTFOLIO_QUERY, token=viewer))["portfolio"]["deployed"] == 0
    assert data_of(api.gql(use_case_query("stage"), token=viewer))["useCase"]["stage"] == (
        "RETIRED"
    )
    for query in (HISTORY_QUERY, AS_OF_QUERY):
        body = api.gql(query, token=viewer)
        messages = error_messages(body)
        assert any("viewer" in m and "history" in m for m in messages), messages
        use_case = (body["data"] or {}).get("useCase") or {}
        assert use_case.get("history") is None, body
        assert use_case.get("asOf") is None, body


def test_an_integration_token_reads_nothing(api: Api, audited: dict[str, Any]) -> None:
    integration = api.tokens.integration
    for query in (LIST, BACKLOG_QUERY, PORTFOLIO_QUERY, use_case_query("stage"), HISTORY_QUERY):
        body = api.gql(query, token=integration)
        messages = error_messages(body)
        assert any("integration cannot read" in m for m in messages), (query, messages)
        data = body.get("data") or {}
        assert all(value is None for value in data.values()), (query, body)


def test_auditors_and_the_team_read_history_and_past_states(
    api: Api, audited: dict[str, Any]
) -> None:
    for reader in ("auditor", "editor", "approver"):
        token = getattr(api.tokens, reader)
        history = data_of(api.gql(HISTORY_QUERY, token=token))["useCase"]["history"]
        assert [e["node"]["version"] for e in history["edges"]] == [1, 2, 3], reader
        as_of = data_of(api.gql(AS_OF_QUERY, token=token))["useCase"]["asOf"]
        assert as_of == {"version": 1}, reader
