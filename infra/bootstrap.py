"""The one place that wires stagegate together from its settings."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from domain.application import Stagegate
from domain.usecase import UseCase
from domain.values import Role
from infra import schema
from infra.database import Database, database_of
from infra.persistence import build_application, schema_lock
from infra.readmodels.service import ReadModelService
from infra.settings import Settings
from infra.tokens import IssuedToken, TokenStore
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

    def close(self) -> None:
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
            read_models=ReadModelService(database, app, mode=settings.projections),
            webhooks=Webhooks(database, key_of=lambda use_case_id: _key_of(app, use_case_id)),
        )
        try:
            if prepare_schema:
                schema.ensure(services)
        except BaseException:
            services.close()
            raise
    return services


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
