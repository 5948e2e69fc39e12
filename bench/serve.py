"""Starting stagegate for a benchmark, as separate processes the way it runs in production:
``stagegate serve`` and, where the read models are kept elsewhere, ``stagegate projections
run``. Every benchmark that drives HTTP starts its server here."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def stagegate(args: list[str], url: str, **settings: str) -> Iterator[subprocess.Popen[bytes]]:
    """``stagegate ARGS`` on ``url`` with ``STAGEGATE_<NAME>`` settings; stopped as Ctrl-C
    would stop it (killed if it takes over 15 s). Its stderr goes to a file (``stderr_of``
    reads it): a pipe nobody reads fills up, and the server then blocks on its next log line.
    """
    env = {
        **os.environ,
        "STAGEGATE_DATABASE_URL": url,
        "STAGEGATE_LOG_LEVEL": "warning",
        **{f"STAGEGATE_{name.upper()}": value for name, value in settings.items()},
    }
    with tempfile.NamedTemporaryFile(prefix="stagegate-bench-", suffix=".log") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "infra.cli", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        _logs[process.pid] = Path(log.name)
        try:
            yield process
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


_logs: dict[int, Path] = {}


def stderr_of(process: subprocess.Popen[bytes]) -> str:
    """What a process started by ``stagegate`` wrote to its stderr so far."""
    return _logs[process.pid].read_text(errors="replace")


def wait_ready(base: str, process: subprocess.Popen[bytes]) -> None:
    """Return once the server at ``base`` answers ``/readyz``; raise if it exits or takes
    more than two minutes."""
    deadline = time.monotonic() + 120
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {stderr_of(process)[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError("the server did not become ready")
        time.sleep(0.2)


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def projection_worker(url: str, poll: float | None = None) -> Iterator[None]:
    """A ``stagegate projections run`` worker keeping the read models current."""
    args = ["projections", "run", *(["--poll", str(poll)] if poll is not None else [])]
    with stagegate(args, url, projections="external") as process:
        print(f"worker: stagegate {' '.join(args)} (pid {process.pid})", flush=True)
        yield


@contextlib.contextmanager
def server(
    url: str,
    port: int,
    projections: str,
    *,
    worker: bool = False,
    workers: int | None = None,
    **settings: str,
) -> Iterator[str]:
    """``stagegate serve`` on ``url``, its base URL once every process answers.

    ``projections`` is the server's STAGEGATE_PROJECTIONS (``inline``: it keeps the read
    models itself); with ``worker``, a ``stagegate projections run`` runs beside it.
    ``workers`` is STAGEGATE_WORKERS (by default the environment's, else 1); ``settings``
    are further ``STAGEGATE_<NAME>`` values.
    """
    workers = workers or int(os.environ.get("STAGEGATE_WORKERS", "1"))
    base = f"http://127.0.0.1:{port}"
    with contextlib.ExitStack() as stack:
        proc = stack.enter_context(
            stagegate(
                ["serve"],
                url,
                port=str(port),
                projections=projections,
                workers=str(workers),
                **settings,
            )
        )
        if worker:
            stack.enter_context(projection_worker(url))
        wait_ready(base, proc)
        if workers > 1:
            # /readyz answers once one process listens; a driver's kept-alive connections
            # would all land on it if they connected before the others were up.
            time.sleep(5 * workers)
        print(
            f"server pid {proc.pid} ready on {base} (STAGEGATE_PROJECTIONS={projections},"
            f" STAGEGATE_WORKERS={workers}{', with a projection worker' if worker else ''})",
            flush=True,
        )
        yield base


@contextlib.contextmanager
def serving(url: str, port: int) -> Iterator[tuple[str, Callable[[], float]]]:
    """``stagegate serve`` (read models inline, one process), as ``serve.server`` starts it:
    its base URL once it answers, and a function giving the CPU seconds it has used so far."""
    base = f"http://127.0.0.1:{port}"
    with stagegate(["serve"], url, port=str(port), projections="inline", workers="1") as proc:
        wait_ready(base, proc)
        print(f"server pid {proc.pid} ready on {base} (STAGEGATE_PROJECTIONS=inline)", flush=True)

        def cpu() -> float:
            return cpu_seconds(proc.pid)

        yield base, cpu
