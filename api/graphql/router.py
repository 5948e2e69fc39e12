"""``/graphql`` over HTTP: each operation run whole on a worker thread, in one hop.

Strawberry runs parsing, validation, variable coercion and synchronous resolvers on the event
loop, so one large request stalled every other, health probes included. Here every operation
is executed (``Schema.execute_sync``: every resolver is a plain function) on a worker thread.

``POST /graphql`` (what portals and integrations send) has a route of its own,
``GraphQLPost``: the event loop reads the request, and one worker thread does the rest, in
the order strawberry's view would: the token lookup, the JSON decoding, strawberry's own
checks of the request, the execution, and the encoding of the answer. Through FastAPI's
dependencies and strawberry's asynchronous view the same request took five thread hops (three
dependencies, the decoding, the execution) and FastAPI's dependency solving: in process a
``{ me }`` request took 2.7 ms of CPU that way, 1.2 ms this way (bench/RESULTS.md).
``GET /graphql`` (queries in the URL, and GraphiQL in development) stays strawberry's route.
Strawberry's own refusals (malformed JSON, no query, a batch) become problem documents on
both.
"""

from __future__ import annotations

import json
from collections.abc import Coroutine
from http import HTTPStatus
from typing import Any

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException, StarletteRequestAdapter
from fastapi.routing import APIRoute
from graphql import GraphQLError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send
from strawberry.exceptions import MissingQueryError
from strawberry.fastapi import GraphQLRouter
from strawberry.http import GraphQLRequestData
from strawberry.http.async_base_view import AsyncBaseHTTPView
from strawberry.http.parse_content_type import parse_content_type
from strawberry.http.types import HTTPMethod
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET

from api import telemetry
from api.auth import authenticate_request, bearer, require_credentials
from api.graphql.context import Context, context_for
from api.graphql.reporting import is_unexpected
from api.limits import Refused, loads_json
from api.problems import problem, problem_response


class ThreadedGraphQLRouter(GraphQLRouter[Context, None]):
    """Strawberry's FastAPI router for ``GET /graphql``; ``post_route`` answers POST."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # POST is ``GraphQLPost``'s (``post_route``), which the app puts before this router.
        self.routes = [
            route
            for route in self.routes
            if not (isinstance(route, APIRoute) and route.methods == {"POST"})
        ]

    def post_route(self, path: str) -> GraphQLPost:
        return GraphQLPost(path, self)

    async def run(  # type: ignore[override]
        self, request: Request, context: Any = UNSET, root_value: Any = UNSET
    ) -> Response:
        try:
            return await super().run(request, context, root_value)
        except Refused as refused:
            return problem_response(refused.document)
        except HTTPException as error:
            return _http_problem(error)

    def encode_json(self, data: object) -> bytes:
        """The answer's JSON, by orjson: a page of 50 use cases with their value fields is
        about 170 KB, which the standard library encodes in 1.3 ms and orjson in 0.1 ms.
        What orjson refuses (an integer beyond 64 bits, a key that is not a string, which a
        ``JSON`` scalar may hold) is encoded by the standard library, as strawberry would."""
        try:
            return orjson.dumps(data)
        except TypeError:  # orjson.JSONEncodeError is a TypeError
            return json.dumps(data, separators=(",", ":")).encode()

    def decode_json(self, data: str | bytes) -> object:
        # POST bodies are decoded on a worker thread (``GraphQLPost``); GET variables on the
        # event loop, bounded by the request line's size.
        return loads_json(data)

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        """strawberry's ``execute_single``, but ``execute_sync`` on a worker thread."""
        return await run_in_threadpool(
            self.execute_here, request, request_adapter.method, context, request_data
        )

    def execute_here(
        self,
        request: Request,
        method: HTTPMethod,
        context: Context,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        """Execute one operation in this thread (as strawberry's ``execute_single`` does,
        with ``execute_sync``), and count it."""
        allowed_operation_types = OperationType.from_http(method)
        if not self.allow_queries_via_get and method == "GET":
            allowed_operation_types = allowed_operation_types - {OperationType.QUERY}
        try:
            result = self.schema.execute_sync(
                request_data.query,
                root_value=None,
                variable_values=request_data.variables,
                context_value=context,
                operation_name=request_data.operation_name,
                allowed_operation_types=allowed_operation_types,
                operation_extensions=request_data.extensions,
            )
        except CannotGetOperationTypeError as e:
            raise HTTPException(400, e.as_http_error_reason()) from e
        except InvalidOperationTypeError as e:
            raise HTTPException(400, e.as_http_error_reason(method)) from e
        except MissingQueryError as e:
            raise HTTPException(400, "No GraphQL query found in the request") from e
        operation = telemetry.operation_label(request_data.operation_name, request_data.query)
        codes = [error_code(e) for e in result.errors or ()]
        telemetry.graphql_operation(operation, codes, counting=request.app.state.counting)
        return result


class GraphQLPost(Route):
    """``POST /graphql``: the request read on the event loop, answered on one worker thread
    (the module docstring)."""

    def __init__(self, path: str, view: ThreadedGraphQLRouter) -> None:
        super().__init__(path, self._post, methods=["POST"], include_in_schema=False)
        self.view = view

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The route that answered, for the request's metrics and log line (as FastAPI's
        # routes leave it).
        scope["route"] = self
        await super().handle(scope, receive, send)

    async def _post(self, request: Request) -> Response:
        credentials = await bearer(request)
        # Without a token the answer needs no database, nor the body.
        require_credentials(credentials)
        content_type, _ = parse_content_type(request.headers.get("content-type", ""))
        if "application/json" in content_type:
            # Read here (the body guard's limits apply as it arrives), kept by the request.
            await request.body()
        return await run_in_threadpool(self._answer, request, credentials)

    def _answer(self, request: Request, credentials: Any) -> Response:
        """On a worker thread: what strawberry's view does for a POST, in its order."""
        view = self.view
        principal = authenticate_request(request, credentials)  # raises the 401 or 503
        try:
            adapter = StarletteRequestAdapter(request)
            # Strawberry's checks of the body (content type, JSON, a batch, the types of
            # ``query``, ``variables`` and ``extensions``), with its messages. The body is
            # read already, so the coroutine completes without waiting for anything.
            request_data = _completed(AsyncBaseHTTPView.parse_http_body(view, adapter))
            if not isinstance(request_data, GraphQLRequestData):
                raise HTTPException(400, "Batching is not enabled")
            context = context_for(request, principal)
            result = view.execute_here(request, "POST", context, request_data)
        except Refused as refused:
            return problem_response(refused.document)
        except HTTPException as error:
            return _http_problem(error)
        response_data = _completed(view.process_result(request, result))
        if result.errors:
            view._handle_errors(result.errors, response_data)
        return Response(view.encode_json(response_data), media_type="application/json")


def _completed(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """The value of a coroutine that finishes without suspending, computed in this thread:
    strawberry's asynchronous steps that wait for nothing once the body is read."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()
    raise RuntimeError("a step expected to complete at once waited for something")


def _http_problem(error: HTTPException) -> Response:
    status = HTTPStatus(error.status_code)
    return problem_response(
        problem(f"http-{status.value}", status.phrase, status.value, error.reason)
    )


def error_code(error: GraphQLError) -> str:
    """A stable code for a GraphQL error, for logs: its ``extensions.code`` where it has one
    (COST_LIMIT, UNAVAILABLE), else what kind of refusal or failure it is."""
    code = (error.extensions or {}).get("code")
    if isinstance(code, str):
        return code
    if is_unexpected(error):
        return "INTERNAL"
    if isinstance(error.original_error, PermissionError):
        return "FORBIDDEN"
    return "INVALID_REQUEST"
