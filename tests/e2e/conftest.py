"""End-to-end fixtures: the real ASGI app behind a real uvicorn server, reached over HTTP.

Each test gets its own store (SQLite or PostgreSQL, through the ``settings`` fixture), its own
server on an ephemeral port in a background thread, and tokens issued through the token store
for every kind of caller the API knows: the AI team, the named people, read-only roles, and an
integration.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from domain.values import Role
from infra.bootstrap import Services
from infra.tokens import IssuedToken
from infra.web import build_api
from tests.builders import APPROVER, AUDITOR, BUSINESS, EDITOR, VIEWER

OTHER_APPROVER_ID = "olga.other-approver@example.com"
"""Holds an approver-role token but is never the named approver of any use case here."""
INTEGRATION_ID = "eval-harness"
INTEGRATION_SOURCE = "https://eval.example.com/harness"

RESULT_FRAGMENT = """
fragment Result on UseCaseResult {
  __typename
  ... on UseCase { key stage version gate { next unmet { code } } }
  ... on Error { message }
  ... on GateBlocked { stage target unmet { code message } }
  ... on VersionConflict { expectedVersion actualVersion }
  ... on ValidationFailed { errors { path message } }
  ... on NotFound { key }
  ... on RuleViolated { code }
}
"""
"""What every mutation in these tests asks back: enough of each union member to assert on."""

_STARTUP_DEADLINE_SECONDS = 20.0
_SHUTDOWN_DEADLINE_SECONDS = 20.0


@dataclass(frozen=True)
class Tokens:
    """Bearer tokens (the full secret strings) of every caller the tests play."""

    editor: str
    approver: str
    """Role approver, actor id = the named approver's person id (``APPROVER``)."""
    business_owner: str
    """Role editor, actor id = the named business owner's person id (``BUSINESS``)."""
    viewer: str
    auditor: str
    integration: str
    other_approver: str
    """Role approver, but not the person any use case names as approver."""


class Api:
    """An HTTP client bound to one running server."""

    def __init__(self, base_url: str, tokens: Tokens) -> None:
        self.base_url = base_url
        self.tokens = tokens
        self.http = httpx.Client(base_url=base_url, timeout=30.0)

    def close(self) -> None:
        self.http.close()

    def post_graphql(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """POST a GraphQL request as it is; the raw response (status, headers, body)."""
        sent = {"Accept": "application/json", "Content-Type": "application/json"}
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        sent.update(headers or {})
        body: dict[str, Any] = {"query": query}
        if variables is not None:
            body["variables"] = variables
        # json.dumps, unlike httpx's own encoder, writes NaN and Infinity as JavaScript does:
        # the only way a client can try to send a non-finite number.
        return self.http.post("/graphql", content=json.dumps(body), headers=sent)

    def gql(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        """The JSON body of a GraphQL request (editor token unless told otherwise).

        GraphQL answers every well-formed request with HTTP 200 and JSON, errors included, so
        anything else is a failure here rather than something for each test to check.
        """
        response = self.post_graphql(
            query, variables, self.tokens.editor if token is None else token
        )
        assert response.status_code == 200, (response.status_code, response.text)
        assert response.headers["content-type"].startswith("application/json"), response.headers
        body: dict[str, Any] = response.json()
        return body

    def mutate_body(
        self, name: str, input: dict[str, Any], token: str | None = None
    ) -> dict[str, Any]:
        """The whole JSON body of mutation ``name(input: $input)`` (errors included)."""
        input_type = f"{name[0].upper()}{name[1:]}Input"
        query = (
            f"mutation Run($input: {input_type}!) {{ result: {name}(input: $input) "
            f"{{ ...Result }} }}\n{RESULT_FRAGMENT}"
        )
        return self.gql(query, {"input": input}, token)

    def mutate(self, name: str, input: dict[str, Any], token: str | None = None) -> dict[str, Any]:
        """The union member a mutation returned; a GraphQL-level error fails the test."""
        body = self.mutate_body(name, input, token)
        assert "errors" not in body, body
        result: dict[str, Any] = body["data"]["result"]
        return result

    def use_case(self, key: str, selection: str = "key stage version") -> dict[str, Any] | None:
        """``useCase(key)`` as the editor sees it; None when there is no such use case."""
        body = self.gql(
            f"query Get($key: String!) {{ useCase(key: $key) {{ {selection} }} }}", {"key": key}
        )
        assert "errors" not in body, body
        found: dict[str, Any] | None = body["data"]["useCase"]
        return found

    def version(self, key: str) -> int | None:
        """The use case's version (number of events), or None if it does not exist."""
        found = self.use_case(key, "version")
        return None if found is None else int(found["version"])


def _free_socket() -> socket.socket:
    """A listening-ready socket bound to an ephemeral port, handed to uvicorn as is."""
    # proto IPPROTO_TCP, not 0: asyncio only sets TCP_NODELAY on sockets that say they are TCP,
    # and without it every response waits out a delayed ACK (~40 ms each on loopback).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@dataclass
class RunningServer:
    base_url: str
    server: uvicorn.Server
    thread: threading.Thread
    sock: socket.socket

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(_SHUTDOWN_DEADLINE_SECONDS)
        self.sock.close()
        assert not self.thread.is_alive(), "the uvicorn server did not shut down"


def start_server(app: FastAPI, **config_options: Any) -> RunningServer:
    """Serve ``app`` with uvicorn in a background thread; return once /healthz answers.

    ``config_options`` go to ``uvicorn.Config`` (e.g. ``http=``, ``access_log=True``)."""
    sock = _free_socket()
    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(app, **{"log_level": "warning", "access_log": False, **config_options})
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"uvicorn-{port}", daemon=True
    )
    thread.start()
    running = RunningServer(f"http://{host}:{port}", server, thread, sock)
    deadline = time.monotonic() + _STARTUP_DEADLINE_SECONDS
    while True:
        if not thread.is_alive():
            sock.close()
            pytest.fail("the uvicorn server thread died while starting")
        try:
            if httpx.get(f"{running.base_url}/healthz", timeout=2.0).status_code == 200:
                return running
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            running.stop()
            pytest.fail(f"the server did not answer /healthz within {_STARTUP_DEADLINE_SECONDS}s")
        time.sleep(0.02)


def issue_tokens(services: Services) -> Tokens:
    def issue(actor_id: str, role: Role, **scope: Any) -> str:
        issued: IssuedToken = services.tokens.issue(actor_id, role, **scope)
        return issued.secret_token

    return Tokens(
        editor=issue(EDITOR.id, Role.EDITOR),
        approver=issue(APPROVER["id"], Role.APPROVER),
        business_owner=issue(BUSINESS["id"], Role.EDITOR),
        viewer=issue(VIEWER.id, Role.VIEWER),
        auditor=issue(AUDITOR.id, Role.AUDITOR),
        integration=issue(INTEGRATION_ID, Role.INTEGRATION, sources=(INTEGRATION_SOURCE,)),
        other_approver=issue(OTHER_APPROVER_ID, Role.APPROVER),
    )


@pytest.fixture
def tokens(services: Services) -> Tokens:
    return issue_tokens(services)


@pytest.fixture
def serve() -> Iterator[Callable[..., str]]:
    """Start any number of apps on their own servers (``serve(app, **uvicorn_options)``); all
    are stopped after the test."""
    running: list[RunningServer] = []

    def start(app: FastAPI, **config_options: Any) -> str:
        server = start_server(app, **config_options)
        running.append(server)
        return server.base_url

    yield start
    stuck = []
    for server in reversed(running):
        try:
            server.stop()
        except AssertionError:
            stuck.append(server.base_url)
    assert not stuck, f"servers that did not shut down: {stuck}"


@pytest.fixture
def api(services: Services, tokens: Tokens, serve: Callable[[FastAPI], str]) -> Iterator[Api]:
    """The production-mode app built by ``build_api(services)``, served over real HTTP."""
    client = Api(serve(build_api(services)), tokens)
    yield client
    client.close()


@pytest.fixture
def gql(api: Api) -> Callable[..., dict[str, Any]]:
    """``gql(query, variables=None, token=None)``: the JSON of a GraphQL request."""
    return api.gql


@pytest.fixture
def development_api(
    services: Services, tokens: Tokens, serve: Callable[[FastAPI], str]
) -> Iterator[Api]:
    """The same services, but the app built with ``Settings(environment="development")``."""
    settings = services.settings.model_copy(update={"environment": "development"})
    assert settings.environment == "development"
    app = build_api(dataclasses.replace(services, settings=settings))
    client = Api(serve(app), tokens)
    yield client
    client.close()
