"""What ``/metrics`` says, in the Prometheus text format (prometheus-client).

Counters and histograms are counted where things happen (commands here, through the
application's observer; webhook deliveries in ``infra.webhooks``; requests, GraphQL operations
and posted CloudEvents in ``api.telemetry``). Figures that are a state of the database
(projection lag, webhook queue depth) are read at scrape time, so any server process answers
them alike and none is stale.

With ``STAGEGATE_WORKERS`` > 1 every server process counts into files of its own under
``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's multiprocess mode, on when that variable is
set before the library is imported: ``stagegate serve`` makes the directory and sets it before
starting the workers), and a scrape, answered by whichever process, sums them all
(``MultiProcessCollector``). Gauges of a process's own (its connection pool) are "livesum":
summed over the processes alive, whose files a process removes as it exits
(``mark_process_dead``).

``STAGEGATE_METRICS=token`` serves the page at ``/metrics`` on the API's port (``api.app``);
``address`` serves it, without a token, on a listen address of its own from a thread of the
``serve`` process (with several workers, their parent, which reads their files like any).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from domain.errors import DomainError, GateBlocked, StoreUnavailable, VersionConflict

if TYPE_CHECKING:  # both count here: importing them at run time would be a cycle
    from infra.database import Database
    from infra.readmodels.service import ReadModelService
    from infra.webhooks import Webhooks

log = logging.getLogger(__name__)

MULTIPROCESS_DIRECTORY = "PROMETHEUS_MULTIPROC_DIR"
POOL_SAMPLE_SECONDS = 5.0
"""How often a process of several writes its pool's figures for the others' scrapes."""

COMMANDS = Counter(
    "stagegate_commands_total",
    "Commands by type and how they ended: accepted, refused (a gate, a rule, validation, "
    "permission, not found), conflict (a lost race or stale expectedVersion), error (the store "
    "did not take it, or a failure).",
    ["command", "outcome"],
)
GATE_REFUSALS = Counter(
    "stagegate_gate_refusals_total",
    "Unmet requirements named by refused stage transitions, by requirement code (a refusal "
    "naming three requirements counts three).",
    ["requirement"],
)
WEBHOOK_ATTEMPTS = Counter(
    "stagegate_webhook_delivery_attempts_total",
    "Webhook delivery attempts by this process's deliverers: delivered (2xx), failed (retried) "
    "or refused (the URL is not allowed; not retried).",
    ["outcome"],
)
POOL = Gauge(
    "stagegate_db_pool_connections",
    "PostgreSQL connection pool of the server processes (summed over live processes): size "
    "(open connections), available (idle), max, waiting (requests waiting for one). Absent on "
    "SQLite, which has no pool.",
    ["state"],
    multiprocess_mode="livesum",
)


def observe_command(command_type: str, outcome: BaseException | None) -> None:
    """``Stagegate.observe_command``: count a command's final outcome."""
    COMMANDS.labels(command_type, command_outcome(outcome)).inc()
    if isinstance(outcome, GateBlocked):
        for requirement in outcome.unmet:
            GATE_REFUSALS.labels(requirement.code.value).inc()


def command_outcome(outcome: BaseException | None) -> str:
    if outcome is None:
        return "accepted"
    if isinstance(outcome, VersionConflict):
        return "conflict"
    if isinstance(outcome, StoreUnavailable) or not isinstance(outcome, DomainError):
        return "error"
    return "refused"


def count_webhook_attempt(outcome: str) -> None:
    """``delivered`` (2xx), ``failed`` (retried) or ``refused`` (its URL is not allowed)."""
    WEBHOOK_ATTEMPTS.labels(outcome).inc()


def sample_pool(database: Database) -> None:
    """Set this process's pool gauges from its pool now (nothing on SQLite)."""
    for name, value in database.pool_usage().items():
        POOL.labels(name.removeprefix("pool_").removeprefix("requests_")).set(value)


def multiprocess_mode() -> bool:
    return bool(os.environ.get(MULTIPROCESS_DIRECTORY))


@dataclass(frozen=True)
class ProjectionLag:
    projection: str
    events: int
    seconds: float
    """Age of the oldest event the projection has not applied; 0 when it is current."""


class DatabaseFigures(Collector):
    """The gauges read from the database when scraped: projection lag, webhook queue depth."""

    def __init__(self, read_models: ReadModelService, webhooks: Webhooks) -> None:
        self.read_models = read_models
        self.webhooks = webhooks

    def collect(self) -> Iterable[Metric]:
        lag_events = GaugeMetricFamily(
            "stagegate_projection_lag_events",
            "Events in the log that a read model has not applied yet.",
            labels=["projection"],
        )
        lag_seconds = GaugeMetricFamily(
            "stagegate_projection_lag_seconds",
            "Age of the oldest event a read model has not applied yet (0 when current).",
            labels=["projection"],
        )
        for lag in projection_lags(self.read_models):
            lag_events.add_metric([lag.projection], lag.events)
            lag_seconds.add_metric([lag.projection], lag.seconds)
        pending = GaugeMetricFamily(
            "stagegate_webhook_deliveries_pending",
            "Webhook deliveries not yet delivered (due now, or waiting to be retried).",
            value=self.webhooks.pending_count(),
        )
        return [lag_events, lag_seconds, pending]


def projection_lags(read_models: ReadModelService) -> Iterator[ProjectionLag]:
    head = read_models.last_notification_id()
    now = datetime.now(UTC)
    for runner in read_models.runners:
        position = runner.position()
        behind = max(head - position, 0)
        oldest = read_models.recorded_at_after(position) if behind else None
        seconds = max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0
        yield ProjectionLag(runner.name, behind, seconds)


class Everything(Collector):
    """What a scrape answers: what every server process counted (this one's registry, or in
    multiprocess mode every process's files), and the database's figures now."""

    def __init__(self, database: Database, read_models: ReadModelService, webhooks: Webhooks):
        self.database = database
        self.database_figures = DatabaseFigures(read_models, webhooks)

    def collect(self) -> Iterable[Metric]:
        sample_pool(self.database)
        if multiprocess_mode():
            # Read afresh at each scrape: processes come and go, and so do their files.
            counted = multiprocess.MultiProcessCollector(None)  # type: ignore[no-untyped-call]
            yield from counted.collect()  # type: ignore[no-untyped-call]
        else:
            yield from REGISTRY.collect()
        yield from self.database_figures.collect()


class Exposition:
    """Renders ``/metrics`` (``Everything``). Blocking (files, SQL): call it on a worker
    thread."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, database: Database, read_models: ReadModelService, webhooks: Webhooks):
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(Everything(database, read_models, webhooks))

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def serve_on(self, address: str) -> Callable[[], None]:
        """Serve the page on ``host:port`` (any path, no token: for a listen address only
        the monitoring network reaches), from a thread; returns what stops it."""
        host, _, port = address.rpartition(":")
        server, thread = start_http_server(int(port), host.strip("[]"), registry=self.registry)

        def stop() -> None:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)

        return stop


class PoolSampler:
    """In each of several server processes, writes its pool's figures every few seconds, so
    that a scrape answered by another process sums every pool, not only its own."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="pool-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                sample_pool(self.database)
            except Exception:
                log.warning("the connection pool could not be sampled", exc_info=True)
            if self._stop.wait(POOL_SAMPLE_SECONDS):
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def process_exiting() -> None:
    """A server process of several is exiting: its live gauges leave the sums."""
    if multiprocess_mode():
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
