"""The ``stagegate`` command: serve, demo data, and the command groups of its modules."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Iterator

import click

from domain.errors import DomainError
from infra import tracing
from infra.bootstrap import Services, ensure_admin_token
from infra.cli.common import (
    open_services,
    settings_from_environment,
    where,
    writing_to_database,
)
from infra.settings import Settings
from infra.tokens import IssuedToken


@click.group()
def main() -> None:
    """stagegate: the system of record for AI use cases, from pilot to measured value."""


@main.command()
@click.option("--host", default=None, help="Interface to listen on [STAGEGATE_HOST].")
@click.option("--port", default=None, type=int, help="Port to listen on [STAGEGATE_PORT].")
@click.option("--demo", is_flag=True, help="Load the demo portfolio first (if not yet loaded).")
def serve(host: str | None, port: int | None, demo: bool) -> None:
    """Run the API server (GraphQL at /graphql)."""
    import uvicorn

    from infra.http_protocol import http_protocol
    from infra.logs import configure_logging, uvicorn_logging
    from infra.web import build_api, settle_interpreter

    settings = settings_from_environment()
    host = host or settings.host
    port = port or settings.port
    configure_logging(settings)  # redacted, whichever path serves below
    http = http_protocol(settings.header_timeout_seconds)
    # Configuration, not SQL dialect: which store was configured decides how many may serve.
    if settings.workers > 1 and not settings.is_postgres:
        raise click.ClickException(
            "STAGEGATE_WORKERS > 1 needs PostgreSQL: on SQLite one process serves (its "
            "writes go to one file one at a time)"
        )
    try:
        # Before the first connection: SQL is traced on connections made after.
        tracing.configure()
    except (tracing.TracingNotInstalled, ValueError) as error:
        raise click.ClickException(str(error)) from None
    services = open_services(settings)
    issued = ensure_admin_token(services)
    if demo:
        _load_demo(services)
    if settings.projections == "inline":
        try:
            services.read_models.catch_up()
        except Exception:
            # The service still starts and takes commands; the background projector retries,
            # and /readyz and the log say what is wrong.
            logging.getLogger(__name__).exception("the read models could not catch up at start")
        if settings.workers == 1:
            services.read_models.start()  # picks up writes made by other processes
    if settings.webhooks == "inline" and settings.workers == 1:
        services.webhooks.start()
    # Each worker process of several builds its own services (infra.web.app_from_environment);
    # this one keeps its own only to serve the metrics address, for them all.
    keeps_services = settings.workers == 1 or settings.metrics == "address"
    if not keeps_services:
        services.close()
    with contextlib.ExitStack() as stack:
        if keeps_services:
            stack.callback(services.close)
        shared = (
            stack.enter_context(_metrics_shared_by_processes()) if settings.workers > 1 else None
        )
        if settings.metrics == "address":
            stack.callback(_serve_metrics_address(services, settings.metrics_address))
        _banner(settings, host, port, issued, shared)
        if settings.workers > 1:
            uvicorn.run(
                "infra.web:app_from_environment",
                factory=True,
                workers=settings.workers,
                host=host,
                port=port,
                http=http,
                ws_max_size=settings.max_body_bytes,
                **uvicorn_logging(settings),
            )
            return
        app = build_api(services)
        settle_interpreter()
        uvicorn.run(
            app,
            host=host,
            port=port,
            http=http,
            # A WebSocket message is bounded as a request body is (1009 past it).
            ws_max_size=settings.max_body_bytes,
            **uvicorn_logging(settings),
        )


def _serve_metrics_address(services: Services, address: str) -> Callable[[], None]:
    """The metrics page on its own listen address (``STAGEGATE_METRICS=address``), served from
    a thread of this process (with several workers, the parent of them all: it sums their
    files); returns what stops it."""
    from infra.metrics import Exposition

    page = Exposition(services.database, services.read_models, services.webhooks)
    try:
        return page.serve_on(address)
    except OSError as error:
        raise click.ClickException(
            f"cannot serve metrics on STAGEGATE_METRICS_ADDRESS={address}: {error}"
        ) from None


def _banner(
    settings: Settings, host: str, port: int, issued: IssuedToken | None, shared: str | None
) -> None:
    base = f"http://{host}:{port}"
    click.echo(f"stagegate on {where(settings)} ({settings.environment} mode)")
    click.echo(
        f"  GraphQL   {base}/graphql"
        + (" (GraphiQL in a browser)" if settings.environment == "development" else "")
    )
    click.echo(f"  Health    {base}/healthz  {base}/readyz")
    if settings.metrics == "token":
        click.echo(f"  Metrics   {base}/metrics (admin or auditor token)")
    elif settings.metrics == "address":
        click.echo(f"  Metrics   http://{settings.metrics_address}/metrics (no token)")
    if shared is not None:
        workers = settings.workers
        click.echo(f"  Processes {workers} (STAGEGATE_WORKERS), metrics summed in {shared}")
    if issued is not None:
        click.echo("\nFirst start: an admin token was created. It is shown only this once:\n")
        click.echo(f"  {issued.secret_token}\n")
    click.echo(
        "Authenticate every request with 'Authorization: Bearer <token>'; "
        "create more with 'stagegate token create --actor ID --role ROLE'."
    )
    sys.stdout.flush()


@contextlib.contextmanager
def _metrics_shared_by_processes() -> Iterator[str]:
    """A directory for the worker processes' metric files (prometheus-client's multiprocess
    mode), set in the environment they inherit (before they import the library, as it needs)
    and removed when they are all gone. One an operator set (``PROMETHEUS_MULTIPROC_DIR``) is
    used as it is, and left in place."""
    from infra.metrics import MULTIPROCESS_DIRECTORY

    given = os.environ.get(MULTIPROCESS_DIRECTORY)
    if given:
        yield given
        return
    with tempfile.TemporaryDirectory(prefix="stagegate-metrics-") as directory:
        os.environ[MULTIPROCESS_DIRECTORY] = directory
        try:
            yield directory
        finally:
            del os.environ[MULTIPROCESS_DIRECTORY]


@main.command()
def demo() -> None:
    """Load the demo portfolio into the configured database and exit."""
    with writing_to_database() as services:
        _load_demo(services)


def _load_demo(services: Services) -> None:
    from infra.demo import load_demo

    try:
        keys = load_demo(services.app)
    except DomainError as error:
        click.echo(f"demo not loaded: {error.message}")
        return
    click.echo(f"demo portfolio loaded: {len(keys)} use cases ({', '.join(keys)})")


def _register_command_groups() -> None:
    from infra.cli import audit, db, projections, registries, tokens, webhooks

    main.add_command(db.db)
    main.add_command(tokens.token)
    main.add_command(audit.audit)
    main.add_command(projections.projections)
    main.add_command(webhooks.webhooks)
    main.add_command(registries.registry)


_register_command_groups()
