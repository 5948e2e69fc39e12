"""Benchmark of GraphQL subscriptions: commit-to-client latency, and how many one process holds.

    python bench/subscriptions.py postgresql://postgres@127.0.0.1:5432/postgres \
        [--ramp 1,100,500,1000,2000] [--changes 20] [--subscription use-case|lifecycle]
    python bench/subscriptions.py sqlite [...]

On a throwaway database (PostgreSQL) or a file in a temporary folder (SQLite), one use case
is registered and ``stagegate serve`` started (one process, default settings). Then, for each
step of ``--ramp``, connections are added until that many are open, each authenticated in its
``connection_init`` and subscribed (``useCaseChanged`` of the one use case, asking for its
key, version, stage, gate and ``updatedAt``; or ``lifecycle``), all from one asyncio client
process. A warm-up change is committed until every subscriber has been told of one (the
server says nothing else about when a subscription is held). Then ``--changes`` changes
(``raiseQualityAlert``) are committed one at a time over HTTP, each once every subscriber has
been told of the one before, and every receipt is timed.

Latency is the receipt time at the client (``time.time()`` when the client reads the
message) minus the event's own server timestamp (``updatedAt`` / ``entry.recordedAt``: the
server's clock when the command made the event, just before its append transaction began):
so it includes the commit itself, the wake-up, reading the log, loading the use case,
executing each subscriber's selection, sending, and the client's own reading of the
messages, which shares the machine with the server. Both clocks are this machine's.
Per step: p50/p99 over every receipt, p50/p99 of the last receipt of each change (the whole
fan-out), and the server's resident memory (VmRSS) with the connections open.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ingest import throwaway_database  # noqa: E402
from serve import stagegate, wait_ready  # noqa: E402

KEY = "live-bench"
QUERIES = {
    "use-case": (
        "subscription($key: String!) { useCaseChanged(key: $key) {"
        " key version stage updatedAt gate { next unmet { code } } } }"
    ),
    "lifecycle": "subscription { lifecycle { key entry { version type recordedAt } } }",
}
ALERT = """mutation($input: RaiseQualityAlertInput!) {
  raiseQualityAlert(input: $input) { __typename ... on UseCase { version } } }"""
CONNECT_AT_ONCE = 100
"""Connections opened concurrently while ramping (the listen backlog is 2,048)."""
WAIT_SECONDS = 120.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def database(target: str) -> Iterator[str]:
    if target == "sqlite":
        with tempfile.TemporaryDirectory(prefix="stagegate-bench-") as folder:
            yield f"sqlite:///{folder}/stagegate.db"
    else:
        with throwaway_database(target, keep=False) as url:
            yield url


def prepare(url: str) -> tuple[str, str]:
    """The use case, registered; an editor token (to change it) and an auditor's (to
    subscribe: it reads everything and writes nothing)."""
    from domain import commands as c
    from domain.metadata import Actor, CommandContext
    from domain.values import Channel, Role
    from infra.bootstrap import bootstrap
    from infra.settings import Settings

    services = bootstrap(Settings(database_url=url))
    try:
        editor = Actor(id="bench.editor@example.com", role=Role.EDITOR)
        services.app.execute(
            c.RegisterUseCase.parse({"key": KEY, "title": "Watched"}),
            CommandContext(actor=editor, channel=Channel.GRAPHQL, correlation_id="bench"),
        )
        issue = services.tokens.issue
        return (
            issue(editor.id, Role.EDITOR).secret_token,
            issue("bench.auditor@example.com", Role.AUDITOR).secret_token,
        )
    finally:
        services.close()


def server_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class Subscriber:
    """One connection, subscribed; timestamps each message as it is read."""

    def __init__(self, ws: ClientConnection, kind: str) -> None:
        self.ws = ws
        self.kind = kind
        self.received: list[tuple[float, dict[str, Any]]] = []
        self.arrived = asyncio.Event()
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            now = time.time()
            message = json.loads(raw)
            if message.get("type") != "next":
                raise RuntimeError(f"unexpected message: {message}")
            self.received.append((now, message["payload"]))
            self.arrived.set()

    def latest(self) -> tuple[float, int, float]:
        """(receipt time, version, the event's server time) of the last message."""
        received_at, payload = self.received[-1]
        if "errors" in payload:
            raise RuntimeError(payload["errors"])
        if self.kind == "use-case":
            changed = payload["data"]["useCaseChanged"]
            version, stamp = changed["version"], changed["updatedAt"]
        else:
            entry = payload["data"]["lifecycle"]["entry"]
            version, stamp = entry["version"], entry["recordedAt"]
        return received_at, version, datetime.fromisoformat(stamp).timestamp()


async def open_subscriber(base: str, token: str, kind: str) -> Subscriber:
    ws = await connect(
        base.replace("http://", "ws://") + "/graphql",
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        open_timeout=WAIT_SECONDS,
        max_queue=None,
    )
    await ws.send(json.dumps({"type": "connection_init", "payload": {"token": token}}))
    ack = json.loads(await ws.recv())
    if ack != {"type": "connection_ack"}:
        raise RuntimeError(f"not acknowledged: {ack}")
    payload: dict[str, Any] = {"query": QUERIES[kind]}
    if kind == "use-case":
        payload["variables"] = {"key": KEY}
    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
    return Subscriber(ws, kind)


async def run(args: argparse.Namespace, base: str, pid: int, editor: str, auditor: str) -> None:
    http = httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {editor}"})
    version = 1
    alerts = 0

    async def change() -> int:
        nonlocal alerts
        alerts += 1
        variables = {
            "input": {
                "key": KEY,
                "alertId": f"a{alerts}",
                "severity": "LOW",
                "description": "bench",
            }
        }
        answer = await http.post("/graphql", json={"query": ALERT, "variables": variables})
        result = answer.json()["data"]["raiseQualityAlert"]
        return int(result["version"])

    async def told_everyone(subscribers: list[Subscriber], wanted: int) -> bool:
        async def told(subscriber: Subscriber) -> None:
            while not subscriber.received or subscriber.latest()[1] < wanted:
                subscriber.arrived.clear()
                await subscriber.arrived.wait()

        try:
            await asyncio.wait_for(
                asyncio.gather(*(told(s) for s in subscribers)), timeout=WAIT_SECONDS
            )
        except TimeoutError:
            return False
        return True

    subscribers: list[Subscriber] = []
    rss_before = server_rss_kib(pid)
    print(f"server RSS with no connection: {rss_before / 1024:.0f} MiB", flush=True)
    rows = []
    for target in args.ramp:
        started = time.perf_counter()
        while len(subscribers) < target:
            batch = min(CONNECT_AT_ONCE, target - len(subscribers))
            subscribers += await asyncio.gather(
                *(open_subscriber(base, auditor, args.subscription) for _ in range(batch))
            )
        opened = time.perf_counter() - started
        # Held once told of a change committed after it was: warm up until each was told.
        while True:
            version = await change()
            pending = [s for s in subscribers if not s.received or s.latest()[1] < version]
            if await told_everyone(pending, version):
                break
        rss = server_rss_kib(pid)
        latencies: list[float] = []
        fan_outs: list[float] = []
        for _ in range(args.changes):
            version = await change()
            if not await told_everyone(subscribers, version):
                raise RuntimeError(f"not every subscriber was told of version {version}")
            receipts = []
            for subscriber in subscribers:
                received_at, told, stamp = subscriber.latest()
                if told != version:
                    raise RuntimeError(f"told {told}, expected {version}")
                receipts.append((received_at - stamp) * 1000)
            latencies += receipts
            fan_outs.append(max(receipts))
        row = {
            "subscribers": target,
            "p50": statistics.median(latencies),
            "p99": percentile(latencies, 0.99),
            "fan_out_p50": statistics.median(fan_outs),
            "fan_out_p99": percentile(fan_outs, 0.99),
            "rss_mib": rss / 1024,
            "opened_s": opened,
        }
        rows.append(row)
        print(
            f"{target:>6} subscribers: receipt p50 {row['p50']:.1f} ms, p99 {row['p99']:.1f} ms;"
            f" last receipt of a change p50 {row['fan_out_p50']:.1f} ms,"
            f" p99 {row['fan_out_p99']:.1f} ms; server RSS {row['rss_mib']:.0f} MiB"
            f" ({(rss - rss_before) / max(target, 1):.0f} KiB per connection);"
            f" connections opened in {opened:.1f} s",
            flush=True,
        )
    for subscriber in subscribers:
        await subscriber.ws.close()
    await http.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target", help="a PostgreSQL server URL, or 'sqlite'")
    parser.add_argument(
        "--ramp",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[1, 100, 500, 1000, 2000],
    )
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--subscription", choices=sorted(QUERIES), default="use-case")
    args = parser.parse_args()
    with database(args.target) as url:
        editor, auditor = prepare(url)
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        with stagegate(["serve"], url, port=str(port), workers="1") as process:
            wait_ready(base, process)
            print(f"{os.cpu_count()} cores; subscription: {args.subscription}", flush=True)
            asyncio.run(run(args, base, process.pid, editor, auditor))


if __name__ == "__main__":
    main()
