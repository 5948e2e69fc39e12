"""``/graphql``: strawberry's FastAPI router, with each operation run whole on a worker thread.

Strawberry runs parsing, validation, variable coercion and synchronous resolvers on the event
loop, so one large request stalled every other, health probes included. Here the body is
decoded, and each operation executed (``Schema.execute_sync``: every resolver is a plain
function), in the thread pool: one thread hop per operation rather than one per field.
Strawberry's own refusals (malformed JSON, no query, a GET mutation) become problem documents.
"""

from __future__ import annotations

from contextvars import ContextVar
from http import HTTPStatus
from typing import Any

from cross_web import AsyncHTTPRequestAdapter, HTTPException
from graphql import GraphQLError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from strawberry.exceptions import MissingQueryError
from strawberry.fastapi import GraphQLRouter
from strawberry.http import GraphQLRequestData
from strawberry.http.parse_content_type import parse_content_type
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET

from api import telemetry
from api.graphql.context import Context
from api.graphql.reporting import is_unexpected
from api.limits import Refused, loads_json
from api.problems import problem, problem_response

_DECODED: ContextVar[tuple[bytes, Any] | None] = ContextVar("graphql_decoded_body", default=None)
"""This request's body and its value, decoded on a worker thread before strawberry asks."""


class ThreadedGraphQLRouter(GraphQLRouter[Context, None]):
    async def run(  # type: ignore[override]
        self, request: Request, context: Any = UNSET, root_value: Any = UNSET
    ) -> Response:
        try:
            return await super().run(request, context, root_value)
        except Refused as refused:
            return problem_response(refused.document)
        except HTTPException as error:
            status = HTTPStatus(error.status_code)
            return problem_response(
                problem(f"http-{status.value}", status.phrase, status.value, error.reason)
            )

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        content_type, _ = parse_content_type(request.content_type or "")
        if request.method != "POST" or "application/json" not in content_type:
            return await super().parse_http_body(request)
        body = await request.get_body()
        decoded = _DECODED.set((body, await run_in_threadpool(loads_json, body)))
        try:
            return await super().parse_http_body(request)  # its decode_json finds the value
        finally:
            _DECODED.reset(decoded)

    def decode_json(self, data: str | bytes) -> object:
        decoded = _DECODED.get()
        if decoded is not None and decoded[0] is data:
            return decoded[1]
        return loads_json(data)  # GET variables: bounded by the request line's size

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
        allowed_operation_types = OperationType.from_http(request_adapter.method)
        if not self.allow_queries_via_get and request_adapter.method == "GET":
            allowed_operation_types = allowed_operation_types - {OperationType.QUERY}
        try:
            result = await run_in_threadpool(
                self.schema.execute_sync,
                request_data.query,
                root_value=root_value,
                variable_values=request_data.variables,
                context_value=context,
                operation_name=request_data.operation_name,
                allowed_operation_types=allowed_operation_types,
                operation_extensions=request_data.extensions,
            )
        except CannotGetOperationTypeError as e:
            raise HTTPException(400, e.as_http_error_reason()) from e
        except InvalidOperationTypeError as e:
            raise HTTPException(400, e.as_http_error_reason(request_adapter.method)) from e
        except MissingQueryError as e:
            raise HTTPException(400, "No GraphQL query found in the request") from e
        operation = telemetry.operation_label(request_data.operation_name, request_data.query)
        codes = [error_code(e) for e in result.errors or ()]
        telemetry.graphql_operation(operation, codes, counting=request.app.state.counting)
        return result


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
