"""Build the ASGI application from the wired services."""

from __future__ import annotations

import gc
import sys

from fastapi import FastAPI

from api.app import ApiConfig, Backends, create_app
from api.auth import Principal
from api.events.ingest import Ingestion
from infra import tracing
from infra.audit import history_lines, verify_chain
from infra.bootstrap import Services, bootstrap
from infra.deliveries import DeliveryLog, DeliveryRecord
from infra.group_commit import GroupCommit
from infra.logs import configure_logging
from infra.metrics import Exposition, PoolSampler, multiprocess_mode, process_exiting


def build_api(services: Services) -> FastAPI:
    def authenticate(presented: str) -> Principal | None:
        record = services.tokens.authenticate(presented)
        if record is None:
            return None
        return Principal(
            actor=record.actor,
            token_id=record.token_id,
            sources=record.sources,
            event_types=record.event_types,
        )

    settings = services.settings
    config = ApiConfig(
        graphiql=settings.environment == "development",
        graphql_max_depth=settings.graphql_max_depth,
        graphql_max_aliases=settings.graphql_max_aliases,
        cors_origins=tuple(settings.cors_origins),
        introspection=settings.introspection,
        max_body_bytes=settings.max_body_bytes,
        body_timeout_seconds=settings.body_timeout_seconds,
        count=settings.metrics != "off",
        metrics_route=settings.metrics == "token",
    )
    backends = Backends(
        stagegate=services.app,
        commands=GroupCommit(services.app),
        read_models=services.read_models,
        ingestion=Ingestion(
            services.app,
            DeliveryLog(services.database),
            refusal_record=lambda source, delivery_id, fingerprint, status, response: (
                DeliveryRecord(source, delivery_id, fingerprint, status, response, None, None)
            ),
            # Accepted events are in the read models the moment they are answered: their
            # append wrote the rows, or (left behind) this catches them up first.
            after_writes=services.read_models.refresh,
        ),
        webhooks=services.webhooks,
        registry_secret=services.registry_secrets.secret_of,
        verify_integrity=lambda use_case_id: verify_chain(services.app, use_case_id),
        export_history=lambda key: history_lines(services.app, key),
        authenticate=authenticate,
        check_ready=services.database.ping,
        changes=services.live,
        metrics=Exposition(services.database, services.read_models, services.webhooks),
    )
    return create_app(backends, config)


def app_from_environment() -> FastAPI:
    """The app of one server process when ``stagegate serve`` runs several
    (``STAGEGATE_WORKERS``): each has its own services, background threads and pools."""
    from infra.settings import Settings

    settings = Settings()
    configure_logging(settings)  # a process of its own: the parent's handlers are not here
    tracing.configure()  # before the first connection: SQL is traced on those made after
    services = bootstrap(settings)
    if services.settings.projections == "inline":
        services.read_models.start()
    if services.settings.webhooks == "inline":
        services.webhooks.start()
    app = build_api(services)
    app.router.add_event_handler("shutdown", services.close)
    if multiprocess_mode():
        pool_sampler = PoolSampler(services.database)
        pool_sampler.start()
        app.router.add_event_handler("shutdown", pool_sampler.stop)
        app.router.add_event_handler("shutdown", process_exiting)
    settle_interpreter()
    return app


SWITCH_INTERVAL_SECONDS = 0.0005
"""How long a thread runs before Python offers the interpreter to another (default 5 ms)."""


def settle_interpreter() -> None:
    """Call once a server process has built everything it keeps for its lifetime.

    What exists now (modules, the GraphQL schema, pools, caches' first contents) is frozen
    out of the collector's view, and young collections run ten times less often. A request
    allocates thousands of short-lived objects; at the default thresholds those still alive
    when a young collection runs (in flight in another thread) are promoted, and every few
    seconds a full collection traversed the whole heap for 100 ms or more: the slowest
    requests were the ones it stopped (bench/RESULTS.md).

    Threads take turns at the interpreter every 0.5 ms instead of 5: a large request being
    worked on in a worker thread then holds the event loop back by a fraction of a
    millisecond each time it needs the interpreter, not 5 ms (``/healthz`` p99 beside a 1 MiB
    GraphQL request: 114 ms at the default, 15 ms so; the large request took as long).
    """
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(7_000, middle, oldest)
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
