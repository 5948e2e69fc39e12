"""Issue 8: ``stagegate serve`` closes a connection whose request head does not arrive in time
(``STAGEGATE_HEADER_TIMEOUT_SECONDS``), so slow clients cannot hold connections forever."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.raw_http import DEADLINE_SECONDS, connect, read_until_closed, request_head

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _serving(folder: Path, **settings: str) -> Iterator[str]:
    """``stagegate serve`` (this checkout's) on SQLite in ``folder``; its base URL once up."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAGEGATE_")}
    env |= {f"STAGEGATE_{name.upper()}": value for name, value in settings.items()}
    env["PYTHONPATH"] = str(REPO)
    with (folder / "serve.log").open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "infra.cli", "serve", "--port", str(port)],
            cwd=folder,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while process.poll() is None and time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        else:
            pytest.fail("stagegate serve did not start:\n" + (folder / "serve.log").read_text())
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=DEADLINE_SECONDS)


def _closed_while_trickling(sock: socket.socket) -> bool:
    """Sends a header line every half second until the server closes the connection (True)
    or the deadline passes (False)."""
    sock.settimeout(0.5)
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        try:
            if sock.recv(65536) == b"":
                return True
        except TimeoutError:
            pass
        except ConnectionError:
            return True
        try:
            sock.sendall(b"X-Trickle: still here\r\n")
        except ConnectionError:
            return True
    return False


def test_a_request_head_that_never_completes_is_closed(tmp_path: Path) -> None:
    with _serving(tmp_path, header_timeout_seconds="1") as base_url, connect(base_url) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: stagegate.test\r\n")  # and no blank line

        assert read_until_closed(sock) == b""


def test_a_head_trickled_after_a_served_request_is_closed(tmp_path: Path) -> None:
    """uvicorn's keep-alive timer restarts with every byte; the head's deadline does not."""
    with _serving(tmp_path, header_timeout_seconds="1") as base_url, connect(base_url) as sock:
        sock.sendall(request_head("GET", "/healthz", {}))
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")

        assert _closed_while_trickling(sock)
