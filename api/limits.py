"""What one request may send: its body's size and arrival time, and how deep its JSON nests."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import PROBLEM_JSON, problem

MAX_JSON_DEPTH = 64
"""Deepest nesting of JSON arrays and objects read (the outermost counts as 1). Nothing
stagegate takes nests past a handful of levels; parsing and validating deeper documents
recurses and can exhaust the stack."""


class Refused(Exception):
    """A request refused before it is read further, with the problem document to answer."""

    def __init__(self, document: dict[str, Any]) -> None:
        super().__init__(document["detail"])
        self.document = document


def too_large(detail: str) -> dict[str, Any]:
    return problem("payload-too-large", "Payload too large", 413, detail)


def loads_json(body: str | bytes) -> Any:
    """``json.loads``, refusing malformed JSON and JSON nested deeper than ``MAX_JSON_DEPTH``."""
    try:
        value = json.loads(body)
    except RecursionError:
        raise Refused(_too_deep()) from None
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError
        raise Refused(
            problem("malformed-json", "Malformed JSON", 400, f"The body is not JSON: {error}")
        ) from None
    if _deeper_than(value, MAX_JSON_DEPTH):
        raise Refused(_too_deep())
    return value


def _too_deep() -> dict[str, Any]:
    return problem(
        "json-too-deep",
        "JSON nested too deep",
        400,
        f"The JSON nests arrays and objects deeper than {MAX_JSON_DEPTH} levels, the most "
        "stagegate reads.",
    )


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether ``value`` nests containers deeper than ``limit`` (iterative: no recursion)."""
    if not isinstance(value, dict | list):
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


class _BodyRefused(Exception):
    """Raised from the guard's ``receive``, answered by the guard alone: not a ``Refused``,
    which the routes answer themselves without closing the connection."""

    def __init__(self, document: dict[str, Any]) -> None:
        super().__init__(document["detail"])
        self.document = document


class BodyGuard:
    """Pure ASGI middleware: no request body past ``max_bytes`` (413), none slower than
    ``timeout_seconds`` to arrive in full (408).

    It counts the bytes as the application reads them, so nothing past the limit is read or
    buffered; a declared Content-Length over the limit is refused before reading anything.
    Either refusal closes the connection, since the rest of the body may still be on its way.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_seconds: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_seconds = timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await _answer(send, self._too_large())
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_seconds
        received = 0
        complete = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, complete
            if complete:  # the body is in; what follows is a disconnect, whenever it comes
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise _BodyRefused(self._too_slow()) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyRefused(self._too_large())
                complete = not message.get("more_body", False)
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracked_send)
        except _BodyRefused as refused:
            if started:
                raise
            await _answer(send, refused.document)

    def _too_large(self) -> dict[str, Any]:
        return too_large(f"The body is over {self.max_bytes} bytes.")

    def _too_slow(self) -> dict[str, Any]:
        return problem(
            "request-timeout",
            "Request timeout",
            408,
            f"The body did not arrive in full within {self.timeout_seconds:g} seconds.",
        )


async def _answer(send: Send, document: dict[str, Any]) -> None:
    body = json.dumps(document).encode()
    await send(
        {
            "type": "http.response.start",
            "status": document["status"],
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
