"""Benchmark of the model-registry adapters (issue 12), against single CloudEvents, on PostgreSQL.

    python bench/registries.py postgresql://postgres@127.0.0.1:5432/postgres \\
        [--use-cases 500] [--requests 1500] [--rounds 3] [--clients 4]

Creates a throwaway database on that server, registers ``--use-cases`` use cases through the
application (the same commands a person issues), each linked to an MLflow registered model
(with a webhook secret, and its version 1 registered) and to a SageMaker model package group;
issues an integration token for the CloudEvents source and one bound to ``aws.sagemaker``;
starts ``stagegate serve`` on it as a subprocess (one uvicorn process, read models kept current
inline, as in production). Then, with ``--clients`` client threads each on its own keep-alive
connection, three phases of ``--requests`` deliveries, one event each:

- **cloudevents**: ``POST /v1/events`` of single structured CloudEvents (adoption measurements
  and inference cost reports alternately), as ``bench/ingest.py``'s single-event phase;
- **mlflow**: ``POST /v1/registries/mlflow`` of signed ``model_version_alias.created``
  webhooks (alias ``staging`` set on ``MODEL/v1``, each delivery with its own delivery id and a
  fresh timestamp): each records a deployment to staging, which any stage accepts repeatedly;
- **sagemaker**: ``POST /v1/registries/sagemaker`` of EventBridge "SageMaker Model Package
  State Change" events, ``Completed``, each a new package version of its group: each registers
  a candidate version.

Every phase takes its use cases (models, groups) in turn, so consecutive requests are for
different use cases, as in ``bench/ingest.py``. Fairness: first a warm-up of every phase
(``--warm-up`` requests each, not counted in the rates), then ``--rounds`` rounds, the order of
the phases rotated each round (cloudevents, mlflow, sagemaker; then mlflow, sagemaker,
cloudevents; ...), so that each phase runs first, second and last once in three rounds. The
ratio of each adapter's rate to the CloudEvents rate is taken within each round; the median of
those is the figure reported.

Every response is checked: 200 with ``status: accepted`` for the event (anything else is
counted and shown), and at the end the number of events appended to the store is compared with
the number accepted. Latencies are from the request's start to its full response, measured by
the client. The server's CPU time per request (its process's user + system time over the phase,
from ``/proc``) tells the server's own work from waiting (on PostgreSQL, on the other cores'
load).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ingest import SOURCE, STRUCTURED, Events, stored_events, throwaway_database  # noqa: E402
from serve import serving  # noqa: E402

SAGEMAKER = "aws.sagemaker"
PHASES = ("cloudevents", "mlflow", "sagemaker")

Request = tuple[str, bytes, dict[str, str]]
"""A request to make: the path, the body, its headers (besides the connection's own)."""


# --- the use cases ------------------------------------------------------------------------------


class Setup:
    def __init__(self, keys: list[str], secrets: dict[str, str], tokens: dict[str, str]) -> None:
        self.keys = keys
        self.secrets = secrets
        """model name -> its MLflow webhook secret"""
        self.tokens = tokens
        """phase -> bearer token (MLflow sends none)"""


def model_of(key: str) -> str:
    return f"{key}-model"


def group_of(key: str) -> str:
    return f"{key}-group"


def prepare(url: str, use_cases: int) -> Setup:
    """Use cases linked to a model and a group each, through the application's commands."""
    from domain import commands as c
    from domain.metadata import Actor, CommandContext
    from domain.values import Channel, RegistrySystem, Role
    from infra.bootstrap import bootstrap
    from infra.settings import Settings

    services = bootstrap(Settings(database_url=url, projections="inline"))
    try:
        editor = CommandContext(
            actor=Actor(id="bench.editor@example.com", role=Role.EDITOR),
            channel=Channel.GRAPHQL,
            correlation_id="bench-registries-setup",
        )
        keys = [f"registry-{n:05d}" for n in range(use_cases)]
        secrets = {}
        for key in keys:
            model, group = model_of(key), group_of(key)
            for command in (
                c.RegisterUseCase.parse(
                    {"key": key, "title": f"Use case {key}", "businessUnit": "Operations"}
                ),
                c.LinkExternalModel.parse({"key": key, "system": "mlflow", "name": model}),
                c.LinkExternalModel.parse({"key": key, "system": "sagemaker", "name": group}),
                c.RegisterCandidateVersion.parse(
                    {"key": key, "version": {"label": f"{model}/v1", "model": f"models:/{model}/1"}}
                ),
            ):
                services.app.execute(command, editor)
                # A link is judged free from the read models: keep them current.
                services.read_models.refresh()
            secrets[model] = services.registry_secrets.rotate(
                RegistrySystem.MLFLOW, model, "bench.ops@example.com"
            )
        tokens = {
            "cloudevents": services.tokens.issue(
                "ci@example.com", Role.INTEGRATION, "bench", sources=(SOURCE,)
            ).secret_token,
            "sagemaker": services.tokens.issue(
                "eventbridge@example.com", Role.INTEGRATION, "bench", sources=(SAGEMAKER,)
            ).secret_token,
        }
    finally:
        services.close()
    return Setup(keys, secrets, tokens)


# --- the deliveries -----------------------------------------------------------------------------


class Deliveries:
    """The next request of each phase, each for the next use case in turn (thread-safe)."""

    def __init__(self, setup: Setup) -> None:
        self.setup = setup
        self.events = Events(setup.keys)
        self.lock = threading.Lock()
        self.counts = dict.fromkeys(PHASES, 0)

    def _next(self, phase: str) -> int:
        with self.lock:
            n = self.counts[phase]
            self.counts[phase] += 1
        return n

    def cloudevents(self) -> Request:
        body = json.dumps(self.events.next()).encode()
        headers = {
            "Authorization": f"Bearer {self.setup.tokens['cloudevents']}",
            "Content-Type": STRUCTURED,
        }
        return "/v1/events", body, headers

    def mlflow(self) -> Request:
        """A signed ``model_version_alias.created``: alias ``staging`` on ``MODEL/v1``, as
        ``mlflow/webhooks/delivery.py`` sends it (cf. tests/fixtures/registries/mlflow.py)."""
        n = self._next("mlflow")
        key = self.setup.keys[n % len(self.setup.keys)]
        model = model_of(key)
        body = json.dumps(
            {
                "entity": "model_version_alias",
                "action": "created",
                "timestamp": datetime.now(UTC).isoformat(),
                "data": {"name": model, "alias": "staging", "version": "1"},
            }
        ).encode()
        delivery_id = str(uuid.uuid4())
        sent = str(int(time.time()))
        signed = f"{delivery_id}.{sent}.".encode() + body
        digest = hmac.new(self.setup.secrets[model].encode(), signed, hashlib.sha256).digest()
        headers = {
            "Content-Type": "application/json",
            "X-MLflow-Delivery-Id": delivery_id,
            "X-MLflow-Timestamp": sent,
            "X-MLflow-Signature": f"v1,{base64.b64encode(digest).decode()}",
        }
        return "/v1/registries/mlflow", body, headers

    def sagemaker(self) -> Request:
        """A ``Completed`` package version, new for its group: version 1 on the first pass over
        the groups, 2 on the second... (cf. tests/fixtures/registries/sagemaker.py)."""
        n = self._next("sagemaker")
        key = self.setup.keys[n % len(self.setup.keys)]
        group = group_of(key)
        version = n // len(self.setup.keys) + 1
        arn = f"arn:aws:sagemaker:us-east-2:123456789012:model-package/{group}/{version}"
        now_ms = int(time.time() * 1000)
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "SageMaker Model Package State Change",
            "source": SAGEMAKER,
            "account": "123456789012",
            "time": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "region": "us-east-2",
            "resources": [arn],
            "detail": {
                "ModelPackageGroupName": group,
                "ModelPackageVersion": version,
                "ModelPackageArn": arn,
                "CreationTime": now_ms,
                "ModelPackageStatus": "Completed",
                "ModelPackageStatusDetails": {"ValidationStatuses": [], "ImageScanStatuses": []},
                "CertifyForMarketplace": False,
                "ModelApprovalStatus": "PendingManualApproval",
                "LastModifiedTime": now_ms,
            },
        }
        headers = {
            "Authorization": f"Bearer {self.setup.tokens['sagemaker']}",
            "Content-Type": "application/json",
        }
        return "/v1/registries/sagemaker", json.dumps(event).encode(), headers

    def of(self, phase: str) -> Callable[[], Request]:
        return {
            "cloudevents": self.cloudevents,
            "mlflow": self.mlflow,
            "sagemaker": self.sagemaker,
        }[phase]


# --- the server and the load ---------------------------------------------------------------------


class Run:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.accepted = 0
        self.failures: list[str] = []
        self.lock = threading.Lock()
        self.elapsed = 0.0
        self.server_cpu = 0.0

    def record(self, started: float, response: httpx.Response) -> None:
        took = (time.perf_counter() - started) * 1000
        problem = None
        ok = False
        if response.status_code == 200:
            body = response.json()
            ok = body.get("status") == "accepted"
            if not ok:
                problem = f"200 but not accepted: {json.dumps(body)[:300]}"
        else:
            problem = f"HTTP {response.status_code}: {response.text[:300]}"
        with self.lock:
            self.latencies.append(took)
            self.accepted += ok
            if problem:
                self.failures.append(problem)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed

    @property
    def cpu_ms(self) -> float:
        """The server's CPU time per request."""
        return self.server_cpu * 1000 / len(self.latencies)


def drive(
    base: str,
    cpu: Callable[[], float],
    requests: int,
    clients: int,
    next_request: Callable[[], Request],
) -> Run:
    """``clients`` threads, each with its own keep-alive connection, share ``requests`` posts."""
    run = Run()
    remaining = [requests]
    lock = threading.Lock()

    def client() -> None:
        with httpx.Client(base_url=base, timeout=60) as http:
            while True:
                with lock:
                    if remaining[0] == 0:
                        return
                    remaining[0] -= 1
                path, body, headers = next_request()
                started = time.perf_counter()
                run.record(started, http.post(path, content=body, headers=headers))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    cpu_before = cpu()
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    run.elapsed = time.perf_counter() - started
    run.server_cpu = cpu() - cpu_before
    return run


def percentiles(values: list[float]) -> tuple[float, float, float]:
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[94], cuts[98]


def line(name: str, run: Run) -> str:
    p50, p95, p99 = percentiles(run.latencies)
    return (
        f"{name:<21} {len(run.latencies):>6} requests in {run.elapsed:5.1f} s = "
        f"{run.rate:6.1f} events/s; p50 {p50:5.1f} ms  p95 {p95:5.1f} ms  p99 {p99:6.1f} ms"
        f"  max {max(run.latencies):6.1f} ms; server CPU {run.cpu_ms:4.1f} ms/request; "
        f"{run.accepted} accepted, "
        f"{len(run.failures)} refused or failed"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="a PostgreSQL server the benchmark may create a database on")
    parser.add_argument("--use-cases", type=int, default=500)
    parser.add_argument("--requests", type=int, default=1500, help="per phase and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warm-up", type=int, default=200, help="requests per phase, once")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--port", type=int, default=8797)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()

    with throwaway_database(args.url, args.keep) as url:
        started = time.perf_counter()
        setup = prepare(url, args.use_cases)
        took = time.perf_counter() - started
        print(
            f"{len(setup.keys):,} use cases registered and linked (an MLflow model with its "
            f"secret and v1, a SageMaker group each) in {took:.1f} s ({url})"
        )
        deliveries = Deliveries(setup)
        before = stored_events(url)
        accepted = 0
        failures: list[str] = []
        runs: dict[str, list[Run]] = {phase: [] for phase in PHASES}
        with serving(url, args.port) as (base, cpu):
            for phase in PHASES:
                warm = drive(base, cpu, args.warm_up, args.clients, deliveries.of(phase))
                accepted += warm.accepted
                failures += warm.failures
                print(line(f"warm-up {phase}", warm), flush=True)
            for round_ in range(args.rounds):
                order = PHASES[round_ % 3 :] + PHASES[: round_ % 3]
                print(f"round {round_ + 1} ({', '.join(order)}), {args.clients} clients:")
                for phase in order:
                    run = drive(base, cpu, args.requests, args.clients, deliveries.of(phase))
                    runs[phase].append(run)
                    accepted += run.accepted
                    failures += run.failures
                    print("  " + line(phase, run), flush=True)
                cloudevents = runs["cloudevents"][-1].rate
                print(
                    "  ratios to cloudevents: "
                    + ", ".join(
                        f"{p} {runs[p][-1].rate / cloudevents:.2f}"
                        for p in PHASES
                        if p != "cloudevents"
                    )
                )
        appended = stored_events(url) - before

    print(f"\nover {args.rounds} rounds, {args.clients} clients (median of the rounds' rates;")
    print("latency percentiles over every request of the phase's rounds):")
    print(
        "| phase | events/s (median) | rounds | p50 | p95 | p99 | server CPU per request"
        " (median) | ratio to cloudevents (median) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for phase in PHASES:
        rates = [run.rate for run in runs[phase]]
        latencies = [latency for run in runs[phase] for latency in run.latencies]
        p50, p95, p99 = percentiles(latencies)
        ratios = [
            run.rate / base_run.rate
            for run, base_run in zip(runs[phase], runs["cloudevents"], strict=True)
        ]
        ratio = "1" if phase == "cloudevents" else f"{statistics.median(ratios):.2f}"
        ratio += f" ({', '.join(f'{r:.2f}' for r in ratios)})" if phase != "cloudevents" else ""
        print(
            f"| {phase} | {statistics.median(rates):,.1f} | "
            f"{', '.join(f'{r:.0f}' for r in rates)} | {p50:.1f} ms | {p95:.1f} ms | "
            f"{p99:.1f} ms | {statistics.median(run.cpu_ms for run in runs[phase]):.1f} ms | "
            f"{ratio} |"
        )
    for failure in failures[:5]:
        print(f"  e.g. {failure}")
    verdict = "the same" if appended == accepted else "NOT the same"
    print(
        f"events appended: {appended:,}; accepted answers: {accepted:,} ({verdict}); "
        f"refused or failed: {len(failures)}"
    )


if __name__ == "__main__":
    main()
