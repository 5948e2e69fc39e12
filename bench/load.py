"""A fixed-rate HTTP load driver with its own latency record (asyncio, raw HTTP/1.1).

(httpx's connection pool was tried first: with a few hundred requests pending it spends its
time assigning them to connections, quadratically, and the driver became the bottleneck.)

Requests start on a fixed schedule (open loop: request i at start + i/rate) whatever the
server does, and each latency is counted from the request's *scheduled* start, so a server
that falls behind shows its queueing in the percentiles instead of slowing the driver down
(no coordinated omission). A response counts as an error unless it is HTTP 200 without a
GraphQL ``errors`` member.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Request:
    body: dict[str, Any]
    name: str = ""


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)
    """Milliseconds from scheduled start to the full response, counted requests only."""
    samples: list[tuple[str, float]] = field(default_factory=list)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    sent: int = 0
    elapsed: float = 0.0
    late_starts: int = 0
    """Requests the driver itself started more than 5 ms after their schedule."""


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan")}
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]

    return {"p50": statistics_median(ordered), "p95": at(0.95), "p99": at(0.99)}


def statistics_median(ordered: list[float]) -> float:
    n = len(ordered)
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


async def _connection(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(host, port)


async def _post(
    conn: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    host: str,
    path: str,
    headers: bytes,
    body: bytes,
) -> tuple[int, bytes]:
    """One HTTP/1.1 request on a kept-alive connection (uvicorn answers with Content-Length)."""
    reader, writer = conn
    writer.write(
        b"POST "
        + path.encode()
        + b" HTTP/1.1\r\nHost: "
        + host.encode()
        + b"\r\n"
        + headers
        + b"Content-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


async def _run(
    url: str,
    token: str,
    make: Callable[[], Request],
    rate: float,
    duration: float,
    warmup: float,
    connections: int,
) -> Result:
    """Requests are queued on schedule; ``connections`` kept-alive connections serve the queue
    (a request waiting for a free connection is waiting on the server, and that counts)."""
    import json
    from urllib.parse import urlsplit

    result = Result()
    parts = urlsplit(url)
    host, port, path = parts.hostname or "127.0.0.1", parts.port or 80, parts.path or "/"
    headers = f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n".encode()
    queue: asyncio.Queue[tuple[Request, float, bool] | None] = asyncio.Queue()
    loop = asyncio.get_running_loop()

    async def worker() -> None:
        conn = await _connection(host, port)
        while True:
            item = await queue.get()
            if item is None:
                conn[1].close()
                return
            request, due, counted = item
            try:
                status, content = await _post(
                    conn, host, path, headers, json.dumps(request.body).encode()
                )
                ok = status == 200 and b'"errors"' not in content
                detail = content[:300].decode(errors="replace")
            except (OSError, asyncio.IncompleteReadError, ValueError) as error:
                ok, detail = False, repr(error)
                conn = await _connection(host, port)
            latency = (loop.time() - due) * 1000
            if not counted:
                continue
            if ok:
                result.latencies.append(latency)
                result.samples.append((request.name, latency))
            else:
                result.errors += 1
                if len(result.error_samples) < 5:
                    result.error_samples.append(detail)

    workers = [asyncio.create_task(worker()) for _ in range(connections)]
    total = int((warmup + duration) * rate)
    start = loop.time() + 0.2
    for i in range(total):
        due = start + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.005:
            result.late_starts += 1
        counted = i >= warmup * rate
        queue.put_nowait((make(), due, counted))
        if counted:
            result.sent += 1
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    result.elapsed = duration
    return result


def run_fixed_rate(
    url: str,
    token: str,
    make: Callable[[], Request],
    rate: float,
    duration: float,
    warmup: float = 5.0,
    connections: int = 32,
) -> Result:
    """POST ``make()`` to ``url`` ``rate`` times a second for ``warmup + duration`` seconds."""
    result = asyncio.run(_run(url, token, make, rate, duration, warmup, connections))
    if result.late_starts:
        print(f"  (driver queued {result.late_starts} requests > 5 ms late)")
    return result
