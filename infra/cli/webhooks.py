"""``stagegate webhooks run``: deliver the outbox to webhook subscribers until stopped."""

from __future__ import annotations

import logging
import signal
from types import FrameType

import click

from infra.cli.common import services_from_environment, where


@click.group()
def webhooks() -> None:
    """Deliver notifications to webhook subscribers."""


@webhooks.command("run")
@click.option("--poll", default=0.5, show_default=True, help="Seconds between rounds when idle.")
def run(poll: float) -> None:
    """Fan out and deliver until stopped (SIGINT/SIGTERM); several may run side by side."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    services = services_from_environment()

    def stop(signum: int, frame: FrameType | None) -> None:
        services.webhooks.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    click.echo(f"delivering webhooks from {where(services.settings)}; stop with Ctrl-C")
    try:
        services.webhooks.run_forever(poll_interval=poll)
    finally:
        services.close()
