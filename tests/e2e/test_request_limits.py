"""Issue 8: no single request body can stop or stall the server.

Bodies past ``STAGEGATE_MAX_BODY_BYTES`` (1 MiB) are 413 on every route, refused as soon as
the declared length or the bytes read pass the limit; a body still arriving after
``STAGEGATE_BODY_TIMEOUT_SECONDS`` is 408; JSON nested deeper than 64 levels is 400. All are
problem documents.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import httpx
from fastapi import FastAPI

from infra.bootstrap import Services
from infra.web import build_api
from tests.builders import Journey
from tests.e2e.cloudevents_helpers import STRUCTURED, adoption, post
from tests.e2e.conftest import Api
from tests.e2e.raw_http import connect, parse_response, read_until_closed, request_head

PROBLEM_JSON = "application/problem+json"
PROBLEMS = "https://stagegate.dev/problems/"
DOCUMENTED_MAX_BODY_BYTES = 1024 * 1024
DOCUMENTED_MAX_JSON_DEPTH = 64
ME = {"query": "{ me { role } }"}


def _padded(document: dict[str, Any], size: int) -> bytes:
    """``document`` as JSON followed by spaces, exactly ``size`` bytes (still valid JSON)."""
    encoded = json.dumps(document).encode()
    assert len(encoded) <= size
    return encoded + b" " * (size - len(encoded))


def _graphql(api: Api, body: bytes | Iterator[bytes]) -> httpx.Response:
    headers = {"Authorization": f"Bearer {api.tokens.editor}", "Content-Type": "application/json"}
    return api.http.post("/graphql", content=body, headers=headers)


def _assert_problem(response: httpx.Response, status: int, reason: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON, response.headers
    document: dict[str, Any] = response.json()
    assert document["type"] == PROBLEMS + reason
    assert document["status"] == status
    return document


def _app_with(services: Services, **settings: Any) -> FastAPI:
    changed = services.settings.model_copy(update=settings)
    return build_api(dataclasses.replace(services, settings=changed))


# --- body size ------------------------------------------------------------------------------


def test_a_graphql_body_over_the_limit_is_413_and_one_at_the_limit_is_served(api: Api) -> None:
    over = _graphql(api, _padded(ME, DOCUMENTED_MAX_BODY_BYTES + 1))

    document = _assert_problem(over, 413, "payload-too-large")
    assert str(DOCUMENTED_MAX_BODY_BYTES) in document["detail"]
    at_limit = _graphql(api, _padded(ME, DOCUMENTED_MAX_BODY_BYTES))
    assert at_limit.status_code == 200, at_limit.text
    assert at_limit.json() == {"data": {"me": {"role": "EDITOR"}}}


def test_a_chunked_graphql_body_over_the_limit_is_413(api: Api) -> None:
    """No Content-Length to trust: the server counts what it reads."""
    body = _padded(ME, DOCUMENTED_MAX_BODY_BYTES + 1)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    response = _graphql(api, chunks())

    assert "content-length" not in {k.lower() for k in response.request.headers}
    _assert_problem(response, 413, "payload-too-large")


def test_a_declared_length_over_the_limit_is_refused_before_any_of_the_body(api: Api) -> None:
    """100 MB announced, nothing sent: the answer comes at once and the connection closes."""
    head = request_head(
        "POST",
        "/graphql",
        {
            "Authorization": f"Bearer {api.tokens.editor}",
            "Content-Type": "application/json",
            "Content-Length": str(100 * 1024 * 1024),
        },
    )
    with connect(api.base_url) as sock:
        sock.sendall(head)
        response = parse_response(read_until_closed(sock))

    assert response.status == 413
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["type"] == PROBLEMS + "payload-too-large"


def test_the_limit_is_a_setting_and_holds_for_every_route(
    services: Services, tokens: Any, serve: Callable[..., str]
) -> None:
    base_url = serve(_app_with(services, max_body_bytes=4096))
    journey = Journey(services.app).register()
    headers = {"Authorization": f"Bearer {tokens.editor}", "Content-Type": "application/json"}

    graphql = httpx.post(f"{base_url}/graphql", content=_padded(ME, 4097), headers=headers)
    events = httpx.post(
        f"{base_url}/v1/events",
        content=_padded(adoption(journey.key), 4097),
        headers={"Authorization": f"Bearer {tokens.integration}", "Content-Type": STRUCTURED},
    )
    served = httpx.post(f"{base_url}/graphql", content=_padded(ME, 4096), headers=headers)

    for response in (graphql, events):
        assert "4096" in _assert_problem(response, 413, "payload-too-large")["detail"]
    assert served.json() == {"data": {"me": {"role": "EDITOR"}}}


# --- body arrival time ----------------------------------------------------------------------


def test_a_body_that_does_not_arrive_in_time_is_408(
    services: Services, tokens: Any, serve: Callable[..., str]
) -> None:
    base_url = serve(_app_with(services, body_timeout_seconds=1))
    head = request_head(
        "POST",
        "/graphql",
        {
            "Authorization": f"Bearer {tokens.editor}",
            "Content-Type": "application/json",
            "Content-Length": "100",
        },
    )
    with connect(base_url) as sock:
        sock.sendall(head + b'{"query": ')  # and nothing more
        response = parse_response(read_until_closed(sock))

    assert response.status == 408
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["type"] == PROBLEMS + "request-timeout"
    assert httpx.get(f"{base_url}/healthz").status_code == 200


# --- JSON depth -----------------------------------------------------------------------------


def _nested(depth: int) -> str:
    """JSON arrays nested ``depth`` deep."""
    return "[" * depth + "]" * depth


def _graphql_with_variable(variable_json: str) -> bytes:
    """``{ me }`` with a variable nested 2 levels below the body's top (body, variables)."""
    return b'{"query": "{ me { role } }", "variables": {"x": ' + variable_json.encode() + b"}}"


def test_graphql_json_nested_past_the_limit_is_400_naming_it(api: Api) -> None:
    for depth in (1_000, 100_000):  # the second one past Python's recursion limit
        response = _graphql(api, _graphql_with_variable(_nested(depth)))
        document = _assert_problem(response, 400, "json-too-deep")
        assert str(DOCUMENTED_MAX_JSON_DEPTH) in document["detail"]


def test_graphql_json_nested_to_the_limit_is_served(api: Api) -> None:
    at_limit = _graphql(api, _graphql_with_variable(_nested(DOCUMENTED_MAX_JSON_DEPTH - 2)))
    one_deeper = _graphql(api, _graphql_with_variable(_nested(DOCUMENTED_MAX_JSON_DEPTH - 1)))

    assert at_limit.json() == {"data": {"me": {"role": "EDITOR"}}}
    _assert_problem(one_deeper, 400, "json-too-deep")


def test_deep_json_in_a_graphql_get_is_400(api: Api) -> None:
    response = api.http.get(
        f"/graphql?query={quote('{ me { role } }')}&variables={quote(_nested(1_000))}",
        headers={"Authorization": f"Bearer {api.tokens.editor}"},
    )
    _assert_problem(response, 400, "json-too-deep")


def test_events_json_nested_past_the_limit_is_400_naming_it(services: Services, api: Api) -> None:
    for depth in (1_000, 100_000):
        response = post(api, _nested(depth).encode(), content_type=STRUCTURED)
        document = _assert_problem(response, 400, "json-too-deep")
        assert str(DOCUMENTED_MAX_JSON_DEPTH) in document["detail"]


# --- strawberry's own refusals --------------------------------------------------------------


def test_malformed_graphql_json_is_a_400_problem(api: Api) -> None:
    _assert_problem(_graphql(api, b'{"query": '), 400, "malformed-json")


def test_a_batch_of_operations_is_a_400_problem(api: Api) -> None:
    """Batching is off: one operation per request, each on its own worker thread."""
    response = _graphql(api, json.dumps([ME, ME]).encode())

    document = _assert_problem(response, 400, "http-400")
    assert "Batching is not enabled" in document["detail"]
