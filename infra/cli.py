"""The ``stagegate`` command: serve, tokens, demo data."""

from __future__ import annotations

import logging
import sys

import click
from pydantic import ValidationError
from pydantic_settings import SettingsError

from domain.errors import DomainError
from domain.values import Role
from infra.bootstrap import Services, bootstrap, ensure_admin_token
from infra.settings import Settings


def _settings() -> Settings:
    try:
        return Settings()
    except SettingsError as error:  # e.g. a list setting that is not JSON
        raise click.ClickException(f"invalid configuration: {error}") from None
    except ValidationError as error:
        problems = "; ".join(
            f"STAGEGATE_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in error.errors()
        )
        raise click.ClickException(f"invalid configuration: {problems}") from None


def _services(settings: Settings) -> Services:
    try:
        return bootstrap(settings)
    except Exception as error:
        raise click.ClickException(
            f"cannot open the database {settings.redacted_database_url()}: {error}"
        ) from None


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

    from infra.web import build_api

    settings = _settings()
    host = host or settings.host
    port = port or settings.port
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s"
    )
    services = _services(settings)
    issued = ensure_admin_token(services)
    if demo:
        _load_demo(services)
    base = f"http://{host}:{port}"
    click.echo(f"stagegate on {settings.redacted_database_url()} ({settings.environment} mode)")
    click.echo(
        f"  GraphQL   {base}/graphql"
        + (" (GraphiQL in a browser)" if settings.environment == "development" else "")
    )
    click.echo(f"  Health    {base}/healthz  {base}/readyz")
    if issued is not None:
        click.echo("\nFirst start: an admin token was created. It is shown only this once:\n")
        click.echo(f"  {issued.secret_token}\n")
    click.echo(
        "Authenticate every request with 'Authorization: Bearer <token>'; "
        "create more with 'stagegate token create --actor ID --role ROLE'."
    )
    sys.stdout.flush()
    uvicorn.run(build_api(services), host=host, port=port, log_level=settings.log_level)


@main.command()
def demo() -> None:
    """Load the demo portfolio into the configured database and exit."""
    services = _services(_settings())
    try:
        _load_demo(services)
    finally:
        services.close()


def _load_demo(services: Services) -> None:
    from infra.demo import load_demo

    try:
        keys = load_demo(services.app)
    except DomainError as error:
        click.echo(f"demo not loaded: {error.message}")
        return
    click.echo(f"demo portfolio loaded: {len(keys)} use cases ({', '.join(keys)})")


@main.group()
def token() -> None:
    """Manage API tokens."""


@token.command("create")
@click.option("--actor", required=True, help="Who holds the token (e.g. an e-mail address).")
@click.option(
    "--role",
    required=True,
    type=click.Choice([r.value for r in Role]),
    help="What the token may do.",
)
@click.option("--description", default=None, help="A note on what the token is for.")
@click.option("--source", "sources", multiple=True, help="CloudEvents source it may post as.")
@click.option("--type", "event_types", multiple=True, help="CloudEvents type it may post.")
def token_create(
    actor: str,
    role: str,
    description: str | None,
    sources: tuple[str, ...],
    event_types: tuple[str, ...],
) -> None:
    """Create a token and print it (it cannot be shown again)."""
    services = _services(_settings())
    try:
        issued = services.tokens.issue(actor, Role(role), description, sources, event_types)
    except ValidationError as error:
        raise click.ClickException(f"invalid --actor: {error.errors()[0]['msg']}") from None
    finally:
        services.close()
    click.echo(issued.secret_token)


@token.command("list")
def token_list() -> None:
    """List tokens (never their secrets)."""
    services = _services(_settings())
    try:
        for record in services.tokens.list():
            state = f"revoked {record.revoked_at:%Y-%m-%d}" if record.revoked_at else "active"
            click.echo(
                f"{record.token_id}  {record.role.value:<11} {record.actor_id:<32} {state}"
                + (f"  {record.description}" if record.description else "")
            )
    finally:
        services.close()


@token.command("revoke")
@click.argument("token_id")
def token_revoke(token_id: str) -> None:
    """Revoke a token by its id (the part after 'sgt_')."""
    services = _services(_settings())
    try:
        outcome = services.tokens.revoke(token_id)
    finally:
        services.close()
    if outcome is None:
        raise click.ClickException(f"no token has the id {token_id}")
    click.echo(f"revoked {token_id}" if outcome else f"{token_id} was already revoked")


if __name__ == "__main__":
    main()
