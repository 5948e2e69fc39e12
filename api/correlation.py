"""Every answer carries a correlation id; an unexpected failure is a 500 problem naming it."""

from __future__ import annotations

import json
import logging
import re
import uuid

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import PROBLEM_JSON, problem

log = logging.getLogger(__name__)

HEADER = "X-Correlation-ID"
_PRESENTED = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class CorrelationIds:
    """Pure ASGI middleware: takes the caller's ``X-Correlation-ID`` (when well-formed) or makes
    one, keeps it in the request state (``request.state.correlation_id``), returns it as a
    header, and answers an exception nothing else handled with a 500 problem document that
    names it and nothing of the failure (the log has the traceback, under the same id)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        presented = dict(scope["headers"]).get(HEADER.lower().encode(), b"").decode("latin-1")
        correlation_id = presented if _PRESENTED.match(presented) else str(uuid.uuid4())
        scope.setdefault("state", {})["correlation_id"] = correlation_id
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                MutableHeaders(scope=message)[HEADER] = correlation_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception(
                "unexpected error answering %s %s (correlation id %s)",
                scope["method"],
                scope["path"],
                correlation_id,
            )
            if started:
                raise  # half an answer is out: the server closes the connection
            document = problem(
                "internal-error",
                "Internal server error",
                500,
                "The server failed to answer this request. Quote the correlation id when "
                "reporting it.",
                correlationId=correlation_id,
            )
            body = json.dumps(document).encode()
            await send_with_id(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", PROBLEM_JSON.encode()),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send_with_id({"type": "http.response.body", "body": body})
