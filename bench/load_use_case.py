"""How long loading a long-lived use case takes, with and without snapshots (PostgreSQL).

    python bench/load_use_case.py postgresql://postgres@127.0.0.1:5432/postgres [events]

Creates a throwaway database, records one use case with N events (adoption measurements,
appended in batches), then times loading it cold (no aggregate cache) three ways: replaying
every event, from the latest snapshot, and historical versions (``asOf``).
"""

from __future__ import annotations

import statistics
import sys
import time
import uuid
from typing import Any

import psycopg
from psycopg import sql

from domain import commands as c
from domain.application import Stagegate
from domain.metadata import Actor, CommandContext
from domain.usecase import UseCase
from domain.values import Channel, Role
from infra.persistence import build_application, schema_lock
from infra.settings import Settings

CTX = CommandContext(
    actor=Actor(id="bench@example.com", role=Role.EDITOR),
    channel=Channel.CLI,
    correlation_id="bench",
)


def _timed(fn: Any, repeat: int = 30) -> tuple[float, float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def main(server_url: str, events: int) -> None:
    name = f"stagegate_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = server_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        settings = Settings(database_url=url, snapshot_interval=50)
        with schema_lock(settings):
            app = build_application(settings)
        key = "long-lived"
        app.execute(c.RegisterUseCase.parse({"key": key, "title": "Long-lived"}), CTX)
        use_case = app.use_case(key)
        while use_case.version < events:
            batch = min(500, events - use_case.version)
            for i in range(batch):
                use_case.record_adoption(i, 100, use_case.created_on, CTX.meta())
            app.save(use_case)
        print(f"{events} events stored")

        cold = Stagegate(
            {k: v for k, v in app.env.items() if k != "AGGREGATE_CACHE_MAXSIZE"},
            snapshot_interval=50,
        )

        def replay_all() -> None:
            aggregate = None
            for event in cold.events.get(use_case.id):
                aggregate = event.mutate(aggregate)  # type: ignore[attr-defined]
            assert isinstance(aggregate, UseCase)

        rows = [
            ("replay every event", _timed(replay_all, repeat=5)),
            ("load latest (snapshot + tail)", _timed(lambda: cold.use_case(key))),
            ("asOf version N/2", _timed(lambda: cold.use_case(key, version=events // 2))),
        ]
        for label, (p50, p95) in rows:
            print(f"{label:<32} p50 {p50:8.2f} ms   p95 {p95:8.2f} ms")
        cold.close()
        app.close()
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 10_000)
