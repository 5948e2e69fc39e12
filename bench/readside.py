"""Benchmarks of the read side (issue 3, acceptance 5), on PostgreSQL.

    python bench/readside.py rebuild  URL                       # projections rebuilt from the log
    python bench/readside.py lag      URL --worker external     # projection lag at 100 commands/s
    python bench/readside.py use-case URL --rate 100     # useCase(key) + gate + history(last: 20)
    python bench/readside.py as-of    URL --key long-lived      # asOf on a 10,000-event use case
    python bench/readside.py use-cases URL --rate 20            # 50-row useCases pages
    python bench/readside.py portfolio URL --rate 1             # the portfolio, in full

``use-case`` and ``use-cases`` ask for the value fields of issue 11 too (cost by month, budget,
return on investment, the adoption trend, improvements); ``--without-value`` sends the queries
as they were before them (issue 3's), to compare.

URL names a database filled by ``bench/generate.py``. The HTTP benchmarks start
``stagegate serve`` on it (a subprocess, as in production) unless ``--server`` names a running
one, and drive it at a fixed rate with ``bench/load.py`` (latency counted from each request's
scheduled start, so a slow server cannot hide its queueing). Results print as one line per
measurement; bench/RESULTS.md records them with the command that produced them.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import psycopg  # noqa: E402
from load import Request, percentiles, run_fixed_rate  # noqa: E402
from serve import projection_worker, server  # noqa: E402

# --- shared helpers ----------------------------------------------------------------------------


def services(url: str, projections: str = "external", idle_timeout: str | None = None) -> Any:
    """The production wiring; ``idle_timeout`` overrides eventsourcing's
    idle_in_transaction_session_timeout (5 s by default; "0" = none)."""
    from infra import bootstrap as boot
    from infra import persistence
    from infra.settings import Settings

    if idle_timeout is not None:
        stock = persistence.eventsourcing_env

        def env(settings: Settings) -> dict[str, str]:
            return {**stock(settings), "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": idle_timeout}

        persistence.eventsourcing_env = env  # type: ignore[assignment]
        boot.build_application.__globals__["eventsourcing_env"] = env
    return boot.bootstrap(Settings(database_url=url, projections=projections))  # type: ignore[arg-type]


def fmt(values: dict[str, float], unit: str = "ms") -> str:
    return "  ".join(f"{k} {v:8.2f} {unit}" for k, v in values.items())


def issue_token(url: str, role: str = "auditor") -> str:
    from domain.values import Role

    s = services(url)
    try:
        return s.tokens.issue(f"bench-{role}@example.com", Role(role), "benchmark").secret_token
    finally:
        s.close()


@contextlib.contextmanager
def server_or_given(url: str, port: int, projections: str, given: str | None) -> Iterator[str]:
    """``stagegate serve`` on ``url``, or the running server ``given``."""
    if given:
        yield given
        return
    with server(url, port, projections) as base:
        yield base


def keys_of(url: str, where: str = "TRUE", limit: int | None = None) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            f"SELECT key FROM stagegate_use_case_summaries WHERE {where} ORDER BY key"
            + (f" LIMIT {limit}" if limit else "")
        ).fetchall()
    return [r[0] for r in rows]


def dataset(url: str) -> str:
    with psycopg.connect(url) as conn:
        events = conn.execute("SELECT MAX(notification_id) FROM stagegate_events").fetchone()[0]
        cases = conn.execute("SELECT COUNT(*) FROM stagegate_use_case_summaries").fetchone()[0]
    return f"{cases:,} use cases, {events:,} events"


def report(
    name: str, latencies: list[float], errors: int, sent: int, elapsed: float, target: float
) -> None:
    p = percentiles(latencies)
    verdict = "PASS" if p["p99"] < target and errors == 0 else "FAIL"
    judged = f"  -> p99 target < {target:g} ms: {verdict}" if target else "  (no target)"
    print(
        f"{name}: {sent} requests in {elapsed:.1f} s ({sent / elapsed:.1f}/s), {errors} errors\n"
        f"  {fmt(p)}  max {max(latencies):.1f} ms{judged}"
    )


# --- 1. rebuild ----------------------------------------------------------------------------------


def cmd_rebuild(args: argparse.Namespace) -> None:
    """Time ``ReadModelService.rebuild()`` (what ``stagegate projections rebuild`` runs), or
    with ``--separately`` each projection's rebuild alone, one after the other."""
    print(f"dataset: {dataset(args.url)}")
    s = services(args.url, idle_timeout=args.idle_timeout)
    rm = s.read_models
    head = rm.last_notification_id()
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
    try:
        if profiler:
            profiler.enable()
        if args.separately:
            rm.empty()
            for name, rebuild in (
                ("summaries", rm.rebuild_summaries),
                ("history", rm.rebuild_history),
            ):
                started = time.perf_counter()
                done = rebuild()
                took = time.perf_counter() - started
                print(f"  {name:<10} {done:,} events in {took:6.1f} s = {done / took:8,.0f}/s")
        else:
            started = time.perf_counter()
            projected = rm.rebuild()
            elapsed = time.perf_counter() - started
            print(
                f"rebuild(): {projected:,} event projections ({head:,} log events x "
                f"{len(rm.runners)}) in {elapsed:.1f} s = {head / elapsed:,.0f} log events/s"
            )
        if profiler:
            profiler.disable()
    finally:
        s.close()
    if profiler:
        profiler.dump_stats(args.profile)
        import pstats

        pstats.Stats(args.profile).sort_stats("tottime").print_stats(25)


# --- 2. projection lag -------------------------------------------------------------------------


class LagObserver(threading.Thread):
    """Polls the log head and the projections' positions; the lag of event n is the time
    from the first poll that sees n committed to the first that sees every projection past it.
    """

    def __init__(self, url: str, interval: float) -> None:
        super().__init__(daemon=True)
        self.url, self.interval = url, interval
        self.committed: dict[int, float] = {}
        self.visible: dict[int, float] = {}
        self.stop = threading.Event()
        self.polls = 0

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            head = seen = (
                conn.execute("SELECT MAX(notification_id) FROM stagegate_events").fetchone()[0] or 0
            )
            shown = seen
            query = (
                "SELECT (SELECT MAX(notification_id) FROM stagegate_events),"
                " (SELECT MIN(position) FROM stagegate_projection_positions"
                " WHERE projection IN ('summaries', 'history'))"
            )
            while not self.stop.is_set():
                head, position = conn.execute(query).fetchone()
                now = time.perf_counter()
                self.polls += 1
                for n in range(seen + 1, (head or 0) + 1):
                    self.committed[n] = now
                seen = max(seen, head or 0)
                for n in range(shown + 1, (position or 0) + 1):
                    self.visible[n] = now
                shown = max(shown, position or 0)
                time.sleep(self.interval)

    def lags(self) -> list[float]:
        return [
            (self.visible[n] - t) * 1000 for n, t in self.committed.items() if n in self.visible
        ]


def command_mix(
    rng: random.Random, keys: list[str], counter: list[int]
) -> tuple[Any, dict[str, Any]]:
    """A command any non-retired use case accepts, as a portal or an integration would send."""
    from domain import commands as c

    now = datetime.now(UTC) - timedelta(seconds=1)
    roll = rng.random()
    key = rng.choice(keys)
    if roll < 0.10:
        counter[0] += 1
        return c.RegisterUseCase, {
            "key": f"lag-{os.getpid()}-{counter[0]}",
            "title": "New idea",
            "businessUnit": "Finance",
        }
    if roll < 0.40:
        return c.RecordAdoption, {
            "key": key,
            "activeUsers": rng.randint(10, 100),
            "targetUsers": 100,
            "measuredAt": now,
        }
    if roll < 0.60:
        return c.RecordInferenceCost, {
            "key": key,
            "periodStart": now - timedelta(days=30),
            "periodEnd": now,
            "amount": "123.45",
            "currency": "EUR",
        }
    if roll < 0.75:
        return c.ConfirmReadiness, {
            "key": key,
            "item": "rollback_plan",
            "evidence": "runbook reviewed again",
        }
    if roll < 0.85:
        return c.AssignOwner, {
            "key": key,
            "role": "monitoring",
            "person": {"id": f"monitor{rng.randint(0, 19):03d}@example.com"},
        }
    if roll < 0.95:
        return c.ScorePriority, {
            "key": key,
            **{
                d: {"score": rng.randint(1, 5), "rationale": "quarterly review"}
                for d in ("leverage", "feasibility", "readiness")
            },
        }
    return c.RaiseQualityAlert, {
        "key": key,
        "severity": "low",
        "description": "sampled answers drifted",
    }


def cmd_lag(args: argparse.Namespace) -> None:
    from domain.metadata import Actor, CommandContext
    from domain.values import Channel, Role

    print(f"dataset: {dataset(args.url)}")
    keys = keys_of(args.url, "stage <> 'retired'")
    if args.worker == "external":
        keeping: contextlib.AbstractContextManager[Any] = projection_worker(args.url, args.poll)
    else:
        # A server keeping its read models current inline: its background thread picks up
        # writes made by other processes (here: this one).
        keeping = server(args.url, args.port, "inline")
    writer = services(args.url, "external")  # writes only; projects nothing itself
    app = writer.app
    observer = LagObserver(args.url, args.observe_every / 1000)
    rng = random.Random(1)
    counter = [0]
    durations: list[float] = []
    refused = [0]

    def execute(command_class: Any, fields: dict[str, Any]) -> None:
        ctx = CommandContext(
            actor=Actor(id="bench@example.com", role=Role.EDITOR),
            channel=Channel.GRAPHQL,
            correlation_id="bench-lag",
        )
        t0 = time.perf_counter()
        try:
            app.execute(command_class.parse(fields), ctx)
        except Exception:
            refused[0] += 1
        durations.append((time.perf_counter() - t0) * 1000)

    from concurrent.futures import ThreadPoolExecutor

    try:
        with keeping:
            time.sleep(3)  # let the worker start and catch up
            observer.start()
            with ThreadPoolExecutor(args.threads) as pool:
                start = time.perf_counter()
                n = int(args.rate * args.duration)
                for i in range(n):
                    due = start + i / args.rate
                    delay = due - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                    pool.submit(execute, *command_mix(rng, keys, counter))
            elapsed = time.perf_counter() - start
            time.sleep(2)  # let the projections finish
            observer.stop.set()
            observer.join()
    finally:
        writer.close()
    lags = observer.lags()
    missing = len(observer.committed) - len(lags)
    p = percentiles(lags)
    cmd = percentiles(durations)
    verdict = "PASS" if p["p99"] < 250 and missing == 0 else "FAIL"
    print(
        f"lag ({args.worker} worker): {n} commands in {elapsed:.1f} s ({n / elapsed:.1f}/s), "
        f"{refused[0]} refused, {len(observer.committed)} events committed, "
        f"{missing} never seen projected; observer polled every {args.observe_every} ms "
        f"({observer.polls} polls)\n"
        f"  command execute: {fmt(cmd)}\n"
        f"  lag commit->read model: {fmt(p)}  max {max(lags):.1f} ms"
        f"  -> p99 target < 250 ms: {verdict}"
    )


# --- 3-5. HTTP reads --------------------------------------------------------------------------

USE_CASE_QUERY_BEFORE_VALUE = """
query UseCaseWithHistory($key: String!) {
  useCase(key: $key) {
    key title stage version
    owners { business { id name } technical { id name } monitoring { id } }
    gate { stage next open policyVersion unmet { code message } }
    history(last: 20) {
      edges { cursor node { version type recordedAt businessTime actorId actorRole channel
                            reason correlationId payload } }
      pageInfo { hasNextPage endCursor }
    }
  }
}"""
"""Issue 3's query (``--without-value``)."""

VALUE_FIELDS = """
    costByMonth { month currency amount daysReported daysInMonth reportedInFull budget
                  withinBudget }
    monthlyBudget { amount currency }
    returnOnInvestment { currency statedAnnualValue annualisedInferenceCost monthsCounted
                         valueToCost proven }
    adoption(last: 12) { edges { node { activeUsers targetUsers rate measuredAt } } }
    improvements { baseline { metric unit value direction kind } afterState { value measuredAt }
                   change relativeChange counts }"""
"""Issue 11's value fields of a use case, as a page or a detail view asks for them."""

USE_CASE_QUERY = USE_CASE_QUERY_BEFORE_VALUE.replace(
    "    history(last: 20) {", VALUE_FIELDS.lstrip("\n") + "\n    history(last: 20) {"
)

USE_CASES_QUERY_BEFORE_VALUE = """
query Portfolio($after: String, $filter: UseCaseFilterInput) {
  useCases(first: 50, after: $after, filter: $filter) {
    edges { cursor node {
      key title businessUnit stage stageSince version updatedAt
      owners { business { id name } technical { id name } monitoring { id } }
      priority { leverage { score } feasibility { score } readiness { score } }
      gate { next open unmet { code message } }
      productionVersion latestAdoption { activeUsers targetUsers rate }
    } }
    pageInfo { hasNextPage endCursor }
  }
}"""
"""Issue 3's query (``--without-value``)."""

USE_CASES_QUERY = USE_CASES_QUERY_BEFORE_VALUE.replace(
    "latestAdoption { activeUsers targetUsers rate }",
    "latestAdoption { activeUsers targetUsers rate }" + VALUE_FIELDS.replace("\n", "\n    "),
)

PORTFOLIO_QUERY = """
query Portfolio {
  portfolio {
    stages { stage count averageDaysInStage }
    stuckPilots stuckAfterDays deployed deployedWithMeasuredValue measuredValueShare
    valueAgainstCost {
      currency estimatedAnnualValue annualInferenceCost
      proven { estimatedAnnualValue annualInferenceCost }
      unproven { estimatedAnnualValue annualInferenceCost }
    }
    funnel { stage reached medianDaysInStage }
  }
}"""

AS_OF_VERSION_QUERY = """
query AsOf($key: String!, $version: Int!) {
  useCase(key: $key) {
    version
    asOf(version: $version) {
      version stage updatedAt gate { next open policyVersion unmet { code message } }
      latestAdoption { activeUsers targetUsers } productionVersion
    }
  }
}"""

AS_OF_AT_QUERY = AS_OF_VERSION_QUERY.replace("$version: Int!", "$at: DateTime!").replace(
    "asOf(version: $version)", "asOf(at: $at)"
)


def graphql(query: str, variables: dict[str, Any], name: str = "") -> Request:
    return Request(body={"query": query, "variables": variables}, name=name)


def cpu_of_descendants() -> float:
    """CPU seconds (user + system) used so far by this process's descendants that still run
    (the server it started): on a shared machine, what a request costs the server, whatever
    else runs beside it."""
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    used: dict[int, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        parents[pid] = int(fields[1])
        used[pid] = (int(fields[11]) + int(fields[12])) / tick
    me, total = os.getpid(), 0.0
    for pid, seconds in used.items():
        ancestor = parents.get(pid)
        while ancestor and ancestor != me:
            ancestor = parents.get(ancestor)
        if ancestor == me:
            total += seconds
    return total


def run_http(
    args: argparse.Namespace, name: str, make: Any, target: float, connections: int = 32
) -> None:
    token = issue_token(args.url)
    print(f"dataset: {dataset(args.url)}")
    with server_or_given(args.url, args.port, args.projections, args.server) as base:
        cpu_before = cpu_of_descendants()
        result = run_fixed_rate(
            f"{base}/graphql",
            token,
            make,
            rate=args.rate,
            duration=args.duration,
            warmup=args.warmup,
            connections=connections,
        )
        server_cpu = cpu_of_descendants() - cpu_before
    if not args.server:
        every = result.sent + int(args.rate * args.warmup)  # the warm-up's requests too
        print(
            f"  server CPU: {server_cpu:.1f} s for {every} requests (warm-up included)"
            f" = {server_cpu / every * 1000:.2f} ms a request"
        )
    by_name: dict[str, list[float]] = {}
    for label, latency in result.samples:
        by_name.setdefault(label, []).append(latency)
    report(
        f"{name} at {args.rate}/s",
        result.latencies,
        result.errors,
        result.sent,
        result.elapsed,
        target,
    )
    if len(by_name) > 1:
        for label, values in sorted(by_name.items()):
            print(f"    {label:<22} n={len(values):<5} {fmt(percentiles(values))}")
    if result.error_samples:
        print("  first errors:", *result.error_samples[:3], sep="\n    ")


def cmd_use_case(args: argparse.Namespace) -> None:
    keys = keys_of(args.url)
    rng = random.Random(2)
    query = USE_CASE_QUERY_BEFORE_VALUE if args.without_value else USE_CASE_QUERY
    run_http(
        args,
        "useCase(key) + gate + history(last: 20)"
        + ("" if args.without_value else " + value fields"),
        lambda: graphql(query, {"key": rng.choice(keys)}),
        25,
    )


def cmd_use_cases(args: argparse.Namespace) -> None:
    keys = keys_of(args.url)
    owners = [f"engineer{i:03d}@example.com" for i in range(40)] + [
        f"finance.owner{i:03d}@example.com" for i in range(25)
    ]
    rng = random.Random(3)
    variants = [
        ("first page", lambda: {}),
        ("after a cursor", lambda: {"after": _cursor(rng.choice(keys))}),
        (
            "stage filter",
            lambda: {
                "filter": {
                    "stages": [
                        rng.choice(
                            [
                                "PROPOSED",
                                "PILOT",
                                "ACCEPTANCE",
                                "DEPLOYMENT",
                                "MEASUREMENT",
                                "SCALE",
                            ]
                        )
                    ]
                },
                "after": _cursor(rng.choice(keys)),
            },
        ),
        (
            "business unit",
            lambda: {"filter": {"businessUnit": rng.choice(["Finance", "Legal", "HR"])}},
        ),
        ("owner filter", lambda: {"filter": {"owner": rng.choice(owners)}}),
        (
            "unmet code filter",
            lambda: {
                "filter": {
                    "unmetCode": rng.choice(["PRIORITY_SCORED", "BASELINE", "ADOPTION", "DEPLOYED"])
                }
            },
        ),
        (
            "stuck 30 days",
            lambda: {"filter": {"stuckForDays": 30}, "after": _cursor(rng.choice(keys))},
        ),
    ]
    query = USE_CASES_QUERY_BEFORE_VALUE if args.without_value else USE_CASES_QUERY
    if args.total_count:
        query = query.replace("pageInfo {", "totalCount pageInfo {")

    def make() -> Request:
        label, variables = rng.choice(variants)
        return graphql(query, variables(), label)

    run_http(
        args,
        "useCases(first: 50)"
        + ("" if args.without_value else " + value fields")
        + (" + totalCount" if args.total_count else ""),
        make,
        50,
    )


def cmd_portfolio(args: argparse.Namespace) -> None:
    """The whole portfolio (funnel, value against cost), as a dashboard asks for it. No target
    was set for it: the figure is for the record."""
    # Two connections: at a request a second, each of 32 would wait longer than the server's
    # keep-alive (5 s) between its requests and be closed under the driver.
    run_http(args, "portfolio", lambda: graphql(PORTFOLIO_QUERY, {}), 0, connections=2)


def _cursor(key: str) -> str:
    from infra.readmodels.queries import encode_cursor

    return encode_cursor(key)


def cmd_as_of(args: argparse.Namespace) -> None:
    from domain.usecase import use_case_id

    with psycopg.connect(args.url) as conn:
        row = conn.execute(
            "SELECT version, registered_at, updated_at FROM stagegate_use_case_summaries"
            " WHERE key = %s",
            (args.key,),
        ).fetchone()
    if row is None:
        raise SystemExit(f"no use case {args.key}; generate one with --long-events")
    versions, first, last = row
    print(f"{args.key}: {versions:,} events ({use_case_id(args.key)})")
    in_process(args, versions)
    rng = random.Random(4)
    span = (last - first).total_seconds()

    def make() -> Request:
        if rng.random() < 0.5:
            return graphql(
                AS_OF_VERSION_QUERY,
                {"key": args.key, "version": rng.randint(1, versions)},
                "asOf(version:)",
            )
        at = first + timedelta(seconds=rng.uniform(0, span))
        return graphql(AS_OF_AT_QUERY, {"key": args.key, "at": at.isoformat()}, "asOf(at:)")

    run_http(args, f"asOf on {args.key} ({versions:,} events)", make, 50)


def in_process(args: argparse.Namespace, versions: int) -> None:
    """Loading a version, cold (no aggregate cache), as the asOf resolver does."""
    s = services(args.url)
    try:
        app = s.app
        app.repository.cache = None  # type: ignore[assignment]  # every load from the store
        rng = random.Random(5)
        samples = []
        for _ in range(args.repeat):
            v = rng.randint(1, versions)
            t0 = time.perf_counter()
            then = app.use_case(args.key, version=v)
            policy_version = s.read_models.policy_version_at(then.modified_on)
            app.policy_at(policy_version)
            samples.append((time.perf_counter() - t0) * 1000)
        print(
            "in process, use_case(key, version=random) + policy then, cold:"
            f" {fmt(percentiles(samples))}"
        )
    finally:
        s.close()


def cmd_explain(args: argparse.Namespace) -> None:
    """One query, in process (no HTTP server): its SQL statements and where its time goes."""
    import cProfile
    import pstats
    from collections import Counter

    import psycopg_pool
    from starlette.testclient import TestClient

    from infra.web import build_api

    s = services(args.url, "inline")
    token = s.tokens.issue(
        "bench-explain@example.com", __import__("domain.values").values.Role.AUDITOR
    ).secret_token
    keys = keys_of(args.url)
    rng = random.Random(6)
    statements: Counter[str] = Counter()
    checkouts = [0]
    real_execute = psycopg.Cursor.execute
    real_getconn = psycopg_pool.ConnectionPool.getconn

    def execute(self: Any, query: Any, params: Any = None, **kw: Any) -> Any:
        text = query if isinstance(query, str) else query.as_string(self.connection)
        statements[" ".join(text.split())[:110]] += 1
        return real_execute(self, query, params, **kw)

    def getconn(self: Any, *a: Any, **kw: Any) -> Any:
        checkouts[0] += 1
        return real_getconn(self, *a, **kw)

    queries = {
        "use-case": lambda: {"query": USE_CASE_QUERY, "variables": {"key": rng.choice(keys)}},
        "use-cases": lambda: {
            "query": USE_CASES_QUERY,
            "variables": {"after": _cursor(rng.choice(keys))},
        },
        "as-of": lambda: {
            "query": AS_OF_VERSION_QUERY,
            "variables": {"key": args.key, "version": rng.randint(1, args.max_version)},
        },
        "portfolio": lambda: {"query": PORTFOLIO_QUERY, "variables": {}},
    }
    make = queries[args.query]
    with TestClient(build_api(s)) as client:
        headers = {"Authorization": f"Bearer {token}"}
        for _ in range(20):  # warm up
            assert "errors" not in client.post("/graphql", json=make(), headers=headers).json()
        psycopg.Cursor.execute = execute  # type: ignore[method-assign]
        psycopg_pool.ConnectionPool.getconn = getconn  # type: ignore[method-assign]
        profiler = cProfile.Profile()
        samples = []
        for _ in range(args.n):
            body = make()
            t0 = time.perf_counter()
            profiler.enable()
            client.post("/graphql", json=body, headers=headers)
            profiler.disable()
            samples.append((time.perf_counter() - t0) * 1000)
        psycopg.Cursor.execute = real_execute  # type: ignore[method-assign]
        psycopg_pool.ConnectionPool.getconn = real_getconn  # type: ignore[method-assign]
    s.close()
    print(
        f"{args.query}: {args.n} sequential requests in process (profiled):"
        f" {fmt(percentiles(samples))}"
    )
    print(f"pool checkouts per request: {checkouts[0] / args.n:.1f}; SQL statements per request:")
    for text, count in statements.most_common():
        print(f"  {count / args.n:5.1f}  {text}")
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(args.top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("rebuild", help="rebuild the projections from the log, timed")
    p.add_argument("url")
    p.add_argument(
        "--separately", action="store_true", help="each projection alone, one after the other"
    )
    p.add_argument("--profile", metavar="FILE", help="cProfile the rebuild into FILE")
    p.add_argument("--idle-timeout", help="eventsourcing's idle-in-transaction timeout (s)")
    p.set_defaults(fn=cmd_rebuild)

    p = sub.add_parser("lag", help="projection lag under a steady command rate")
    p.add_argument("url")
    p.add_argument("--worker", choices=("external", "inline"), default="external")
    p.add_argument("--rate", type=float, default=100)
    p.add_argument("--duration", type=float, default=60)
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--poll", type=float, default=0.1, help="the worker's --poll")
    p.add_argument("--observe-every", type=float, default=5, help="observer poll (ms)")
    p.add_argument("--port", type=int, default=8765)
    p.set_defaults(fn=cmd_lag)

    for name, fn, rate in (
        ("use-case", cmd_use_case, 100),
        ("use-cases", cmd_use_cases, 20),
        ("as-of", cmd_as_of, 10),
        ("portfolio", cmd_portfolio, 1),
    ):
        p = sub.add_parser(name)
        p.add_argument("url")
        p.add_argument("--rate", type=float, default=rate)
        p.add_argument("--duration", type=float, default=60)
        p.add_argument("--warmup", type=float, default=5, help="seconds not counted")
        p.add_argument("--server", help="a running server's base URL (else one is started)")
        p.add_argument("--projections", choices=("inline", "external"), default="inline")
        p.add_argument("--port", type=int, default=8765)
        if name == "use-cases":
            p.add_argument("--total-count", action="store_true")
        if name in ("use-case", "use-cases"):
            p.add_argument(
                "--without-value",
                action="store_true",
                help="issue 3's query, without issue 11's value fields",
            )
        if name == "as-of":
            p.add_argument("--key", default="long-lived")
            p.add_argument("--repeat", type=int, default=50)
        p.set_defaults(fn=fn)

    p = sub.add_parser("explain", help="one query in process: SQL statements and profile")
    p.add_argument("url")
    p.add_argument(
        "--query", choices=("use-case", "use-cases", "as-of", "portfolio"), default="use-case"
    )
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--key", default="long-lived-10k")
    p.add_argument("--max-version", type=int, default=10_000)
    p.add_argument("--top", type=int, default=40)
    p.set_defaults(fn=cmd_explain)

    args = parser.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
