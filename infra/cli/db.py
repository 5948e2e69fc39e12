"""``stagegate db``: create the schema as its owner, grant a service role, see its version."""

from __future__ import annotations

import click
from eventsourcing.persistence import PersistenceError

from infra import schema
from infra.cli.common import services_from_environment, where


@click.group()
def db() -> None:
    """The database schema (run these as the role that owns it)."""


@db.command("init")
@click.option(
    "--grant-to",
    "grant_to",
    default=None,
    metavar="ROLE",
    help="PostgreSQL role the service runs as: give it what stagegate needs, and no more.",
)
def init(grant_to: str | None) -> None:
    """Create (or bring up to date, or repair) every table, trigger and function; grant."""
    services = services_from_environment(prepare_schema=False)
    try:
        try:
            schema.create(services)  # idempotent: what exists stays, what is missing is made
        except PersistenceError as error:
            raise click.ClickException(
                f"cannot create the schema as this role: {error} (run it as the schema's owner)"
            ) from None
        click.echo(f"schema at version {schema.version(services)} (this release: {schema.VERSION})")
        if grant_to is not None:
            try:
                statements = schema.grant(services, grant_to)
            except ValueError as error:
                raise click.ClickException(str(error)) from None
            for statement in statements:
                click.echo(f"  {statement}")
            click.echo(f"granted to {grant_to}: append-only on the log, no DDL")
    finally:
        services.close()
    click.echo(f"database: {where(services.settings)}", err=True)


@db.command("status")
def status() -> None:
    """Print the schema version the database records, and this release's."""
    services = services_from_environment(prepare_schema=False)
    try:
        found = schema.version(services)
    finally:
        services.close()
    state = "current" if found == schema.VERSION else "needs 'stagegate db init'"
    click.echo(f"schema at version {found} (this release: {schema.VERSION}): {state}")
