"""Traces, optional: OpenTelemetry, configured by the standard ``OTEL_*`` variables.

Spans are made through the OpenTelemetry API, which does nothing until an SDK is configured:
HTTP requests by FastAPI's own telemetry (``api/app.py``), GraphQL operations, commands and
posted CloudEvents by stagegate. ``pip install 'stagegate[otel]'`` adds the SDK, the OTLP
exporter and the SQL (psycopg) instrumentation; tracing is then on when an exporter is asked
for:

- ``OTEL_TRACES_EXPORTER`` ``otlp`` (or unset, with ``OTEL_EXPORTER_OTLP_ENDPOINT`` or
  ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` set) sends spans over OTLP/HTTP as those variables
  say; ``console`` prints them (for a look on a development machine); ``none`` is off.
- ``OTEL_SERVICE_NAME`` (default ``stagegate``), ``OTEL_RESOURCE_ATTRIBUTES``,
  ``OTEL_TRACES_SAMPLER`` and the rest are read by the SDK itself.
- ``OTEL_SDK_DISABLED=true`` turns it all off.

An incoming W3C ``traceparent`` header continues the caller's trace (the HTTP
instrumentation), and so does a CloudEvent's ``traceparent`` extension attribute
(``api/events``).
"""

from __future__ import annotations

import os

from opentelemetry import trace

_configured = False
_NOT_RECORDING = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)


def recording() -> bool:
    """Whether spans go anywhere: an SDK's tracer provider is installed (by ``configure``,
    or by whoever set one up in this process). Without one the API's spans are no-ops, but
    making them still cost a command and a GraphQL operation about 50 µs between them, a
    few per cent of a command's CPU, so their makers ask this first."""
    return not isinstance(trace.get_tracer_provider(), _NOT_RECORDING)


class TracingNotInstalled(RuntimeError):
    """Tracing was asked for by the environment, but the SDK is not installed."""


def requested() -> str | None:
    """The span exporter the environment asks for (``otlp`` or ``console``), or None."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        if exporter == "none":
            return None
        if exporter not in ("otlp", "console"):
            raise ValueError(
                f"OTEL_TRACES_EXPORTER={exporter!r}: stagegate can export spans by 'otlp'"
                " or 'console' (or 'none')"
            )
        return exporter
    endpoints = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    return "otlp" if any(os.environ.get(name) for name in endpoints) else None


def configure() -> bool:
    """Set up the SDK and the SQL instrumentation for this process if the environment asks
    for traces; returns whether it did. Call before the first database connection (SQL is
    traced on connections made after)."""
    global _configured
    exporter_name = requested()
    if exporter_name is None:
        return False
    if _configured:
        return True
    try:
        from opentelemetry import trace
        from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
        from opentelemetry.sdk.resources import OTELResourceDetector, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            ConsoleSpanExporter,
            SpanExporter,
        )
    except ImportError as error:
        raise TracingNotInstalled(
            f"the environment asks for traces ({exporter_name}), but OpenTelemetry's SDK is"
            f" not installed ({error.name}): pip install 'stagegate[otel]'"
        ) from None
    exporter: SpanExporter
    if exporter_name == "console":
        exporter = ConsoleSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()  # endpoint, headers, timeout: the OTEL_EXPORTER_OTLP_*
    # The service's name unless OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES say otherwise.
    resource = Resource({"service.name": "stagegate"}).merge(OTELResourceDetector().detect())
    if os.environ.get("OTEL_SERVICE_NAME"):
        resource = resource.merge(Resource({"service.name": os.environ["OTEL_SERVICE_NAME"]}))
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    # Statement text only, never parameters (they carry the values users wrote).
    PsycopgInstrumentor().instrument(enable_commenter=False)
    _configured = True
    return True
