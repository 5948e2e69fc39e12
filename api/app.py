"""The ASGI application: GraphQL at /graphql, health probes, bearer auth on every request."""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from api import exports, health, registries
from api.auth import Authenticator, CurrentPrincipal, refused_unless
from api.correlation import HEADER as CORRELATION_HEADER
from api.correlation import CorrelationIds
from api.events import router as events
from api.events.ingest import Ingestion
from api.graphql.context import Commands, get_context
from api.graphql.feed import ChangeFeed
from api.graphql.integrity import IntegrityVerifier
from api.graphql.router import ThreadedGraphQLRouter
from api.graphql.schema import build_schema
from api.graphql.subscriptions import SubscriptionRouter
from api.graphql.webhooks import WebhookAdmin
from api.limits import BodyGuard
from api.portal import mount_portal
from api.problems import problem, problem_response
from api.redaction import install_redaction
from api.telemetry import RequestTelemetry
from domain.application import Stagegate
from domain.values import RegistrySystem, Role
from projections.live import ChangeSource
from projections.readmodels import ReadModels


@dataclass(frozen=True)
class ApiConfig:
    graphiql: bool
    """Serve the GraphiQL IDE at /graphql (development only)."""
    graphql_max_depth: int
    graphql_max_aliases: int
    cors_origins: tuple[str, ...]
    """Browser origins (internal portals) allowed to call the API."""
    introspection: bool
    """Answer GraphQL introspection and suggest names in error messages."""
    max_body_bytes: int
    """Largest request body read on any route (413 past it)."""
    body_timeout_seconds: float
    """Longest a request body may take to arrive (408 past it)."""
    count: bool = False
    """Count requests, GraphQL operations and posted events for the metrics page."""
    metrics_route: bool = False
    """Serve the metrics page at ``/metrics``, to tokens of the roles in ``METRICS_ROLES``
    (rather than on a listen address of its own, or not at all)."""


@dataclass(frozen=True)
class Backends:
    """What the transport calls: the write side, the read side, and the checks."""

    stagegate: Stagegate
    commands: Commands
    """Runs the API's commands: ``stagegate`` itself, or something that groups them."""
    read_models: ReadModels
    ingestion: Ingestion
    webhooks: WebhookAdmin
    verify_integrity: IntegrityVerifier
    authenticate: Authenticator
    check_ready: Callable[[], None]
    export_history: Callable[[str], Iterator[str]]
    """A use case's history as the lines of ``stagegate audit export`` (NotFound if none)."""
    changes: ChangeSource | None = None
    """Follows the log for GraphQL subscriptions; None: no subscriptions are served."""
    metrics: MetricsPage | None = None
    registry_secret: Callable[[RegistrySystem, str], str | None] = lambda _system, _name: None
    """The secret a registry signs a model's webhooks with (None: none kept)."""


class MetricsPage(Protocol):
    """Renders the Prometheus text page (blocking: files and SQL)."""

    content_type: str

    def render(self) -> bytes: ...


METRICS_ROLES = frozenset({Role.ADMIN, Role.AUDITOR})
"""Who may scrape /metrics: operators' tokens, and auditors (who read everything and write
nothing), so a Prometheus can be given a token that writes nothing."""


NOT_TRACED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def _not_traced(scope: MutableMapping[str, Any]) -> bool:
    return scope.get("path") in NOT_TRACED_PATHS


def create_app(backends: Backends, config: ApiConfig) -> FastAPI:
    install_redaction()
    app = FastAPI(
        title="stagegate",
        summary="System of record for AI use cases from pilot to measured production value.",
        version="0.1.0",
        # FastAPI's own OpenTelemetry spans (no-ops until infra/tracing.py configures the
        # SDK): every request but the probes, which are frequent and say nothing. No
        # exception or validation logs through OpenTelemetry: those carry request input.
        telemetry={"exclude": _not_traced, "logs": False},
    )
    app.state.backends = backends
    app.state.authenticate = backends.authenticate
    app.state.check_ready = backends.check_ready
    app.state.graphiql = config.graphiql
    app.state.counting = config.count
    """Whether requests, operations and posted events are counted for /metrics."""
    # Each middleware added wraps those added before it: the body guard runs inside the
    # correlation ids (so its refusals carry one), and CORS, added below, outside both.
    app.add_middleware(
        BodyGuard, max_bytes=config.max_body_bytes, timeout_seconds=config.body_timeout_seconds
    )
    # Outside the body guard, so its refusals are counted and logged; inside the correlation
    # ids, so each log line has one (and an unexpected failure is seen as it passes through).
    app.add_middleware(RequestTelemetry, counting=config.count)
    app.add_middleware(CorrelationIds)

    @app.exception_handler(StarletteHTTPException)
    async def http_problem(request: Request, error: StarletteHTTPException) -> JSONResponse:
        # RFC 9457 problem details, so every HTTP error has one shape.
        titles = {
            401: "Unauthenticated",
            403: "Forbidden",
            404: "Not Found",
            405: "Method Not Allowed",
            503: "Service Unavailable",
        }
        document = problem(
            f"http-{error.status_code}",
            titles.get(error.status_code, "Error"),
            error.status_code,
            str(error.detail),
        )
        return problem_response(document, headers=dict(error.headers or {}))

    if config.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(config.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "X-Correlation-ID"],
            expose_headers=[CORRELATION_HEADER],
        )

    schema = build_schema(
        config.graphql_max_depth, config.graphql_max_aliases, introspection=config.introspection
    )
    graphql = ThreadedGraphQLRouter(
        schema,
        context_getter=get_context,
        graphql_ide="graphiql" if config.graphiql else None,
    )
    if backends.changes is not None:
        # Before the HTTP router: its own WebSocket route (whose context needs an HTTP
        # request's bearer header) is then never reached.
        feed = ChangeFeed(backends.changes)
        app.state.change_feed = feed
        app.router.add_event_handler("shutdown", feed.close)
        subscriptions = SubscriptionRouter(schema, allowed_origins=config.cors_origins)
        app.include_router(subscriptions, prefix="/graphql", include_in_schema=False)
    # POST /graphql has a lean route of its own (api.graphql.router); GET is the router's.
    app.router.routes.append(graphql.post_route("/graphql"))
    app.include_router(graphql, prefix="/graphql", include_in_schema=False)
    app.include_router(health.router)
    app.include_router(events.router)
    app.include_router(exports.router)
    app.include_router(registries.router)
    if config.metrics_route and backends.metrics is not None:
        _serve_metrics(app, backends.metrics)
    mount_portal(app)
    _document_event_schemas(app)
    return app


def _serve_metrics(app: FastAPI, page: MetricsPage) -> None:
    @app.get("/metrics", include_in_schema=False)
    async def metrics(principal: CurrentPrincipal) -> Response:
        refused = refused_unless(principal, METRICS_ROLES, "read /metrics")
        if refused is not None:
            return refused
        body = await run_in_threadpool(page.render)
        return Response(body, media_type=page.content_type)


def _document_event_schemas(app: FastAPI) -> None:
    """Add the schemas the events route refers to (its answers, each kind's data)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(events.openapi_components())
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
