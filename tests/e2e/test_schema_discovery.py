"""Issue 8: in production the schema is not for discovery: no introspection and no "Did you
mean ...?" in error messages, unless ``STAGEGATE_GRAPHQL_INTROSPECTION`` says otherwise.
Development answers both (GraphiQL needs introspection)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from infra.bootstrap import Services
from infra.web import build_api
from tests.e2e.conftest import Api, Tokens

SCHEMA = "{ __schema { queryType { name } } }"
TYPE = '{ __type(name: "UseCase") { name } }'

MISTAKES = {
    "field": ('{ useCase(key: "k") { stag } }', None, "Cannot query field 'stag'"),
    "argument": ('{ useCase(kee: "k") { stage } }', None, "Unknown argument 'kee'"),
    "enum literal": (
        "{ useCases(filter: {stages: [PILOTT]}) { totalCount } }",
        None,
        "Value 'PILOTT' does not exist",
    ),
    "enum variable": (
        "query($s: [Stage!]) { useCases(filter: {stages: $s}) { totalCount } }",
        {"s": ["PILOTT"]},
        "Value 'PILOTT' does not exist",
    ),
    "input field": (
        "{ useCases(filter: {stagess: [PILOT]}) { totalCount } }",
        None,
        "unknown field 'stagess'",
    ),
    "type": ("query($s: Stag) { me { role } }", None, "Unknown type 'Stag'"),
}


def _messages(api: Api, query: str, variables: dict[str, Any] | None = None) -> list[str]:
    return [e["message"] for e in api.gql(query, variables).get("errors", [])]


@pytest.mark.parametrize("query", [SCHEMA, TYPE], ids=["__schema", "__type"])
def test_production_refuses_introspection(api: Api, query: str) -> None:
    body = api.gql(query)

    assert body.get("data") is None, body
    assert any("introspection has been disabled" in e["message"] for e in body["errors"])


def test_production_still_answers_typename(api: Api) -> None:
    assert api.gql("{ __typename }") == {"data": {"__typename": "Query"}}


def test_development_answers_introspection(development_api: Api) -> None:
    assert development_api.gql(SCHEMA) == {"data": {"__schema": {"queryType": {"name": "Query"}}}}


@pytest.mark.parametrize("mistake", MISTAKES.values(), ids=MISTAKES.keys())
def test_production_errors_suggest_nothing_but_say_what_is_wrong(
    api: Api, development_api: Api, mistake: tuple[str, dict[str, Any] | None, str]
) -> None:
    query, variables, what = mistake

    production = _messages(api, query, variables)
    development = _messages(development_api, query, variables)

    assert any("Did you mean" in m for m in development), development  # there is a hint to hide
    assert any(what in m for m in production), production
    assert not any("Did you mean" in m for m in production), production


@pytest.mark.parametrize(("environment", "setting"), [("production", True), ("development", False)])
def test_the_setting_overrides_the_environment(
    services: Services,
    tokens: Tokens,
    serve: Callable[..., str],
    environment: str,
    setting: bool,
) -> None:
    settings = services.settings.model_copy(
        update={"environment": environment, "graphql_introspection": setting}
    )
    api = Api(serve(build_api(dataclasses.replace(services, settings=settings))), tokens)
    try:
        answered = "errors" not in api.gql(SCHEMA)
        suggested = any("Did you mean" in m for m in _messages(api, MISTAKES["field"][0]))
    finally:
        api.close()

    assert answered is setting
    assert suggested is setting
