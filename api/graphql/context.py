"""The per-request GraphQL context: the caller and the application they act on."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Protocol

from fastapi import Depends, Request
from strawberry.fastapi import BaseContext

from api.auth import BearerCredentials, Principal, authenticate_request
from api.graphql.cost import CostMeter
from api.graphql.integrity import IntegrityVerifier
from domain.application import Judged, Stagegate, authorize_read
from domain.commands import Command
from domain.errors import Forbidden
from domain.metadata import Actor, CommandContext
from domain.policy import PolicyInForce
from domain.values import Channel, Role
from projections.readmodels import ReadModels

if TYPE_CHECKING:  # api.app builds the contexts' app, and imports this module
    from api.app import Backends


class Commands(Protocol):
    """Runs a command for a caller, as ``Stagegate.execute_judged`` does (which is one)."""

    def execute_judged(self, command: Command, ctx: CommandContext) -> Judged: ...


class Context(BaseContext):
    def __init__(
        self,
        stagegate: Stagegate,
        commands: Commands,
        read_models: ReadModels,
        verify_integrity: IntegrityVerifier,
        webhooks: Any,
        principal: Principal | None,
        correlation_id: str,
    ):
        super().__init__()
        self.stagegate = stagegate
        self.commands = commands
        self.read_models = read_models
        self.verify_integrity = verify_integrity
        self.webhooks = webhooks
        self._principal = principal
        self.correlation_id = correlation_id
        self._policy: PolicyInForce | None = None
        self.cost = CostMeter()
        """Costly fields resolved so far in this request (``api.graphql.cost``)."""

    def policy(self) -> PolicyInForce:
        """The policy in force, read once per request."""
        if self._policy is None:
            self._policy = self.stagegate.policy()
        return self._policy

    @property
    def principal(self) -> Principal:
        if self._principal is None:  # only the GraphiQL page is served without a token
            raise PermissionError("authentication required")
        return self._principal

    @property
    def actor(self) -> Actor:
        return self.principal.actor

    def authorize_read(self) -> None:
        """Raise PermissionError (a GraphQL error naming why) unless the caller may read."""
        try:
            authorize_read(self.actor)
        except Forbidden as error:
            raise PermissionError(error.message) from None

    def authorize_history(self) -> None:
        """History and past states are for readers who audit (viewers see the present)."""
        self.authorize_read()
        if self.actor.role is Role.VIEWER:
            raise PermissionError("Role viewer cannot read history; auditors and the team can.")

    def command_context(self) -> CommandContext:
        return CommandContext(
            actor=self.actor, channel=Channel.GRAPHQL, correlation_id=self.correlation_id
        )


def _principal_unless_graphiql_page(
    request: Request, credentials: BearerCredentials
) -> Principal | None:
    """GraphiQL's HTML page (development only) loads without a token; its queries need one."""
    wants_page = (
        request.method == "GET"
        and "text/html" in request.headers.get("accept", "")
        and "query" not in request.query_params
    )
    if wants_page and request.app.state.graphiql:
        return None
    return authenticate_request(request, credentials)


def get_context(
    request: Request,
    principal: Annotated[Principal | None, Depends(_principal_unless_graphiql_page)],
) -> Context:
    return context_for(request, principal)


def backend_arguments(backends: Backends) -> dict[str, Any]:
    """What a context takes of the app's backends, as ``Context``'s keyword arguments."""
    return {
        "stagegate": backends.stagegate,
        "commands": backends.commands,
        "read_models": backends.read_models,
        "verify_integrity": backends.verify_integrity,
        "webhooks": backends.webhooks,
    }


def context_for(request: Request, principal: Principal | None) -> Context:
    """The context of one HTTP request's operation, for ``principal`` (None: GraphiQL's
    page, served without a token)."""
    context = Context(
        **backend_arguments(request.app.state.backends),
        principal=principal,
        correlation_id=request.state.correlation_id,
    )
    context.request = request
    return context
