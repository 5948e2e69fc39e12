"""The per-request GraphQL context: the caller and the application they act on."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from strawberry.fastapi import BaseContext

from api.auth import BearerCredentials, Principal, authenticate_request
from domain.application import Stagegate
from domain.metadata import Actor, CommandContext
from domain.values import Channel


class Context(BaseContext):
    def __init__(self, stagegate: Stagegate, principal: Principal | None, correlation_id: str):
        super().__init__()
        self.stagegate = stagegate
        self._principal = principal
        self.correlation_id = correlation_id

    @property
    def principal(self) -> Principal:
        if self._principal is None:  # only the GraphiQL page is served without a token
            raise PermissionError("authentication required")
        return self._principal

    @property
    def actor(self) -> Actor:
        return self.principal.actor

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
    return Context(request.app.state.stagegate, principal, request.state.correlation_id)
