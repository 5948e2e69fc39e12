"""``stagegate registry``: the secrets model registries sign their webhooks with."""

from __future__ import annotations

import click

from domain.values import RegistrySystem
from infra.cli.common import writing_to_database


@click.group()
def registry() -> None:
    """Connect model registries (MLflow) to stagegate."""


@registry.command("secret")
@click.argument("system", type=click.Choice([RegistrySystem.MLFLOW.value]))
@click.argument("model")
@click.option("--by", "created_by", required=True, help="Who asks for it (an e-mail address).")
def registry_secret(system: str, model: str, created_by: str) -> None:
    """Make a new webhook secret for MODEL and print it (it cannot be shown again).

    Enter it as the secret of the registry's webhook for that model; the secret made before
    stops verifying. The model must be linked to a use case (linkExternalModel) for its
    events to be applied.
    """
    with writing_to_database() as services:
        secret = services.registry_secrets.rotate(RegistrySystem(system), model, created_by)
    click.echo(secret)
