"""The one place that wires stagegate together from its settings."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from domain.application import Stagegate
from domain.usecase import UseCase
from domain.values import Role
from infra import metrics, schema
from infra.caches import CachedPolicy, CachedUseCases
from infra.database import Database, database_of
from infra.live import LogFollower
from infra.outbox import announce_gate_blocked
from infra.persistence import build_application, schema_lock
from infra.readmodels.service import ReadModelService
from infra.registries import RegistrySecrets
from infra.settings import Settings
from infra.tokens import IssuedToken, TokenStore
from infra.webhook_destinations import DestinationPolicy
from infra.webhooks import Webhooks


@dataclass
class Services:
    """Everything a process (API server, CLI command, worker) needs, built once."""

    settings: Settings
    app: Stagegate
    database: Database
    tokens: TokenStore
    read_models: ReadModelService
    webhooks: Webhooks
    registry_secrets: RegistrySecrets
    live: LogFollower
    """Follows the log for live subscribers (GraphQL subscriptions), once one subscribes."""

    def close(self) -> None:
        self.live.stop()
        self.webhooks.stop()
        self.read_models.stop()
        self.app.close()


def bootstrap(settings: Settings, *, prepare_schema: bool = True) -> Services:
    """Open the configured store; create its schema if it is missing and this role may
    (``prepare_schema``; without it nothing is checked or created)."""
    with schema_lock(settings):
        app = build_application(settings)
        database = database_of(app.factory.datastore)  # type: ignore[attr-defined]
        services = Services(
            settings=settings,
            app=app,
            database=database,
            tokens=TokenStore(database),
            read_models=ReadModelService(
                database,
                app,
                mode=settings.projections,
                rebuild_history_elsewhere=lambda: rebuild_history_in_a_process(settings),
            ),
            webhooks=Webhooks(
                database,
                key_of=lambda use_case_id: _key_of(app, use_case_id),
                destinations=DestinationPolicy(
                    allow_http=settings.webhook_allow_http,
                    allowed_networks=tuple(settings.webhook_allowed_networks),
                ),
                source=settings.webhook_source,
            ),
            registry_secrets=RegistrySecrets(database),
            live=LogFollower(
                database,
                app,
                database.table(app.recorder.events_table_name),  # type: ignore[attr-defined]
            ),
        )
        if settings.metrics != "off":
            app.observe_command = metrics.observe_command
        app.announce_gate_refusal = lambda key, refusal, actor: announce_gate_blocked(
            database, key, refusal, actor
        )
        events_table = database.table(app.recorder.events_table_name)  # type: ignore[attr-defined]
        app.policies = CachedPolicy(app, database, events_table)
        app.use_case_source = CachedUseCases(app)
        read_models = services.read_models
        app.linked_use_case = lambda system, name: next(
            iter(read_models.linked_use_cases(system.value, name)), None
        )
        # Every append writes its read-model rows with its events from here on.
        app.recorder.appends.read_models = services.read_models.inline  # type: ignore[attr-defined]
        app.recorder.appends.after_commit = services.live.appended  # type: ignore[attr-defined]
        try:
            if prepare_schema:
                schema.ensure(services)
        except BaseException:
            services.close()
            raise
    return services


def rebuild_history_in_a_process(settings: Settings) -> int:
    """``ReadModelService.rebuild_history`` in a process of its own (started afresh, so it
    inherits no connection or thread), for a rebuild that has more than one core to use."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(_rebuild_history, settings).result()


def _rebuild_history(settings: Settings) -> int:
    services = bootstrap(settings, prepare_schema=False)
    try:
        return services.read_models.rebuild_history()
    finally:
        services.close()


def _key_of(app: Stagegate, use_case_id: str) -> str | None:
    try:
        use_case: UseCase = app.repository.get(UUID(use_case_id))
    except AggregateNotFoundError:
        return None
    return use_case.state.key


def ensure_admin_token(services: Services) -> IssuedToken | None:
    """On a first start with no tokens at all, issue an admin token (returned to print once).

    Under the schema lock, so two servers starting together on one database issue one token.
    """
    with schema_lock(services.settings):
        if services.tokens.count() > 0:
            return None
        return services.tokens.issue("admin", Role.ADMIN, description="created on first start")
