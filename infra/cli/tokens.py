"""``stagegate token``: create, list and revoke API tokens."""

from __future__ import annotations

import click
from pydantic import ValidationError

from domain.values import Role
from infra.cli.common import services_from_environment, writing_to_database


@click.group()
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
    with writing_to_database() as services:
        try:
            issued = services.tokens.issue(actor, Role(role), description, sources, event_types)
        except ValidationError as error:
            raise click.ClickException(f"invalid --actor: {error.errors()[0]['msg']}") from None
    click.echo(issued.secret_token)


@token.command("list")
def token_list() -> None:
    """List tokens (never their secrets)."""
    services = services_from_environment()
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
    with writing_to_database() as services:
        outcome = services.tokens.revoke(token_id)
    if outcome is None:
        raise click.ClickException(f"no token has the id {token_id}")
    click.echo(f"revoked {token_id}" if outcome else f"{token_id} was already revoked")
