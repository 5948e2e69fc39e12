"""The backlog's ranking rule, through the read model's SQL on SQLite, over every combination
of the three priority scores.

the specification: a use case strong on all three dimensions ranks above one strong on leverage and
feasibility but weak on organisational readiness, whatever its leverage. The API documents the
whole order: the weakest score first, then readiness, then the total (then the key); unscored
use cases last; use cases in scale (or retired) are not in the backlog.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from domain import commands as c
from domain.values import Stage
from infra.bootstrap import Services, bootstrap
from infra.settings import Settings
from tests.builders import Journey, ctx

SCORES = list(itertools.product(range(1, 6), repeat=3))
STRONG, WEAK = 4, 2
"""Reading of "strong" and "weak" on the 1-5 scale."""


@pytest.fixture
def sqlite_services(sqlite_settings: Settings) -> Iterator[Services]:
    services = bootstrap(sqlite_settings)
    yield services
    services.close()


def key_of(scores: tuple[int, int, int]) -> str:
    return "scored-{}{}{}".format(*scores)


def score(services: Services, key: str, scores: tuple[int, int, int]) -> None:
    leverage, feasibility, readiness = scores
    services.app.execute(
        c.ScorePriority.parse(
            {
                "key": key,
                "leverage": {"score": leverage, "rationale": "Volume and cost of errors."},
                "feasibility": {"score": feasibility, "rationale": "Data access."},
                "readiness": {"score": readiness, "rationale": "Owner commitment."},
            }
        ),
        ctx(),
    )


def register(services: Services, key: str) -> None:
    services.app.execute(c.RegisterUseCase.parse({"key": key, "title": key}), ctx())


@pytest.fixture
def every_score(sqlite_services: Services) -> Services:
    """125 scored use cases, two unscored, and two of the strongest out of the backlog."""
    services = sqlite_services
    for scores in SCORES:
        register(services, key_of(scores))
        score(services, key_of(scores), scores)
    for key in ("unscored-b", "unscored-a"):
        register(services, key)
    Journey(services.app, "out-in-scale").register().reach(Stage.SCALE)
    score(services, "out-in-scale", (5, 5, 5))
    register(services, "out-retired")
    score(services, "out-retired", (5, 5, 5))
    services.app.execute(c.Retire.parse({"key": "out-retired", "reason": "Dropped."}), ctx())
    services.read_models.catch_up()
    return services


def whole_backlog(services: Services, page_size: int) -> list[tuple[int, str]]:
    entries, after = [], None
    while True:
        page = services.read_models.backlog(page_size, after)
        entries += [(e.rank, e.record.state.key) for e in page.items]
        assert len(page.cursors) == len(page.items)
        if not page.has_next_page:
            return entries
        assert len(page.items) == page_size
        after = page.cursors[-1]


def test_strong_on_all_three_ranks_above_weak_readiness_whatever_its_leverage(
    every_score: Services,
) -> None:
    rank = {key: r for r, key in whole_backlog(every_score, 100)}
    strong = [s for s in SCORES if min(s) >= STRONG]
    weak_readiness = [s for s in SCORES if s[0] >= STRONG and s[1] >= STRONG and s[2] <= WEAK]
    assert strong
    assert weak_readiness
    wrong = [(x, y) for x in strong for y in weak_readiness if rank[key_of(x)] >= rank[key_of(y)]]
    assert not wrong, f"ranked at or below a weak-readiness use case: {wrong[:10]}"


def test_the_documented_order_with_unscored_last_and_scale_and_retired_left_out(
    every_score: Services,
) -> None:
    entries = whole_backlog(every_score, 100)
    expected = [
        key_of(s) for s in sorted(SCORES, key=lambda s: (-min(s), -s[2], -sum(s), key_of(s)))
    ]
    expected += ["unscored-a", "unscored-b"]
    assert [key for _, key in entries] == expected
    assert [r for r, _ in entries] == list(range(1, len(expected) + 1))


def test_ranks_run_on_across_pages(every_score: Services) -> None:
    whole = whole_backlog(every_score, 127)
    assert [r for r, _ in whole] == list(range(1, 128))
    for page_size in (1, 7, 50, 100):
        assert whole_backlog(every_score, page_size) == whole, f"pages of {page_size}"
