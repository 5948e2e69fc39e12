"""What the transport tells about each request: one log line, and its metrics.

``RequestTelemetry`` (pure ASGI middleware, inside the correlation ids) times every request
and, once it is answered, counts it by route template and status and logs one line: its
correlation id, who asked (actor and role), what (the GraphQL operation or the HTTP route),
how it ended (``outcome``: ok, refused or error, with a stable ``error_code`` unless ok) and
how long it took. What only the inner layers know (who the token belongs to, the operation's
name, a command refused) they write on the request's ``RequestRecord`` (``current()``): it is
held in a context variable, which the worker threads a request's work runs on inherit.

Label values are bounded: routes are templates (an unknown path is ``unmatched``), operation
names are GraphQL names of at most 64 characters, at most ``MAX_OPERATION_NAMES`` of them per
process (then ``other``), an unnamed operation is ``anonymous``.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import PROBLEM_BASE, PROBLEM_JSON

log = logging.getLogger("api.requests")

HTTP_REQUESTS = Counter(
    "stagegate_http_requests_total",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
HTTP_SECONDS = Histogram(
    "stagegate_http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer, by method and route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
GRAPHQL_OPERATIONS = Counter(
    "stagegate_graphql_operations_total",
    "GraphQL operations by name (unnamed: anonymous) and outcome: ok, or error (the answer "
    "carried GraphQL errors).",
    ["operation", "outcome"],
)
CLOUDEVENTS = Counter(
    "stagegate_cloudevents_total",
    "Posted CloudEvents by type (invalid: refused before its type was known) and outcome: "
    "accepted (or a redelivery answered again), refused, forbidden, conflict, unavailable.",
    ["type", "outcome"],
)

MAX_OPERATION_NAMES = 200
_GRAPHQL_NAME = re.compile(r"^[_A-Za-z][_0-9A-Za-z]{0,63}$")
_FIRST_OPERATION = re.compile(
    r"^(?:\s|,|#[^\n]*\n)*(?:query|mutation|subscription)\s+([_A-Za-z][_0-9A-Za-z]*)"
)
_names_seen: set[str] = set()
_names_lock = threading.Lock()


@dataclass
class RequestRecord:
    """What the layers of one request learn about it, for its log line."""

    actor: str | None = None
    role: str | None = None
    operation: str | None = None
    """The GraphQL operation's name (its label), where the request was one."""
    outcome: str | None = None
    """Set where the status alone does not say it (a GraphQL answer is 200 either way)."""
    error_code: str | None = None


_CURRENT: ContextVar[RequestRecord | None] = ContextVar("request_record", default=None)


def current() -> RequestRecord:
    """This request's record (a throwaway one outside a request, e.g. in a unit test)."""
    return _CURRENT.get() or RequestRecord()


def operation_label(name: str | None, query: str | None) -> str:
    """A bounded label for a GraphQL operation: its name (given, or of the document's first
    operation), ``anonymous`` without one, ``other`` once this process has seen
    ``MAX_OPERATION_NAMES`` distinct names or for a name GraphQL would not accept."""
    if not name and query:
        found = _FIRST_OPERATION.match(query)
        name = found.group(1) if found else None
    if not name:
        return "anonymous"
    if not _GRAPHQL_NAME.match(name):
        return "other"
    if name in _names_seen:
        return name
    with _names_lock:
        if len(_names_seen) >= MAX_OPERATION_NAMES:
            return "other"
        _names_seen.add(name)
    return name


def graphql_operation(operation: str, error_codes: list[str], counting: bool) -> None:
    """Count a GraphQL operation (if ``counting``), and note it (and its first error's code)
    on the request."""
    outcome = "error" if error_codes else "ok"
    if counting:
        GRAPHQL_OPERATIONS.labels(operation, outcome).inc()
    record = current()
    record.operation = operation
    if error_codes:
        record.outcome, record.error_code = "error", error_codes[0]


def refused(code: str) -> None:
    """A command the request carried was refused (the answer is a GraphQL union member)."""
    record = current()
    if record.outcome is None:
        record.outcome, record.error_code = "refused", code


def cloudevent(event_type: str | None, status: int) -> None:
    if status < 300:
        outcome = "accepted"
    elif status == 403:
        outcome = "forbidden"
    elif status == 409:
        outcome = "conflict"
    elif status >= 500:
        outcome = "unavailable"
    else:
        outcome = "refused"
    CLOUDEVENTS.labels(event_type or "invalid", outcome).inc()


class RequestTelemetry:
    """Pure ASGI middleware: counts and logs each HTTP request once it is answered."""

    def __init__(self, app: ASGIApp, counting: bool = True) -> None:
        self.app = app
        self.counting = counting

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        record = RequestRecord()
        reset = _CURRENT.set(record)
        started = time.perf_counter()
        status = 500
        problem_body: list[bytes] | None = None

        async def observing_send(message: Message) -> None:
            nonlocal status, problem_body
            if message["type"] == "http.response.start":
                status = int(message["status"])
                content_type = dict(message.get("headers") or []).get(b"content-type", b"")
                if content_type.startswith(PROBLEM_JSON.encode()):
                    problem_body = []  # small documents: their type is the error's code
            elif message["type"] == "http.response.body" and problem_body is not None:
                problem_body.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, observing_send)
        except Exception:
            status, record.outcome, record.error_code = 500, "error", "internal-error"
            raise
        finally:
            _CURRENT.reset(reset)
            seconds = time.perf_counter() - started
            route = _route_template(scope)
            method = scope["method"] if scope["method"] in _METHODS else "other"
            if self.counting:
                HTTP_REQUESTS.labels(method, route, str(status)).inc()
                HTTP_SECONDS.labels(method, route).observe(seconds)
            if record.error_code is None and problem_body is not None:
                record.error_code = _problem_code(b"".join(problem_body))
            _log(scope, record, method, route, status, seconds)


_METHODS = frozenset({"GET", "POST", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"})


def _route_template(scope: Scope) -> str:
    """The template of the route that answered (``unmatched`` when none did): a label that
    cannot grow with the paths callers make up."""
    route = scope.get("route")
    if route is None:
        return "unmatched"
    # A route of an included router knows its path without the prefix it was included at;
    # one whose own path is empty (GraphQL's, at /graphql) matches the prefix alone, which is
    # then the request's path itself.
    return getattr(route, "path", "") or str(scope["path"])


def _problem_code(body: bytes) -> str:
    try:
        kind = json.loads(body).get("type", "")
    except (ValueError, AttributeError):
        return "unknown"
    return str(kind).removeprefix(PROBLEM_BASE) or "unknown"


def _log(
    scope: Scope, record: RequestRecord, method: str, route: str, status: int, seconds: float
) -> None:
    if not log.isEnabledFor(logging.INFO):
        return
    outcome = record.outcome or ("ok" if status < 400 else "refused" if status < 500 else "error")
    if outcome == "ok":
        record.error_code = None
    fields: dict[str, Any] = {
        "correlation_id": scope.get("state", {}).get("correlation_id"),
        "actor": record.actor,
        "role": record.role,
        "method": method,
        "route": route,
        "operation": record.operation or f"{method} {route}",
        "outcome": outcome,
        "status": status,
        "duration_ms": round(seconds * 1000, 2),
        "error_code": record.error_code,
    }
    known = {name: value for name, value in fields.items() if value is not None}
    log.info(
        "request %s", " ".join(f"{name}={value}" for name, value in known.items()), extra=known
    )
