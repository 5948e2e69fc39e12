"""What every ``stagegate`` command needs: settings and services, with clear failures."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import click
from pydantic import ValidationError
from pydantic_settings import SettingsError

from infra.bootstrap import Services, bootstrap
from infra.schema import SchemaNotReady
from infra.settings import Settings


def settings_from_environment() -> Settings:
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


def open_services(settings: Settings, *, prepare_schema: bool = True) -> Services:
    try:
        return bootstrap(settings, prepare_schema=prepare_schema)
    except SchemaNotReady as error:
        raise click.ClickException(str(error)) from None
    except Exception as error:
        raise click.ClickException(
            f"cannot open the database {settings.redacted_database_url()}: {error}"
        ) from None


def services_from_environment(*, prepare_schema: bool = True) -> Services:
    return open_services(settings_from_environment(), prepare_schema=prepare_schema)


def where(settings: Settings) -> str:
    """The database as a person can find it: its URL without the password and, for a SQLite
    file, the absolute path, since a relative one depends on the folder a command ran in."""
    if settings.is_postgres:
        return settings.redacted_database_url()
    return f"{settings.redacted_database_url()} (the file {settings.sqlite_path.resolve()})"


@contextlib.contextmanager
def writing_to_database(*, prepare_schema: bool = True) -> Iterator[Services]:
    """Services for a command that writes, which says afterwards (on standard error, so that
    what it prints on standard output stays its answer) which database it wrote to, and
    whether that database was made just now: a command run from another folder than the
    server's otherwise writes, unseen, to a new ``./stagegate.db`` there."""
    settings = settings_from_environment()
    new_file = not settings.is_postgres and not settings.sqlite_path.exists()
    services = open_services(settings, prepare_schema=prepare_schema)
    try:
        yield services
    finally:
        services.close()
    click.echo(f"database: {where(settings)}", err=True)
    if new_file:
        click.echo(
            "  (no database was there: this command created it; set STAGEGATE_DATABASE_URL, "
            "or run it in the server's folder, to write to the server's)",
            err=True,
        )
