"""Benchmark of issue 8: ``/healthz`` stays quick while the largest requests are served.

    python bench/edge.py postgresql://postgres@127.0.0.1:5432/postgres [--seconds 20]

Creates a throwaway database, records a use case with a 3,000-event history (adoption
measurements) and one in production, starts ``stagegate serve`` on it (one process, as in
production), then, for each heavy request below, one client sends it back to back for
``--seconds`` while a probe asks ``GET /healthz`` 20 times a second on a schedule (latency
counted from the scheduled start, so a stalled event loop shows). A first run with no heavy
client gives the baseline. The heavy requests, the largest or costliest each endpoint takes:

- ``graphql-1mib``: a ``recordEvaluation`` just under 1 MiB (variables holding ~19,000
  results; the command refuses past 200, after GraphQL has coerced them all);
- ``graphql-costliest``: on the 3,000-event use case, every expensive field the per-request
  budget allows: 3 ``integrity``, 20 ``asOf``, 20 ``history`` pages of 100;
- ``events-batch-500``: a batch of 500 valid CloudEvents (each appended);
- ``events-1mib``: one CloudEvent just under 1 MiB (an evaluation with ~19,000 results,
  refused).

Prints, per run, the probe's p50/p99/max and how many heavy requests were served (and their
median), for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ingest import throwaway_database  # noqa: E402
from load import percentiles  # noqa: E402
from serve import server  # noqa: E402

SOURCE = "https://ci.example.com/bench-edge"
LONG_KEY = "long-lived"
DEPLOYED_KEY = "in-production"
PROBE_RATE = 20.0


def prepare(url: str, history: int) -> tuple[str, str]:
    """The two use cases; an admin token and an integration token for SOURCE."""
    from domain import commands as c
    from domain.values import Role, Stage
    from infra.bootstrap import bootstrap
    from infra.settings import Settings
    from tests.builders import Journey

    services = bootstrap(Settings(database_url=url))
    try:
        Journey(services.app, DEPLOYED_KEY).register().reach(Stage.DEPLOYMENT)
        long_lived = Journey(services.app, LONG_KEY).register()
        for n in range(history - 1):
            long_lived.issue(c.RecordAdoption, active_users=n % 50, target_users=50)
        services.read_models.catch_up()
        admin = services.tokens.issue("bench.admin@example.com", Role.ADMIN).secret_token
        integration = services.tokens.issue(
            "ci@example.com", Role.INTEGRATION, sources=(SOURCE,)
        ).secret_token
    finally:
        services.close()
    return admin, integration


# --- the heavy requests ---------------------------------------------------------------------


def _evaluation_event(key: str, results: int) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"edge-{uuid.uuid4()}",
        "source": SOURCE,
        "type": "stagegate.evaluation.completed",
        "subject": key,
        "time": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
        "data": {
            "version": "v1",
            "results": [{"name": f"metric-{i}", "value": i / 7} for i in range(results)],
        },
    }


def _adoption_event(n: int) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"edge-{uuid.uuid4()}",
        "source": SOURCE,
        "type": "stagegate.adoption.measured",
        "subject": DEPLOYED_KEY,
        "data": {"activeUsers": n % 50, "targetUsers": 50},
    }


def _costliest_query() -> str:
    """Every expensive field the limits let one request hold: 30 aliases (the default
    STAGEGATE_GRAPHQL_MAX_ALIASES), so 3 integrity checks (the budget), then asOf and whole
    history pages, each within its own budget of 20."""
    fields = [f"i{n}: integrity {{ intact }}" for n in range(3)]
    fields += [f"a{n}: asOf(version: {1 + n * 199}) {{ version stage }}" for n in range(14)]
    fields += [
        f'h{n}: history(first: 100, after: "{_cursor(n * 100)}")'
        " { edges { node { version type payload } } }"
        for n in range(13)
    ]
    return f'{{ useCase(key: "{LONG_KEY}") {{ version {" ".join(fields)} }} }}'


def _cursor(version: int) -> str:
    """The history cursor after ``version`` (what the API hands out)."""
    return base64.urlsafe_b64encode(str(version).encode()).decode()


MAX_BODY = 1024 * 1024
"""The default STAGEGATE_MAX_BODY_BYTES."""


def _largest_below(limit: int, body_of: Callable[[int], bytes]) -> bytes:
    """The body with the most items that still fits within ``limit`` bytes."""
    low, high = 1, 100_000
    while low < high:
        middle = (low + high + 1) // 2
        if len(body_of(middle)) <= limit:
            low = middle
        else:
            high = middle - 1
    return body_of(low)


def heavy_requests(admin: str, integration: str) -> dict[str, Callable[[httpx.Client], int]]:
    graphql = {"Authorization": f"Bearer {admin}", "Content-Type": "application/json"}
    events = {"Authorization": f"Bearer {integration}"}

    def mutation(results: int) -> bytes:
        named = [{"name": f"metric-{i}", "value": i / 7} for i in range(results)]
        return json.dumps(
            {
                "query": "mutation($input: RecordEvaluationInput!) {"
                " recordEvaluation(input: $input) { __typename } }",
                "variables": {"input": {"key": DEPLOYED_KEY, "version": "v1", "results": named}},
            }
        ).encode()

    big_mutation = _largest_below(MAX_BODY, mutation)
    costliest = json.dumps({"query": _costliest_query()}).encode()
    big_event = _largest_below(
        MAX_BODY, lambda n: json.dumps(_evaluation_event(DEPLOYED_KEY, n)).encode()
    )
    counter = iter(range(10**9))

    def post(path: str, body: bytes, headers: dict[str, str]) -> Callable[[httpx.Client], int]:
        return lambda http: http.post(path, content=body, headers=headers).status_code

    def batch(http: httpx.Client) -> int:
        body = json.dumps([_adoption_event(next(counter)) for _ in range(500)]).encode()
        headers = {**events, "Content-Type": "application/cloudevents-batch+json"}
        return http.post("/v1/events", content=body, headers=headers).status_code

    return {
        "graphql-1mib": post("/graphql", big_mutation, graphql),
        "graphql-costliest": post("/graphql", costliest, graphql),
        "events-batch-500": batch,
        "events-1mib": post(
            "/v1/events", big_event, {**events, "Content-Type": "application/cloudevents+json"}
        ),
    }


# --- the probe ------------------------------------------------------------------------------


def run(base: str, seconds: float, heavy: Callable[[httpx.Client], int] | None) -> dict[str, Any]:
    stop = threading.Event()
    served: list[float] = []
    statuses: dict[int, int] = {}

    def heavy_client() -> None:
        assert heavy is not None
        with httpx.Client(base_url=base, timeout=120) as http:
            while not stop.is_set():
                started = time.perf_counter()
                status = heavy(http)
                served.append(time.perf_counter() - started)
                statuses[status] = statuses.get(status, 0) + 1

    thread = threading.Thread(target=heavy_client, daemon=True) if heavy else None
    if thread:
        thread.start()
        time.sleep(1.0)  # the heavy client is under way before the probe starts
    latencies: list[float] = []
    with httpx.Client(base_url=base, timeout=60) as http:
        http.get("/healthz")
        start = time.perf_counter()
        for i in range(int(seconds * PROBE_RATE)):
            due = start + i / PROBE_RATE
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            assert http.get("/healthz").status_code == 200
            latencies.append((time.perf_counter() - due) * 1000)
    stop.set()
    if thread:
        thread.join()
    figures = percentiles(latencies)
    return {
        "probe p50 ms": round(figures["p50"], 1),
        "probe p99 ms": round(figures["p99"], 1),
        "probe max ms": round(max(latencies), 1),
        "heavy served": len(served),
        "heavy median s": round(statistics.median(served), 3) if served else None,
        "heavy statuses": statuses,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("server_url", help="a PostgreSQL server the benchmark may create a db on")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--history", type=int, default=3000)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()
    with throwaway_database(args.server_url, args.keep) as url:
        admin, integration = prepare(url, args.history)
        with server(url, args.port, "inline") as base:
            print(f"{'baseline (no heavy client)':28} {run(base, args.seconds, None)}", flush=True)
            for name, heavy in heavy_requests(admin, integration).items():
                print(f"{name:28} {run(base, args.seconds, heavy)}", flush=True)


if __name__ == "__main__":
    main()
