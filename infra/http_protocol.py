"""uvicorn's HTTP/1.1 protocol with a deadline for each request head (slowloris).

uvicorn waits for a request head as long as the client keeps the connection open, and any
byte received cancels its keep-alive timer: a client sending a header line every few seconds
held a connection, and a few hundred such clients every connection, forever. Here a
connection is closed if a request head has not arrived in full within ``header_timeout``
seconds of the connection opening or of the previous response completing. Requests being
answered are not timed (the body has its own deadline, ``api.limits.BodyGuard``).

The protocol is uvicorn's ``httptools`` one (the C parser llhttp), not its pure-Python
``h11`` one, which parses each request in Python: small requests were 10-30 % faster over
it in alternating runs (bench/RESULTS.md).
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class _HeadDeadline(asyncio.Protocol):
    """The deadline, over a uvicorn HTTP protocol: one that starts a request's ``cycle`` once
    its head is in, and calls ``on_response_complete`` after each response (both of
    uvicorn's do)."""

    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    cycle: Any

    def __init__(self, *args: Any, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # the protocol's own (uvicorn's arguments)
        self.header_timeout = header_timeout
        self._head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._await_head()

    def data_received(self, data: bytes) -> None:
        cycle = self.cycle
        super().data_received(data)
        if self.cycle is not cycle:  # a request head arrived in full: its cycle began
            self._cancel_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        # Unless a request whose head is in (pipelined) is now being answered.
        if self.cycle is None or self.cycle.response_complete:
            self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def _await_head(self) -> None:
        self._cancel_deadline()
        if not self.transport.is_closing():
            self._head_deadline = self.loop.call_later(self.header_timeout, self._head_too_slow)

    def _cancel_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_too_slow(self) -> None:
        # Unless the connection was handed to another protocol (a WebSocket upgrade).
        if self.transport.get_protocol() is self and not self.transport.is_closing():
            self.transport.close()


class HeadTimeoutHttpToolsProtocol(_HeadDeadline, HttpToolsProtocol):
    pass


def http_protocol(header_timeout: float) -> type[asyncio.Protocol]:
    """What to pass as uvicorn's ``http``: a picklable factory (``STAGEGATE_WORKERS`` sends the
    server configuration to each process), which uvicorn calls as it would a class."""
    factory = functools.partial(HeadTimeoutHttpToolsProtocol, header_timeout=header_timeout)
    return cast(type[asyncio.Protocol], factory)
