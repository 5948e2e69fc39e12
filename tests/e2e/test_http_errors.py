"""Failures that are nobody's input error still get a clear, safe answer over HTTP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from eventsourcing.persistence import OperationalError
from fastapi import FastAPI

from infra.bootstrap import Services
from infra.web import build_api
from tests.builders import unique_key
from tests.e2e.conftest import Api

REGISTER = """mutation($key: String!) { registerUseCase(input: {key: $key, title: "T"}) {
  __typename } }"""


def test_an_unknown_path_is_a_problem_document(api: Api) -> None:
    response = httpx.get(f"{api.base_url}/no/such/thing")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 404


def test_a_store_that_refuses_writes_is_a_retryable_error_not_a_crash(
    services: Services, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_: Any, **__: Any) -> None:
        raise OperationalError("canceling statement due to lock timeout")

    monkeypatch.setattr(services.app, "save", refuse)
    key = unique_key()

    body = api.gql(REGISTER, {"key": key}, api.tokens.editor)

    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"] == {"code": "UNAVAILABLE", "retryable": True, "written": False}
    assert "nothing was written" in error["message"]
    monkeypatch.undo()
    assert api.version(key) is None


def test_a_token_lookup_that_cannot_reach_the_database_is_a_503(
    services: Services, serve: Callable[[FastAPI], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable(_: str) -> None:
        raise OperationalError("connection refused")

    monkeypatch.setattr(services.tokens, "authenticate", unreachable)
    base_url = serve(build_api(services))

    response = httpx.post(
        f"{base_url}/graphql",
        json={"query": "{ me { role } }"},
        headers={"Authorization": "Bearer sgt_0000000000000000_x"},
    )

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert "unreachable" in response.json()["detail"]
