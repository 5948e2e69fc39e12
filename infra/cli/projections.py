"""``stagegate projections``: run the read-model workers, rebuild them, see how far behind."""

from __future__ import annotations

import logging
import signal
import time
from types import FrameType

import click

from infra.cli.common import services_from_environment, where, writing_to_database


@click.group()
def projections() -> None:
    """Keep the read models (use-case lists, history, portfolio) current."""


@projections.command("run")
@click.option("--poll", default=0.1, show_default=True, help="Seconds between checks for events.")
def run(poll: float) -> None:
    """Project new events until stopped (SIGINT/SIGTERM). Several may run side by side."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    services = services_from_environment()
    read_models = services.read_models

    def stop(signum: int, frame: FrameType | None) -> None:
        read_models.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    click.echo(f"projecting events into {where(services.settings)}; stop with Ctrl-C")
    try:
        read_models.run_forever(poll_interval=poll)
    finally:
        services.close()


@projections.command("rebuild")
def rebuild() -> None:
    """Empty the read models and project the whole event log again."""
    with writing_to_database() as services:
        started = time.perf_counter()
        projected = services.read_models.rebuild()
        elapsed = time.perf_counter() - started
    click.echo(f"rebuilt: {projected} event projections in {elapsed:.1f} s")


@projections.command("status")
@click.option("--faults", "shown", default=20, show_default=True, help="Faults to list.")
def status(shown: int) -> None:
    """Each projection's position against the newest event, and the events set aside."""
    services = services_from_environment()
    try:
        head = services.read_models.last_notification_id()
        for runner in services.read_models.runners:
            position = runner.position()
            click.echo(f"{runner.name:<10} at {position} of {head} ({head - position} behind)")
        count, faults = services.read_models.projection_faults(shown)
    finally:
        services.close()
    if not count:
        return
    click.echo(f"{count} events set aside (their read models lack them until a rebuild):")
    for fault in faults:
        click.echo(
            f"  {fault.projection}: version {fault.version} of {fault.aggregate_id}"
            f" (log position {fault.notification_id}): {fault.reason}"
        )
