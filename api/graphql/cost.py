"""A budget per request for the fields that cost far more than the rest.

``integrity`` recomputes a history's whole hash chain, ``asOf`` replays a use case, and each
``history`` is a page read from the history table. One request may ask for them only so many
times, counted as they resolve (through lists and aliases alike); past the budget each further
one is a GraphQL error with ``extensions.code = "COST_LIMIT"`` and the rest of the answer
stands. A portal shows one use case's integrity, a page of past states (each by version and by
time) and a few history pages; the budgets are well above that.
"""

from __future__ import annotations

from collections import Counter
from enum import StrEnum

from graphql import GraphQLError


class Costly(StrEnum):
    INTEGRITY = "integrity"
    AS_OF = "asOf"
    HISTORY = "history"


BUDGET: dict[Costly, int] = {Costly.INTEGRITY: 3, Costly.AS_OF: 20, Costly.HISTORY: 20}
"""How many of each field one request may resolve."""


class CostMeter:
    """Counts one request's costly fields. Its resolvers run one after another on the one
    worker thread executing the operation, so a plain counter is enough."""

    def __init__(self, budget: dict[Costly, int] = BUDGET) -> None:
        self.budget = budget
        self.spent: Counter[Costly] = Counter()

    def charge(self, field: Costly) -> None:
        """Count one ``field``; raise the COST_LIMIT error if that is one past the budget."""
        self.spent[field] += 1
        limit = self.budget[field]
        if self.spent[field] > limit:
            raise GraphQLError(
                f"A request may resolve `{field}` at most {limit} times; ask for more in "
                "another request.",
                extensions={"code": "COST_LIMIT", "field": str(field), "limit": limit},
            )
