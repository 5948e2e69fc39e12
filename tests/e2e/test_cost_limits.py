"""Issue 8: one request may resolve only so many of the fields that cost far more than the rest.

``integrity`` (recomputes a hash chain) at most 3 times, ``asOf`` (replays a use case) 20,
``history`` (a page of the history table) 20, counted as they resolve, through aliases and
lists alike. Past the budget each further one is a GraphQL error with ``extensions.code``
``COST_LIMIT`` naming the limit; the ones within it are answered.
"""

from __future__ import annotations

from typing import Any

from domain.values import Stage
from infra.bootstrap import Services
from tests.builders import Journey
from tests.e2e.conftest import Api

DOCUMENTED = {"integrity": 3, "asOf": 20, "history": 20}


def _aliased(count: int, selection: str) -> str:
    """``count`` aliases of ``useCase(key: $key) { selection }``."""
    fields = " ".join(f"u{n}: useCase(key: $key) {{ {selection} }}" for n in range(count))
    return f"query($key: String!) {{ {fields} }}"


def _cost_errors(body: dict[str, Any]) -> list[dict[str, Any]]:
    errors = body.get("errors", [])
    assert all(e.get("extensions", {}).get("code") == "COST_LIMIT" for e in errors), errors
    return list(errors)


def _assert_budget_kept(
    api: Api, key: str, field: str, selection: str, token: str | None = None
) -> None:
    limit = DOCUMENTED[field]

    body = api.gql(_aliased(limit + 2, selection), {"key": key}, token or api.tokens.auditor)

    # A refused asOf is null; a refused integrity or history, not nullable, nulls its useCase.
    answered = [alias for alias, use_case in body["data"].items() if use_case and use_case[field]]
    assert answered == [f"u{n}" for n in range(limit)], body
    errors = _cost_errors(body)
    assert [e["path"][0] for e in errors] == [f"u{limit}", f"u{limit + 1}"]
    assert all(f"at most {limit} times" in e["message"] for e in errors)
    assert all(e["extensions"]["limit"] == limit for e in errors)


def test_integrity_past_its_budget_is_refused_and_the_rest_answered(
    services: Services, api: Api
) -> None:
    journey = Journey(services.app).register().reach(Stage.PILOT)
    _assert_budget_kept(api, journey.key, "integrity", "integrity { intact }")


def test_as_of_past_its_budget_is_refused_and_the_rest_answered(
    services: Services, api: Api
) -> None:
    journey = Journey(services.app).register().reach(Stage.PILOT)
    _assert_budget_kept(api, journey.key, "asOf", "asOf(version: 1) { version }")


def test_history_pages_past_their_budget_are_refused_and_the_rest_answered(
    services: Services, api: Api
) -> None:
    journey = Journey(services.app).register().reach(Stage.PILOT)
    services.read_models.catch_up()
    _assert_budget_kept(api, journey.key, "history", "history(first: 1) { edges { cursor } }")


def test_integrity_through_a_list_counts_every_node(services: Services, api: Api) -> None:
    for _ in range(DOCUMENTED["integrity"] + 1):
        Journey(services.app).register()
    services.read_models.catch_up()

    body = api.gql(
        "{ useCases(first: 100) { edges { node { integrity { intact } } } } }",
        token=api.tokens.auditor,
    )

    [error] = _cost_errors(body)
    assert error["path"][:2] == ["useCases", "edges"]
    assert error["path"][-1] == "integrity"
    # The refused field alone is null: the nodes within the budget are answered.
    checks = [edge["node"]["integrity"] for edge in body["data"]["useCases"]["edges"]]
    assert checks.count(None) == 1
    assert checks.count({"intact": True}) == DOCUMENTED["integrity"]


def test_the_budget_is_per_request(services: Services, api: Api) -> None:
    journey = Journey(services.app).register()
    query = _aliased(DOCUMENTED["integrity"], "integrity { intact }")

    for _ in range(2):
        body = api.gql(query, {"key": journey.key}, api.tokens.auditor)
        assert "errors" not in body, body
