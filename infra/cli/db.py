"""``stagegate db``: create or upgrade the schema as its owner, grant a service role, see where
the schema stands, start a new migration."""

from __future__ import annotations

import click
import sqlalchemy.exc
from eventsourcing.persistence import PersistenceError

from infra import migrations, schema
from infra.bootstrap import Services
from infra.cli.common import services_from_environment, where
from infra.persistence import schema_lock


@click.group()
def db() -> None:
    """The database schema (run these as the role that owns it)."""


def _upgrade(services: Services) -> migrations.Status:
    """Run the migrations under the schema lock; a refusal becomes a clear CLI error."""
    try:
        with schema_lock(services.settings):
            return migrations.upgrade(services)
    except migrations.SchemaNotReady as error:
        raise click.ClickException(str(error)) from None
    except (PersistenceError, sqlalchemy.exc.DBAPIError) as error:
        reason = getattr(error, "orig", None) or error
        raise click.ClickException(
            f"cannot change the schema as this role: {str(reason).strip()} (run it as the"
            " schema's owner)"
        ) from None


def _report(services: Services, before: migrations.Status) -> None:
    database = where(services.settings)
    if before.is_current:
        click.echo(f"{database}: schema already at revision {before.head}")
    elif before.empty:
        click.echo(f"{database}: schema created at revision {before.head}")
    else:
        click.echo(f"{database}: ran {', '.join(before.pending)}; schema at revision {before.head}")


@db.command("upgrade")
def upgrade() -> None:
    """Create the schema on an empty database, or run the migrations an older one needs."""
    services = services_from_environment(prepare_schema=False)
    try:
        _report(services, _upgrade(services))
    finally:
        services.close()


@db.command("init")
@click.option(
    "--grant-to",
    "grant_to",
    default=None,
    metavar="ROLE",
    help="PostgreSQL role the service runs as: give it what stagegate needs, and no more.",
)
def init(grant_to: str | None) -> None:
    """Upgrade (as ``db upgrade``), make again what was dropped, and grant."""
    services = services_from_environment(prepare_schema=False)
    try:
        before = _upgrade(services)
        try:
            # Idempotent: on a current schema, what exists stays and what is missing is made.
            schema.create_tables(services)
        except PersistenceError as error:
            raise click.ClickException(
                f"cannot create the schema as this role: {error} (run it as the schema's owner)"
            ) from None
        _report(services, before)
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
    """Say where the schema stands against this release, and what an upgrade would run."""
    services = services_from_environment(prepare_schema=False)
    try:
        found = migrations.status(services)
    finally:
        services.close()
    click.echo(f"{where(services.settings)}: schema {found.describe()}")


@db.command("new-migration")
@click.argument("message")
def new_migration(message: str) -> None:
    """(For developers) write an empty migration after the newest, in infra/migrations."""
    click.echo(f"wrote {migrations.new_migration(message)}")
