"""What every ``stagegate`` command needs: settings and services, with clear failures."""

from __future__ import annotations

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
