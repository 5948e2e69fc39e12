"""A span per GraphQL operation, named as OpenTelemetry's conventions say
(``query UseCasePage``), under the HTTP request's span. Resolvers get none of their own:
a page of fifty use cases would be hundreds of spans, and the SQL spans below say where the
time went."""

from __future__ import annotations

from collections.abc import Iterator

from graphql import GraphQLError
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode
from strawberry.extensions import SchemaExtension

_tracer = trace.get_tracer("stagegate.graphql")
_NOT_RECORDING = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)
"""No SDK installed: the API's spans would be no-ops, yet cost about 20 µs to make."""


class OperationSpans(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        if isinstance(trace.get_tracer_provider(), _NOT_RECORDING):
            yield
            return
        with _tracer.start_as_current_span("graphql operation") as span:
            yield
            if not span.is_recording():
                return
            context = self.execution_context
            name = context.operation_name or "anonymous"
            try:
                kind = context.operation_type.value
            except (GraphQLError, RuntimeError, AttributeError):  # did not parse
                kind = "operation"
            span.update_name(f"{kind} {name}")
            span.set_attribute("graphql.operation.name", name)
            span.set_attribute("graphql.operation.type", kind)
            result = context.result
            errors = result.errors if result is not None else context.pre_execution_errors
            if errors:
                span.set_status(Status(StatusCode.ERROR, errors[0].message[:200]))
