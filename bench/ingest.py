"""Benchmark of ``POST /v1/events`` (issue 4, acceptance 7), on PostgreSQL.

    python bench/ingest.py postgresql://postgres@127.0.0.1:5432/postgres \\
        [--use-cases 10000] [--batches 200] [--singles 3000] [--clients 4]

Creates a throwaway database on that server, registers ``--use-cases`` use cases through the
application (the same commands a person issues), starts ``stagegate serve`` on it as a
subprocess (one uvicorn process, read models kept current inline, as in production), then:

1. **batches**: ``--clients`` clients post ``--batches`` batches of 100 events each
   (``application/cloudevents-batch+json``); the 100 events of a batch are for 100 distinct
   use cases (adoption measurements and inference cost reports, alternately);
2. **single events**: ``--clients`` clients post ``--singles`` events one per request
   (``application/cloudevents+json``), then one client posts ``--singles / 4`` of them
   sequentially (latency without queueing).

Every response is checked (each event accepted, never a 5xx), and at the end the number of
events in the store is compared with the number accepted. Latencies are from the request's
start to its full response, measured by the client. Results go to bench/RESULTS.md by hand,
with the command line that produced them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from serve import server  # noqa: E402

SOURCE = "https://ci.example.com/bench"
BATCH = "application/cloudevents-batch+json"
STRUCTURED = "application/cloudevents+json"


# --- the database and the server -----------------------------------------------------------------


@contextmanager
def throwaway_database(server_url: str, keep: bool) -> Iterator[str]:
    name = f"stagegate_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    params = conninfo_to_dict(server_url)
    params["dbname"] = name
    url = "postgresql://{user}@{host}:{port}/{dbname}".format(
        user=params.get("user", "postgres"),
        host=params.get("host", "127.0.0.1"),
        port=params.get("port", 5432),
        dbname=name,
    )
    try:
        yield url
    finally:
        if keep:
            print(f"database kept: {url}")
        else:
            with psycopg.connect(server_url, autocommit=True) as admin:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


def prepare(url: str, use_cases: int) -> tuple[list[str], str]:
    """Register the use cases through the application; an integration token for SOURCE."""
    from domain import commands as c
    from domain.metadata import Actor, CommandContext
    from domain.values import Channel, Role
    from infra.bootstrap import bootstrap
    from infra.settings import Settings

    services = bootstrap(Settings(database_url=url, projections="inline"))
    try:
        editor = CommandContext(
            actor=Actor(id="bench.editor@example.com", role=Role.EDITOR),
            channel=Channel.GRAPHQL,
            correlation_id="bench-ingest-setup",
        )
        keys = [f"ingest-{n:06d}" for n in range(use_cases)]
        for key in keys:
            services.app.execute(
                c.RegisterUseCase.parse(
                    {"key": key, "title": f"Use case {key}", "businessUnit": "Operations"}
                ),
                editor,
            )
        services.read_models.refresh()
        token = services.tokens.issue(
            "ci@example.com", Role.INTEGRATION, "bench", sources=(SOURCE,)
        ).secret_token
    finally:
        services.close()
    return keys, token


def stored_events(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT COUNT(*) FROM stagegate_events").fetchone()
    assert row is not None
    return int(row[0])


# --- the events ---------------------------------------------------------------------------------


class Events:
    """Distinct events, each for the next use case in turn (so a batch of 100 spans 100)."""

    def __init__(self, keys: list[str]) -> None:
        self.keys = keys
        self.count = 0
        self.lock = threading.Lock()
        self.moment = datetime.now(UTC) - timedelta(days=1)

    def next(self) -> dict[str, Any]:
        with self.lock:
            n = self.count
            self.count += 1
        key = self.keys[n % len(self.keys)]
        time_ = (self.moment + timedelta(milliseconds=n)).isoformat().replace("+00:00", "Z")
        if n % 2:
            kind = "stagegate.cost.reported"
            data: dict[str, Any] = {
                "periodStart": (self.moment - timedelta(days=30)).isoformat(),
                "amount": f"{100 + n % 900}.50",
                "currency": "EUR",
            }
        else:
            kind = "stagegate.adoption.measured"
            data = {"activeUsers": 10 + n % 90, "targetUsers": 100}
        return {
            "specversion": "1.0",
            "id": f"bench-{n}",
            "source": SOURCE,
            "type": kind,
            "subject": key,
            "time": time_,
            "datacontenttype": "application/json",
            "data": data,
        }


# --- the load -----------------------------------------------------------------------------------


class Run:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.accepted = 0
        self.failures: list[str] = []
        self.lock = threading.Lock()

    def record(self, started: float, response: httpx.Response, events: int) -> None:
        took = (time.perf_counter() - started) * 1000
        ok = 0
        problem = None
        if response.status_code == 200:
            body = response.json()
            results = body.get("results", [body])
            ok = sum(1 for r in results if r.get("status") == "accepted")
            if ok != events:
                problem = json.dumps([r for r in results if r.get("status") != "accepted"][:1])
        else:
            problem = f"HTTP {response.status_code}: {response.text[:300]}"
        with self.lock:
            self.latencies.append(took)
            self.accepted += ok
            if problem:
                self.failures.append(problem)


def drive(
    base: str, token: str, requests: int, clients: int, body_of: Any, content_type: str, per: int
) -> tuple[Run, float]:
    """``clients`` threads, each with its own keep-alive connection, share ``requests`` posts."""
    run = Run()
    remaining = [requests]
    lock = threading.Lock()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": content_type}

    def client() -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=60) as http:
            while True:
                with lock:
                    if remaining[0] == 0:
                        return
                    remaining[0] -= 1
                content = json.dumps(body_of()).encode()
                started = time.perf_counter()
                run.record(started, http.post("/v1/events", content=content), per)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return run, time.perf_counter() - started


def quantiles(values: list[float]) -> str:
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    p50, p90, p99 = cuts[49], cuts[89], cuts[98]
    return f"p50 {p50:.1f} ms  p90 {p90:.1f} ms  p99 {p99:.1f} ms  max {max(values):.1f} ms"


def report(name: str, run: Run, elapsed: float, per: int) -> None:
    events = len(run.latencies) * per
    print(
        f"{name}: {len(run.latencies)} requests, {events} events in {elapsed:.1f} s = "
        f"{events / elapsed:,.0f} events/s ({len(run.latencies) / elapsed:,.1f} requests/s); "
        f"{run.accepted} accepted, {len(run.failures)} requests with a refusal or error"
    )
    print(f"  latency per request: {quantiles(run.latencies)}")
    for failure in run.failures[:3]:
        print(f"  e.g. {failure}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="a PostgreSQL server the benchmark may create a database on")
    parser.add_argument("--use-cases", type=int, default=10_000)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--singles", type=int, default=3_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--port", type=int, default=8799)
    parser.add_argument(
        "--projections",
        choices=("inline", "external", "none"),
        default="inline",
        help="read models kept by the server itself, by a separate worker process, or not at"
        " all (to see what ingestion alone costs)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()

    with throwaway_database(args.url, args.keep) as url:
        started = time.perf_counter()
        keys, token = prepare(url, args.use_cases)
        took = time.perf_counter() - started
        print(f"{len(keys):,} use cases registered in {took:.1f} s ({url})")
        events = Events(keys)
        before = stored_events(url)
        server_projections = "inline" if args.projections == "inline" else "external"
        worker = args.projections == "external"
        with server(url, args.port, server_projections, worker=worker) as base:
            # Warm up: the first requests compile validators and fill the pools.
            warm, _ = drive(
                base, token, 5, 1, lambda: [events.next() for _ in range(100)], BATCH, 100
            )
            run, elapsed = drive(
                base,
                token,
                args.batches,
                args.clients,
                lambda: [events.next() for _ in range(100)],
                BATCH,
                100,
            )
            report(f"batches of 100 ({args.clients} clients)", run, elapsed, 100)
            accepted = warm.accepted + run.accepted
            run, elapsed = drive(
                base, token, args.singles, args.clients, events.next, STRUCTURED, 1
            )
            report(f"single events ({args.clients} clients)", run, elapsed, 1)
            accepted += run.accepted
            run, elapsed = drive(base, token, args.singles // 4, 1, events.next, STRUCTURED, 1)
            report("single events (1 client, sequential)", run, elapsed, 1)
            accepted += run.accepted
        appended = stored_events(url) - before
        verdict = "the same" if appended == accepted else "NOT the same"
        print(f"events appended: {appended:,}; accepted answers: {accepted:,} ({verdict})")


if __name__ == "__main__":
    main()
