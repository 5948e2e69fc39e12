"""A client of GraphQL over WebSocket (``graphql-transport-ws``) for the tests and the
benchmark: a real socket to a real server, one protocol message at a time."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

WAIT_SECONDS = 30.0
"""How long to wait for anything the server is expected to send (a wait, not a timing)."""


class GraphQLSocket:
    """One WebSocket connection to ``/graphql``, speaking graphql-transport-ws."""

    def __init__(self, base_url: str) -> None:
        url = base_url.replace("http://", "ws://", 1) + "/graphql"
        connection = connect(
            url,
            subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
            open_timeout=WAIT_SECONDS,
        )
        self.ws: ClientConnection = connection.__enter__()  # closed by close()

    def __enter__(self) -> GraphQLSocket:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.ws.close()

    def send(self, message: dict[str, Any]) -> None:
        self.ws.send(json.dumps(message))

    def receive(self, timeout: float = WAIT_SECONDS) -> dict[str, Any]:
        """The next message from the server."""
        message: dict[str, Any] = json.loads(self.ws.recv(timeout=timeout))
        return message

    def init(self, payload: dict[str, Any] | None) -> None:
        """Send ``connection_init`` (no payload at all if None); the reply is not read."""
        message: dict[str, Any] = {"type": "connection_init"}
        if payload is not None:
            message["payload"] = payload
        self.send(message)

    def authenticate(self, token: str) -> None:
        """``connection_init`` with the token; fails unless the server acknowledges it."""
        self.init({"authorization": f"Bearer {token}"})
        assert self.receive() == {"type": "connection_ack"}

    def subscribe(self, id: str, query: str, variables: dict[str, Any] | None = None) -> None:
        payload: dict[str, Any] = {"query": query}
        if variables is not None:
            payload["variables"] = variables
        self.send({"id": id, "type": "subscribe", "payload": payload})

    def subscribe_held(self, id: str, query: str, variables: dict[str, Any] | None = None) -> None:
        """Subscribe, and return once the server holds the subscription: it takes a
        connection's messages in order, and a subscribe once held, so the pong to a ping sent
        after it says so."""
        self.subscribe(id, query, variables)
        self.send({"type": "ping"})
        answer = self.receive()
        assert answer == {"type": "pong"}, answer

    def next(self, id: str) -> dict[str, Any]:
        """The payload (``data``, ``errors``) of the next ``next`` message, which must be
        for operation ``id``."""
        message = self.receive()
        assert (message.get("id"), message["type"]) == (id, "next"), message
        payload: dict[str, Any] = message["payload"]
        return payload

    def closed_with(self) -> tuple[int, str]:
        """Wait for the server to close the socket: its close code and reason (whatever
        else it sent first is passed over)."""
        received = None
        try:
            while True:
                self.ws.recv(timeout=WAIT_SECONDS)
        except ConnectionClosed as closed:
            received = closed.rcvd
        if received is None:
            raise AssertionError("the server did not send a close frame")
        return received.code, received.reason


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Wait (generously) until ``condition`` holds; fail naming ``what`` if it never does."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {WAIT_SECONDS} s for {what}")
        time.sleep(0.01)
