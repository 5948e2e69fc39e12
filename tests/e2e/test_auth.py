"""Bearer-token authentication over HTTP, the health probes, and where GraphiQL is served."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from domain.values import Role
from infra.bootstrap import Services
from infra.web import build_api
from tests.builders import APPROVER, AUDITOR, BUSINESS, EDITOR, VIEWER
from tests.e2e.conftest import INTEGRATION_ID, OTHER_APPROVER_ID, Api

ME = "{ me { actorId role } }"


def assert_unauthenticated(response: httpx.Response) -> dict[str, Any]:
    """A 401 that tells the client to use a bearer token, as an RFC 9457 problem."""
    assert response.status_code == 401, (response.status_code, response.text)
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"].startswith("application/problem+json")
    problem: dict[str, Any] = response.json()
    assert problem["status"] == 401
    assert problem["title"]
    assert problem["detail"]
    assert "data" not in problem, "an unauthenticated request must not be executed"
    return problem


def test_a_request_without_a_token_is_401_with_a_bearer_challenge(api: Api) -> None:
    assert_unauthenticated(api.post_graphql(ME))


def test_a_query_without_a_token_is_not_executed(api: Api) -> None:
    key = "must-not-exist"
    mutation = (
        "mutation Run($key: String!) "
        '{ registerUseCase(input: {key: $key, title: "x"}) { __typename } }'
    )
    assert_unauthenticated(api.post_graphql(mutation, {"key": key}))
    assert api.use_case(key) is None


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param("Bearer", id="scheme-without-token"),
        pytest.param("Bearer not-a-token", id="no-sgt-shape"),
        pytest.param("Bearer sgt_onlytwoparts", id="too-few-parts"),
        pytest.param("Basic dXNlcjpwYXNz", id="basic-auth"),
        pytest.param("sgt_abc_def", id="no-scheme"),
    ],
)
def test_a_malformed_authorization_header_is_401(api: Api, authorization: str) -> None:
    assert_unauthenticated(api.post_graphql(ME, headers={"Authorization": authorization}))


def test_an_unknown_token_is_401(api: Api) -> None:
    assert_unauthenticated(api.post_graphql(ME, token="sgt_0123456789abcdef_" + "x" * 43))


def test_a_known_token_id_with_the_wrong_secret_is_401(api: Api) -> None:
    prefix, token_id, secret = api.tokens.editor.split("_", 2)
    forged = f"{prefix}_{token_id}_{secret[::-1]}"
    assert forged != api.tokens.editor
    assert_unauthenticated(api.post_graphql(ME, token=forged))


def test_a_revoked_token_is_401(api: Api, services: Services) -> None:
    issued = services.tokens.issue("rita.revoked@example.com", Role.EDITOR)
    working = api.post_graphql(ME, token=issued.secret_token)
    assert working.status_code == 200
    assert working.json()["data"]["me"]["actorId"] == "rita.revoked@example.com"

    assert services.tokens.revoke(issued.record.token_id)

    assert_unauthenticated(api.post_graphql(ME, token=issued.secret_token))
    # Revoking one token leaves the others working.
    assert api.gql(ME)["data"]["me"]["actorId"] == EDITOR.id


@pytest.mark.parametrize(
    ("holder", "actor_id", "role"),
    [
        ("editor", EDITOR.id, "EDITOR"),
        ("approver", APPROVER["id"], "APPROVER"),
        ("business_owner", BUSINESS["id"], "EDITOR"),
        ("viewer", VIEWER.id, "VIEWER"),
        ("auditor", AUDITOR.id, "AUDITOR"),
        ("integration", INTEGRATION_ID, "INTEGRATION"),
        ("other_approver", OTHER_APPROVER_ID, "APPROVER"),
    ],
)
def test_me_says_who_the_token_belongs_to(api: Api, holder: str, actor_id: str, role: str) -> None:
    body = api.gql(ME, token=getattr(api.tokens, holder))
    assert body == {"data": {"me": {"actorId": actor_id, "role": role}}}


def test_an_integration_token_cannot_read_use_cases(api: Api) -> None:
    key = "some-use-case"
    created = api.mutate("registerUseCase", {"key": key, "title": "Readable by people"})
    assert created["__typename"] == "UseCase"

    body = api.gql(
        "query Get($key: String!) { useCase(key: $key) { key } }",
        {"key": key},
        api.tokens.integration,
    )
    assert body.get("errors"), body
    assert (body.get("data") or {}).get("useCase") is None


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_health_probes_answer_without_a_token(api: Api, path: str) -> None:
    response = httpx.get(f"{api.base_url}{path}")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ok"


def test_readyz_is_503_when_the_database_does_not_answer(
    services: Services, serve: Callable[[FastAPI], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable() -> None:
        raise ConnectionError("database is down")

    monkeypatch.setattr(services.database, "ping", unreachable)
    base_url = serve(build_api(services))

    assert httpx.get(f"{base_url}/healthz").status_code == 200
    response = httpx.get(f"{base_url}/readyz")
    assert response.status_code == 503, response.text
    assert response.json()["status"] != "ok"


def _ide_requested(api: Api, token: str | None) -> httpx.Response:
    headers = {"Accept": "text/html"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return api.http.get("/graphql", headers=headers)


def _is_graphiql(response: httpx.Response) -> bool:
    return (
        response.status_code == 200
        and response.headers.get("content-type", "").startswith("text/html")
        and "graphiql" in response.text.lower()
    )


@pytest.mark.parametrize("with_token", [False, True], ids=["anonymous", "with-token"])
def test_graphiql_is_not_served_in_production(api: Api, with_token: bool) -> None:
    response = _ide_requested(api, api.tokens.editor if with_token else None)
    assert not _is_graphiql(response), response.text[:500]
    assert "text/html" not in response.headers.get("content-type", "")


def test_graphiql_is_served_in_development(development_api: Api) -> None:
    response = _ide_requested(development_api, token=None)
    assert _is_graphiql(response), (response.status_code, response.text[:500])


def test_development_mode_still_needs_a_token_for_queries(development_api: Api) -> None:
    assert_unauthenticated(development_api.post_graphql(ME))
    body = development_api.gql(ME, token=development_api.tokens.viewer)
    assert body == {"data": {"me": {"actorId": VIEWER.id, "role": "VIEWER"}}}
