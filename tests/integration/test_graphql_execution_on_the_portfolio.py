"""stagegate's own schema answers the demo portfolio's pages alike with the short paths of
``api.graphql.execution`` and without them, on both stores (the unit tests hold the paths to
the same answers on a schema of their own, failures included)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import strawberry

from api.auth import Principal
from api.graphql import execution
from api.graphql import schema as schema_module
from api.graphql.context import Context, backend_arguments
from domain.values import Role
from infra.bootstrap import Services
from infra.demo import DEMO_KEYS, load_demo
from infra.web import build_api


def test_the_portfolio_pages_answer_alike_on_both_paths(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_demo(services.app)
    backends = build_api(services).state.backends
    actor = services.tokens.authenticate(
        services.tokens.issue("auditor@example.com", Role.AUDITOR).secret_token
    ).actor  # type: ignore[union-attr]
    short = schema_module.build_schema(max_depth=12, max_aliases=30)
    with monkeypatch.context() as patch:
        patch.setattr(schema_module, "resolve_methods_directly", lambda schema: None)
        long_path = schema_module.build_schema(max_depth=12, max_aliases=30)
    plain_leaves = execution._plain_leaves

    def answer(schema: strawberry.Schema, query: str, variables: dict[str, Any]) -> str:
        # graphql-core's path for every field when the schema is the long one.
        monkeypatch.setattr(
            execution, "_plain_leaves", plain_leaves if schema is short else lambda _: {}
        )
        context = Context(
            **backend_arguments(backends),
            principal=Principal(actor=actor, token_id="t"),
            correlation_id="correlation",
        )
        result = schema.execute_sync(query, variable_values=variables, context_value=context)
        assert not result.errors, result.errors
        return json.dumps(result.data)

    page = """{ useCases(first: 50) { edges { node {
        id key title stage version updatedAt owners { business { id name } }
        priority { leverage { score } } gate { next open unmet { code message } }
        costByMonth { month currency amount daysReported reportedInFull budget withinBudget }
        monthlyBudget { amount currency }
        returnOnInvestment { currency statedAnnualValue valueToCost proven }
        adoption(last: 12) { edges { node { activeUsers rate measuredAt } } }
        improvements { baseline { metric direction kind } afterState { value } change counts }
    } } pageInfo { hasNextPage } } }"""
    detail = """query($key: String!) { useCase(key: $key) { key stage
        history(last: 50) { edges { node { version type recordedAt actorId payload } } }
        gate { stage next open unmet { code message } } } }"""
    assert answer(short, page, {}) == answer(long_path, page, {})
    for key in DEMO_KEYS:
        assert answer(short, detail, {"key": key}) == answer(long_path, detail, {"key": key})
