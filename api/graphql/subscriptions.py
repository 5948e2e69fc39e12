"""GraphQL subscriptions over WebSocket (``graphql-transport-ws``) at ``/graphql``.

``useCaseChanged(key)`` yields the use case after each committed change to it,
``useCasesChanged(stages)`` the key, version and stage of each use case changed (what a list
or a board needs to read itself again, for every role that reads), and ``lifecycle(stages)``
each committed event of every use case (or of those in the given stages) as its history
entry; all in the log's order, read from the log after each commit
by one follower per process (``infra.live``) and fanned out here (``api.graphql.feed``).

A connection's messages are taken in order, and a ``subscribe`` once its subscription is held
(or refused): a ``ping`` sent after it is answered with ``pong`` only then, which tells a
client that every change committed from then on will be sent.

The connection is authenticated once, by its ``connection_init`` payload:
``{"authorization": "Bearer <token>"}`` (or ``{"token": "<token>"}``). A missing, unknown,
revoked or malformed token closes the socket with 4401; a token whose role reads nothing
(integration) with 4403. Queries and mutations are sent over HTTP, not over this socket.

The store is synchronous, so nothing here reads it on the event loop: the token is looked up
on a worker thread, and each event's selection set (``history``, ``asOf``, ``integrity``
included) is executed on one, with a context of its own (a fresh cost budget per event),
as each HTTP request is (``SubscriptionEventsInThreads``).
"""

from __future__ import annotations

import asyncio
import copy
import logging
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from datetime import timedelta
from typing import Any, TypeVar

import strawberry
from fastapi import WebSocket
from fastapi.routing import APIWebSocketRoute
from graphql import GraphQLError, get_operation_ast, parse
from starlette.concurrency import run_in_threadpool
from strawberry.fastapi import GraphQLRouter
from strawberry.schema import BaseSchema
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    SubscribeMessage,
)
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET, UnsetType

from api.auth import Authenticator, Principal
from api.graphql.context import Context, backend_arguments
from api.graphql.cost import CostMeter
from api.graphql.errors import Stage
from api.graphql.execution import PlainFieldsInOneStep
from api.graphql.feed import ChangeFeed, FellBehind
from api.graphql.history import AuditEntry
from api.graphql.types import UseCase, UseCaseView
from domain.application import READERS
from domain.errors import NotFound
from domain.usecase import use_case_id
from domain.values import Stage as DomainStage
from projections.live import CommittedEvent

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_TOKENS = 4000
"""As ``api.graphql.schema``'s MaxTokensLimiter."""
CONNECTION_INIT_SECONDS = 10
"""How long an opened socket may take to send its ``connection_init`` (4408 past it)."""
MAX_SUBSCRIPTIONS_PER_CONNECTION = 100


class SubscriptionContext(Context):
    """A WebSocket connection's context: the caller, once its ``connection_init`` named
    them, and the feed its subscriptions wait on. Each event is executed with a copy of its
    own (``for_event``)."""

    def __init__(self, feed: ChangeFeed, authenticate: Authenticator, **kwargs: Any) -> None:
        super().__init__(principal=None, **kwargs)
        self.feed = feed
        self.authenticate = authenticate
        self.connection_params: dict[str, object] = {}
        """The ``connection_init`` payload (strawberry sets it)."""
        self._held = 0
        self._held_more = asyncio.Event()

    def held(self) -> None:
        """One more of this connection's subscriptions is held by the feed: from now on it
        is told of every commit."""
        self._held += 1
        self._held_more.set()

    async def until_held(self, beyond: int, operation: asyncio.Task[Any]) -> None:
        """Wait until more than ``beyond`` subscriptions were held, or ``operation`` ended
        (refused, or failed), whichever comes first."""
        while self._held <= beyond and not operation.done():
            self._held_more.clear()
            held_more = asyncio.ensure_future(self._held_more.wait())
            await asyncio.wait({held_more, operation}, return_when=asyncio.FIRST_COMPLETED)
            held_more.cancel()

    @property
    def subscriptions_held(self) -> int:
        return self._held

    def authenticated(self, principal: Principal) -> None:
        self._principal = principal

    def for_event(self) -> SubscriptionContext:
        """A copy for one event's execution: its own cost budget and policy read, as a
        request has (the connection lives on; its budget must not run out)."""
        event = copy.copy(self)
        event.cost = CostMeter()
        event._policy = None
        return event


@strawberry.type(description="A committed event of a use case, as its history records it.")
class LifecycleEntry:
    key: str = strawberry.field(description="The use case's key.")
    stage: Stage = strawberry.field(description="The use case's stage once this event applied.")
    previous_stage: Stage | None = strawberry.field(
        description="Its stage before this event; null for its registration."
    )
    entry: AuditEntry = strawberry.field(
        description="The event as `UseCase.history` gives it; `entry.version` is the use "
        "case's version after it."
    )

    @classmethod
    def of(cls, event: CommittedEvent) -> LifecycleEntry:
        return cls(
            key=event.key,
            stage=event.stage,
            previous_stage=event.stage_before,
            entry=AuditEntry.from_entry(event.entry),
        )


@strawberry.type(
    description="A committed change to a use case: which, and where it stands after it."
)
class UseCaseChange:
    key: str = strawberry.field(description="The use case's key.")
    version: int = strawberry.field(description="Its version after the change.")
    stage: Stage = strawberry.field(description="Its stage after the change.")
    previous_stage: Stage | None = strawberry.field(
        description="Its stage before the change; null for its registration."
    )

    @classmethod
    def of(cls, event: CommittedEvent) -> UseCaseChange:
        return cls(
            key=event.key,
            version=event.entry.version,
            stage=event.stage,
            previous_stage=event.stage_before,
        )


def _find(context: SubscriptionContext, key: str) -> None:
    """On a worker thread: refuse a key no use case has (a typo would wait forever)."""
    try:
        context.stagegate.use_case(key, to_read=True)
    except NotFound:
        raise GraphQLError(
            f"No use case has the key {key!r}. (`useCasesChanged` tells of use cases as they "
            "are registered.)",
            extensions={"code": "NOT_FOUND"},
        ) from None


@strawberry.type(
    description="Live changes, over WebSocket (graphql-transport-ws) at /graphql: each is "
    "sent once committed, in the log's order."
)
class Subscription:
    @strawberry.subscription(
        description="The use case after each committed change to it (one per event, in order: "
        "`version` counts them), every field as a query answers it (a viewer's `history`, "
        "`asOf` and `integrity` are null with a FORBIDDEN error). Its gate is judged by the "
        "policy in force when the change is read; `history` and `integrity` are read as it is "
        "sent, so they may include changes after it. An error (NOT_FOUND) if no use case has "
        "the key."
    )
    async def use_case_changed(
        self, info: strawberry.Info[SubscriptionContext, None], key: str
    ) -> AsyncGenerator[UseCase, None]:
        context = info.context
        context.authorize_read()
        await run_in_threadpool(_find, context, key)
        return _use_case_changes(context, str(use_case_id(key)))

    @strawberry.subscription(
        description="Each committed change to any use case, registrations included: its key, "
        "version and stage (no history: viewers may follow it); with `stages`, only changes "
        "to use cases that were in one of them before or are after. What a list or a board "
        "needs to know to read itself again."
    )
    async def use_cases_changed(
        self,
        info: strawberry.Info[SubscriptionContext, None],
        stages: list[Stage] | None = None,
    ) -> AsyncGenerator[UseCaseChange, None]:
        context = info.context
        context.authorize_read()
        return _every_event(context, _stages_wanted(stages), "useCasesChanged", UseCaseChange.of)

    @strawberry.subscription(
        description="Every committed event of every use case, as its history entry with the "
        "use case's key; with `stages`, only those of use cases that were in one of them "
        "before the event or are after it (so a board of those stages hears of use cases "
        "entering and leaving). Not for viewers (FORBIDDEN), as history is not."
    )
    async def lifecycle(
        self,
        info: strawberry.Info[SubscriptionContext, None],
        stages: list[Stage] | None = None,
    ) -> AsyncGenerator[LifecycleEntry, None]:
        context = info.context
        context.authorize_history()
        return _every_event(context, _stages_wanted(stages), "lifecycle", LifecycleEntry.of)


def _stages_wanted(stages: list[Stage] | None) -> frozenset[DomainStage] | None:
    if stages is not None and not stages:
        raise GraphQLError("give at least one stage in `stages`, or leave it out for all")
    return None if stages is None else frozenset(DomainStage(s) for s in stages)


async def _use_case_changes(
    context: SubscriptionContext, use_case: str
) -> AsyncGenerator[UseCase, None]:
    # Only events read with the use case loaded: one committed as the subscription began
    # may have been read before the follower knew of it.
    with context.feed.subscribe(lambda event: event.use_case is not None, use_case) as events:
        await context.feed.following()
        context.held()
        async for event in _until_behind(events):
            yield context.feed.shared(event, "useCaseChanged", _use_case_as_changed)


def _use_case_as_changed(event: CommittedEvent) -> UseCase:
    assert event.use_case is not None
    assert event.policy is not None
    return UseCase(view=UseCaseView(event.use_case, event.policy))


async def _every_event(
    context: SubscriptionContext,
    stages: frozenset[DomainStage] | None,
    kind: str,
    build: Callable[[CommittedEvent], T],
) -> AsyncGenerator[T, None]:
    """Each committed event of every use case (of those in ``stages``), as ``build`` makes
    it: once per event for every subscription of this ``kind``."""
    wants: Callable[[CommittedEvent], bool] = (
        (lambda _: True) if stages is None else (lambda event: event.in_any_of(stages))
    )
    with context.feed.subscribe(wants) as events:
        await context.feed.following()
        context.held()
        async for event in _until_behind(events):
            yield context.feed.shared(event, kind, build)


async def _until_behind(events: Any) -> AsyncIterator[CommittedEvent]:
    """The subscription's events; a GraphQL error (code FELL_BEHIND) ends it if its client
    fell too far behind."""
    try:
        async for event in events:
            yield event
    except FellBehind as error:
        raise GraphQLError(str(error), extensions={"code": "FELL_BEHIND"}) from None


class SubscriptionEventsInThreads(PlainFieldsInOneStep):
    """graphql-core's executor, but each subscription event is executed on a worker thread
    with a context of its own, once for all the subscriptions that ask the same of it.

    Subscriptions of one event share its payload (``ChangeFeed.shared``); those whose
    operation is the same document (parsed once: the parser cache), with the same variables,
    by callers of the same role, share its execution (``ChangeFeed.executed_once``): a
    thousand portals watching one use case cost one execution, not a thousand. Every field's
    answer depends on who asks only through the role (``Context.authorize_read`` and
    ``authorize_history``); a field that came to depend on the caller's identity would have
    to be part of the key. Queries and mutations are executed as before (the HTTP router runs
    them whole on a worker thread already).
    """

    def build_per_event_executor(self, payload: Any) -> Any:
        executor = super().build_per_event_executor(payload)
        context = executor.context_value
        if not isinstance(context, SubscriptionContext):
            return executor
        executor.context_value = context.for_event()
        execute = executor.execute_operation
        same_answer = (
            id(payload),
            id(executor.operation),
            repr(executor.variable_values.coerced),
            context.actor.role,
        )
        keep = (payload, executor.operation)

        async def execute_in_a_thread(serially: bool | None = None) -> Any:
            return await context.feed.executed_once(
                same_answer, keep, lambda: run_in_threadpool(execute, serially)
            )

        executor.execute_operation = execute_in_a_thread  # type: ignore[method-assign]
        return executor


class ConnectionRefused(Exception):
    """Close the socket with this code and reason (at most 123 bytes, WebSocket's limit)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


NOT_HERE = (
    "This WebSocket serves subscriptions only; send queries and mutations over HTTP: POST /graphql."
)


def operation_type(message: SubscribeMessage) -> str | None:
    """The type of the operation a ``subscribe`` message names (``query``, ``mutation``,
    ``subscription``); None where it cannot say (strawberry then answers what is wrong)."""
    payload = message.get("payload")
    if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
        return None
    name = payload.get("operationName")
    try:
        # Bounded as an HTTP request's query is (MaxTokensLimiter): parsed on the event loop.
        document = parse(payload["query"], max_tokens=MAX_TOKENS)
    except GraphQLError:
        return None
    operation = get_operation_ast(document, name if isinstance(name, str) else None)
    return None if operation is None else operation.operation.value


class _SubscriptionsOnly:
    """The schema as this socket's operations see it: subscriptions only (a backstop to
    ``AuthenticatingTransportWSHandler.handle_subscribe``, which answers more clearly)."""

    def __init__(self, schema: BaseSchema) -> None:
        self._schema = schema

    async def stream(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["allowed_operation_types"] = (OperationType.SUBSCRIPTION,)
        return await self._schema.stream(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._schema, name)


class AuthenticatingTransportWSHandler(BaseGraphQLTransportWSHandler[SubscriptionContext, None]):
    """strawberry's graphql-transport-ws handler, closing the socket with the code a refused
    ``connection_init`` calls for (strawberry's own closes every refusal with 4403)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.schema = _SubscriptionsOnly(self.schema)  # type: ignore[assignment]

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        try:
            await super().handle_connection_init(message)
        except ConnectionRefused as refused:
            await self.websocket.close(code=refused.code, reason=refused.reason)

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        if (
            self.connection_acknowledged
            and message.get("id") not in self.operations
            and operation_type(message) in ("query", "mutation")
        ):
            error = GraphQLError(NOT_HERE, extensions={"code": "INVALID_REQUEST"})
            await self.send_message(
                {"id": message["id"], "type": "error", "payload": [error.formatted]}
            )
            return
        held = self.context.subscriptions_held
        await super().handle_subscribe(message)
        operation = self.operations.get(message["id"])
        if operation is not None and operation.task is not None:
            # The connection's next message is taken once this subscription is held (or
            # refused): a client's ping sent after its subscribe is answered only then, so
            # its pong says that every commit from then on will be told.
            await self.context.until_held(held, operation.task)


class SubscriptionRouter(GraphQLRouter[SubscriptionContext, None]):
    """The WebSocket route of ``/graphql`` (its HTTP routes are ``ThreadedGraphQLRouter``'s)."""

    graphql_transport_ws_handler_class = AuthenticatingTransportWSHandler

    def __init__(self, schema: BaseSchema, allowed_origins: tuple[str, ...]) -> None:
        super().__init__(
            schema,
            context_getter=_subscription_context,
            graphql_ide=None,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            connection_init_wait_timeout=timedelta(seconds=CONNECTION_INIT_SECONDS),
            max_subscriptions_per_connection=MAX_SUBSCRIPTIONS_PER_CONNECTION,
            allowed_origins=allowed_origins,
        )
        self.routes = [route for route in self.routes if isinstance(route, APIWebSocketRoute)]

    async def on_ws_connect(self, context: SubscriptionContext) -> UnsetType:
        presented = presented_token(context.connection_params)
        try:
            principal = await run_in_threadpool(context.authenticate, presented)
        except Exception:
            log.exception("token lookup failed (WebSocket connection_init)")
            raise ConnectionRefused(1013, "Cannot check the token now; try again later.") from None
        if principal is None:
            raise ConnectionRefused(4401, "The token is unknown, revoked or malformed.")
        role = principal.actor.role
        if role not in READERS:
            raise ConnectionRefused(4403, f"Role {role.value} cannot subscribe: it reads nothing.")
        context.authenticated(principal)
        acknowledged: UnsetType = UNSET  # the ack carries no payload
        return acknowledged


def presented_token(params: dict[str, object]) -> str:
    """The token of a ``connection_init`` payload: ``authorization`` ("Bearer <token>",
    any case of its key) or ``token``; ConnectionRefused (4401) saying what is wrong."""
    by_name = {name.lower(): value for name, value in params.items()}
    if "authorization" in by_name:
        value = by_name["authorization"]
        scheme, _, token = value.partition(" ") if isinstance(value, str) else ("", "", "")
        if scheme.lower() != "bearer" or not token.strip():
            raise ConnectionRefused(4401, 'authorization must be "Bearer <token>".')
        return token.strip()
    if "token" in by_name:
        plain = by_name["token"]
        if not isinstance(plain, str) or not plain.strip():
            raise ConnectionRefused(4401, "token must be the token's text.")
        return plain.strip()
    raise ConnectionRefused(
        4401, 'No token: send {"authorization": "Bearer <token>"} in connection_init.'
    )


def _subscription_context(websocket: WebSocket) -> SubscriptionContext:
    state = websocket.app.state
    return SubscriptionContext(
        feed=state.change_feed,
        authenticate=state.authenticate,
        **backend_arguments(state.backends),
        correlation_id=str(uuid.uuid4()),
    )
