"""Benchmark of the write path (issue 9): commands per second against what the database does.

    python bench/commands.py postgresql://postgres@127.0.0.1:5432/postgres [--seconds 15]
    python bench/commands.py sqlite [--seconds 15]

On PostgreSQL, in one run (rates here move ±30 % from day to day, so only the ratio counts):

1. **raw**: psycopg on one connection, ``INSERT`` of a ~400-byte JSON row and ``COMMIT``, one
   after the other: what one client gets from the database with nothing else. Into a
   temporary table, as the issue measured it: PostgreSQL writes no WAL for one, so its
   commit flushes nothing to disk; and (``durable``) into an ordinary table, whose commit
   waits for the WAL flush as every append's does;
2. **stagegate**: ``stagegate serve`` on a throwaway database with default settings (read
   models inline), and ``scorePriority`` mutations over HTTP GraphQL from 1, 4 and 16 clients,
   each with its own keep-alive connection and its own use cases (so they never race), every
   answer checked to be the updated ``UseCase``; then the same with ``STAGEGATE_WORKERS=2``.

Prints each rate and its ratio to both raw ones. With ``sqlite``, only the sequential client
on the embedded default (a file in a temporary folder).

The clients (``--client``): ``http`` (the default), the standard library's ``http.client``,
one keep-alive HTTP/1.1 connection per client, the clients spread over ``--client-processes``
processes (2 by default: 16 client threads in one interpreter take turns at its lock, and the
client then measures itself); or ``httpx``, as earlier runs did (one process, about 0.3-1 ms
of client CPU per request, in the same interpreter as the other clients).

    python bench/commands.py URL --ceiling [--rounds 3] [--seconds 15]

How close the HTTP GraphQL path itself comes to the raw rates, before any command: one
sequential client, then 16 clients, send ``GET /healthz`` (no token, no GraphQL), the query
``{ me }`` (the token looked up, one operation executed) and ``scorePriority`` in turn,
``--rounds`` times, to one server process; each with its ratio to both raw rates and the
server's CPU per request.

    python bench/commands.py URL --metrics-overhead [--rounds 3] [--seconds 15]

What counting for ``/metrics`` costs (issue 10): the sequential client against a server with
``STAGEGATE_METRICS=token`` and one with ``off`` (nothing counted), alternately, ``--rounds``
times each on a fresh database, in one run; prints every rate, the median of each, and their
ratio. A scrape is made after each ``token`` round, to check that the commands were counted.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ingest import throwaway_database  # noqa: E402
from serve import server, serving  # noqa: E402

USE_CASES_PER_CLIENT = 4
SCORE = """
mutation($input: ScorePriorityInput!) {
  scorePriority(input: $input) { __typename ... on UseCase { version } ... on Error { message } }
}
"""


def raw_rate(url: str, seconds: float, durable: bool = False) -> float:
    """INSERT + COMMIT of ~400-byte JSON rows, one connection, for ``seconds``: into a
    temporary table (no WAL, so no flush at commit), or with ``durable`` an ordinary one."""
    row = json.dumps({"note": "x" * 360, "n": 0})
    table = f"bench_raw_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url) as conn:
        kind = "" if durable else "TEMPORARY"
        conn.execute(f"CREATE {kind} TABLE {table} (id bigserial PRIMARY KEY, doc jsonb)")
        conn.commit()
        try:
            done, deadline = 0, time.perf_counter() + seconds
            started = time.perf_counter()
            while time.perf_counter() < deadline:
                conn.execute(f"INSERT INTO {table} (doc) VALUES (%s)", (row,))
                conn.commit()
                done += 1
            return done / (time.perf_counter() - started)
        finally:
            conn.execute(f"DROP TABLE {table}")
            conn.commit()


def prepare(url: str, clients: int) -> tuple[str, list[list[str]]]:
    """Use cases for every client, registered through the application; an editor token."""
    from domain import commands as c
    from domain.values import Role
    from infra.bootstrap import bootstrap
    from infra.settings import Settings
    from tests.builders import ctx

    services = bootstrap(Settings(database_url=url))
    try:
        keys = [
            [f"cmd-{n}-{i}-{uuid.uuid4().hex[:6]}" for i in range(USE_CASES_PER_CLIENT)]
            for n in range(clients)
        ]
        for key in (k for ks in keys for k in ks):
            services.app.execute(c.RegisterUseCase.parse({"key": key, "title": key}), ctx())
        services.read_models.catch_up()
        token = services.tokens.issue("bench.editor@example.com", Role.EDITOR).secret_token
    finally:
        services.close()
    return token, keys


def _input(key: str, n: int) -> dict[str, Any]:
    score = 1 + n % 5
    return {
        "key": key,
        "leverage": {"score": score, "rationale": f"leverage, round {n}"},
        "feasibility": {"score": score, "rationale": "feasible"},
        "readiness": {"score": score, "rationale": "ready"},
    }


def command_rate(
    base: str,
    token: str,
    keys: list[list[str]],
    seconds: float,
    client: str = "http",
    processes: int = 2,
) -> float:
    """Each client sends ``scorePriority`` to its own use cases, back to back (``client``:
    ``http`` over ``processes`` processes, or ``httpx`` in this one)."""
    if client == "httpx":
        return _httpx_rate(base, token, keys, seconds)
    done, elapsed = requests_answered(base, token, keys, seconds, processes)
    return done / elapsed


REQUESTS = ("GET /healthz", "{ me }", "scorePriority")
"""What the ``http`` clients may send: the command, or the path to it without one."""


def requests_answered(
    base: str,
    token: str,
    keys: list[list[str]],
    seconds: float,
    processes: int = 2,
    request: str = "scorePriority",
) -> tuple[int, float]:
    """``http`` clients, one per list of use-case keys, over ``processes`` processes, each
    sending ``request`` (one of ``REQUESTS``) back to back for ``seconds``, every answer
    checked: how many were answered, in how many seconds."""
    groups = [keys[n::processes] for n in range(min(processes, len(keys)))]
    context = multiprocessing.get_context("spawn")  # nothing of this process's state copied
    ready = context.Barrier(len(groups) + 1)
    results = context.Queue()
    workers = [
        context.Process(
            target=_http_clients,
            args=(base, token, group, seconds, ready, results, request),
            daemon=True,
        )
        for group in groups
    ]
    for worker in workers:
        worker.start()
    ready.wait(timeout=120)  # every client connected: the clock starts for all at once
    done, failures, elapsed = 0, [], 0.0
    for _ in workers:
        count, failed, took = results.get(timeout=seconds + 120)
        done, elapsed = done + count, max(elapsed, took)
        failures += failed
    for worker in workers:
        worker.join()
    if failures:
        raise RuntimeError(f"a {request} was not answered as it should be: {failures[0]}")
    return done, elapsed


def _http_clients(
    base: str,
    token: str,
    keys: list[list[str]],
    seconds: float,
    ready: Any,
    results: Any,
    request: str,
) -> None:
    """One client process: a thread per client, each with one keep-alive ``http.client``
    connection; puts (requests answered, failures, seconds taken) on ``results``."""
    url = urlsplit(base)
    counts = [0] * len(keys)
    failures: list[str] = []
    started = threading.Barrier(len(keys) + 1)
    deadline = [0.0]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def client(index: int) -> None:
        connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=60)
        connection.request("GET", "/healthz")
        connection.getresponse().read()
        started.wait()
        n = 0
        while time.perf_counter() < deadline[0]:
            failure = _ask(connection, headers, request, keys[index][n % len(keys[index])], n)
            if failure is not None:
                failures.append(failure)
                break
            n += 1
        counts[index] = n
        connection.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(keys))]
    for thread in threads:
        thread.start()
    ready.wait(timeout=120)
    began = time.perf_counter()
    deadline[0] = began + seconds
    started.wait()
    for thread in threads:
        thread.join()
    results.put((sum(counts), failures, time.perf_counter() - began))


ME = json.dumps({"query": "{ me { actorId } }"})


def _ask(
    connection: http.client.HTTPConnection,
    headers: dict[str, str],
    request: str,
    key: str,
    n: int,
) -> str | None:
    """``request`` (``n``-th of its client, to use case ``key``), and None once it is
    answered as it should be: the answer's start where it is not."""
    if request == "GET /healthz":
        connection.request("GET", "/healthz")
    else:
        body = ME
        if request == "scorePriority":
            body = json.dumps({"query": SCORE, "variables": {"input": _input(key, n)}})
        connection.request("POST", "/graphql", body=body, headers=headers)
    response = connection.getresponse()
    answer = response.read()
    answered = response.status == 200
    if answered and request != "GET /healthz":
        data = json.loads(answer).get("data") or {}
        if request == "{ me }":
            answered = bool(data.get("me"))
        else:  # the updated use case, not one of the error members
            answered = (data.get("scorePriority") or {}).get("__typename") == "UseCase"
    return None if answered else answer[:300].decode(errors="replace")


def _httpx_rate(base: str, token: str, keys: list[list[str]], seconds: float) -> float:
    """The httpx clients of earlier runs: a thread each, in this process."""
    counts = [0] * len(keys)
    failures: list[str] = []
    start = threading.Barrier(len(keys) + 1)
    deadline = [0.0]

    def client(index: int) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, headers=headers, timeout=60) as http:
            http.get("/healthz")
            start.wait()
            n = 0
            while time.perf_counter() < deadline[0]:
                key = keys[index][n % len(keys[index])]
                body = http.post(
                    "/graphql", json={"query": SCORE, "variables": {"input": _input(key, n)}}
                ).json()
                result = (body.get("data") or {}).get("scorePriority") or {}
                if result.get("__typename") != "UseCase":
                    failures.append(json.dumps(body)[:300])
                    return
                n += 1
            counts[index] = n

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(keys))]
    for thread in threads:
        thread.start()
    deadline[0] = time.perf_counter() + seconds
    started = time.perf_counter()
    start.wait()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError(f"a command was not answered with the use case: {failures[0]}")
    return sum(counts) / (time.perf_counter() - started)


COUNT_ONE_COMMAND = """
import time
from api import telemetry
from infra import metrics
n = 20_000
started = time.perf_counter()
for _ in range(n):
    telemetry.HTTP_REQUESTS.labels("POST", "/graphql", "200").inc()
    telemetry.HTTP_SECONDS.labels("POST", "/graphql").observe(0.004)
    telemetry.GRAPHQL_OPERATIONS.labels(telemetry.operation_label("Score", None), "ok").inc()
    metrics.observe_command("ScorePriority", None)
print((time.perf_counter() - started) / n * 1e6)
"""
"""What one GraphQL command's request counts, timed in a process of its own."""


def counting_cost() -> None:
    """Microseconds that counting adds to one command's request, in one process and in the
    multiprocess mode of several server processes (each count written to a file)."""
    for mode in ("one process", "multiprocess files"):
        env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
        with tempfile.TemporaryDirectory() as directory:
            if mode == "multiprocess files":
                env["PROMETHEUS_MULTIPROC_DIR"] = directory
            result = subprocess.run(
                [sys.executable, "-c", COUNT_ONE_COMMAND],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
        print(f"counting one command's request, {mode}: {float(result.stdout):.1f} µs", flush=True)


def metrics_overhead(
    server_url: str, rounds: int, seconds: float, port: int, client: str = "httpx"
) -> None:
    """Sequential commands with metrics on and off, alternately (module doc), by the httpx
    client of the figures in bench/RESULTS.md unless told otherwise."""
    counting_cost()
    rates: dict[str, list[float]] = {"token": [], "off": []}
    for _ in range(rounds):
        for mode in ("token", "off"):
            with _database(server_url) as url:
                token, keys = prepare(url, 1)
                with server(url, port, "inline", metrics=mode) as base:
                    rate = command_rate(base, token, keys, seconds, client)
                    counted = _commands_counted(base, url) if mode == "token" else None
            rates[mode].append(rate)
            note = f" ({counted:,.0f} ScorePriority counted)" if counted is not None else ""
            print(f"STAGEGATE_METRICS={mode:<5}: {rate:7,.0f} commands/s{note}", flush=True)
    on, off = statistics.median(rates["token"]), statistics.median(rates["off"])
    print(
        f"median of {rounds}: metrics on {on:,.0f}/s, off {off:,.0f}/s;"
        f" on/off = {on / off:.3f} (overhead {100 * (1 - on / off):+.1f} %)"
    )


def ceiling(server_url: str, rounds: int, seconds: float, port: int) -> None:
    """What the HTTP GraphQL path allows before any command (module doc): ``GET /healthz``,
    the query ``{ me }`` and ``scorePriority`` in turn, ``rounds`` times, from one sequential
    client and then from 16, to one server process, beside both raw rates of the same run;
    each with its rate, its ratio to raw and the server's CPU per request."""
    raw = raw_rate(server_url, seconds)
    durable = raw_rate(server_url, seconds, durable=True)
    print(f"raw INSERT+COMMIT: temporary table {raw:,.0f}/s, durable table {durable:,.0f}/s")
    rates: dict[tuple[int, str], list[float]] = {}
    with throwaway_database(server_url, False) as url:
        token, keys = prepare(url, 16)
        with serving(url, port) as (base, cpu):
            for _ in range(rounds):
                for clients in (1, 16):
                    for request in REQUESTS:
                        used = cpu()
                        done, took = requests_answered(
                            base, token, keys[:clients], seconds, request=request
                        )
                        rate = done / took
                        rates.setdefault((clients, request), []).append(rate)
                        print(
                            f"{clients:>2} client(s), {request:>13}: {rate:7,.0f}/s ="
                            f" {rate / raw:.3f}x raw, {rate / durable:.3f}x durable raw;"
                            f" server CPU {1000 * (cpu() - used) / done:.2f} ms a request",
                            flush=True,
                        )
    for (clients, request), measured in rates.items():
        rate = statistics.median(measured)
        print(
            f"median, {clients:>2} client(s), {request:>13}:"
            f" {rate / raw:.3f}x raw, {rate / durable:.3f}x durable raw"
        )


@contextlib.contextmanager
def _database(server_url: str) -> Iterator[str]:
    if server_url != "sqlite":
        with throwaway_database(server_url, False) as url:
            yield url
        return
    with tempfile.TemporaryDirectory() as folder:
        yield f"sqlite:///{folder}/stagegate.db"


def _commands_counted(base: str, url: str) -> float:
    """ScorePriority commands accepted, as a scrape of /metrics reports them."""
    from prometheus_client.parser import text_string_to_metric_families

    from domain.values import Role
    from infra.bootstrap import bootstrap
    from infra.settings import Settings

    services = bootstrap(Settings(database_url=url))
    try:
        auditor = services.tokens.issue("bench.auditor@example.com", Role.AUDITOR).secret_token
    finally:
        services.close()
    page = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {auditor}"}).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(page)
        for sample in family.samples
        if sample.name == "stagegate_commands_total"
        and sample.labels == {"command": "ScorePriority", "outcome": "accepted"}
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="a PostgreSQL server URL, or 'sqlite'")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--port", type=int, default=8780)
    parser.add_argument(
        "--client",
        choices=["http", "httpx", "both"],
        default="http",
        help="http.client over --client-processes processes, httpx in this process, or each",
    )
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument(
        "--metrics-overhead",
        action="store_true",
        help="the sequential client with STAGEGATE_METRICS=token and =off, alternately",
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--ceiling",
        action="store_true",
        help="GET /healthz, { me } and scorePriority in turn, 1 and 16 clients, beside raw",
    )
    args = parser.parse_args()
    clients_used = ["http", "httpx"] if args.client == "both" else [args.client]

    def rate_of(base: str, token: str, keys: list[list[str]], client: str) -> float:
        return command_rate(base, token, keys, args.seconds, client, args.client_processes)

    if args.ceiling:
        ceiling(args.url, args.rounds, args.seconds, args.port)
        return
    if args.metrics_overhead:
        client = "httpx" if args.client == "both" else args.client
        metrics_overhead(args.url, args.rounds, args.seconds, args.port, client)
        return
    if args.url == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite:///{folder}/stagegate.db"
            token, keys = prepare(url, 1)
            with server(url, args.port, "inline") as base:
                for client in clients_used:
                    rate = rate_of(base, token, keys, client)
                    print(f"sqlite, 1 client ({client}): {rate:,.0f} commands/s (target >= 400)")
        return
    raw = raw_rate(args.url, args.seconds)
    print(f"raw psycopg INSERT+COMMIT, temporary table: {raw:,.0f}/s", flush=True)
    durable = raw_rate(args.url, args.seconds, durable=True)
    print(f"raw psycopg INSERT+COMMIT, durable table: {durable:,.0f}/s", flush=True)
    for workers in (1, 2):
        for clients in (1, 4, 16) if workers == 1 else (16,):
            with throwaway_database(args.url, False) as url:
                token, keys = prepare(url, clients)
                with server(url, args.port, "inline", workers=workers) as base:
                    for client in clients_used:
                        rate = rate_of(base, token, keys, client)
                        print(
                            f"scorePriority, {clients:>2} clients ({client:<5}),"
                            f" STAGEGATE_WORKERS={workers}: {rate:7,.0f} commands/s"
                            f" = {rate / raw:.3f}x raw, {rate / durable:.3f}x durable raw",
                            flush=True,
                        )


if __name__ == "__main__":
    main()
