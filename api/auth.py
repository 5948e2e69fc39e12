"""Bearer-token authentication for every request."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api import telemetry
from api.problems import problem, problem_response
from domain.metadata import Actor
from domain.values import Role


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: who (actor), what role, and for integrations, what scope."""

    actor: Actor
    token_id: str
    sources: tuple[str, ...] = field(default=())
    event_types: tuple[str, ...] = field(default=())


log = logging.getLogger(__name__)

Authenticator = Callable[[str], Principal | None]
"""Looks a presented bearer token up; None when it is unknown, revoked or malformed."""

bearer = HTTPBearer(auto_error=False, description="An API token: `Authorization: Bearer sgt_…`")
"""The ``Authorization: Bearer`` credentials of a request (None without them): a FastAPI
dependency, or awaited on a request (it only reads the header)."""


class Unauthenticated(HTTPException):
    def __init__(self, detail: str) -> None:
        super().__init__(status_code=401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def require_credentials(
    credentials: HTTPAuthorizationCredentials | None,
) -> HTTPAuthorizationCredentials:
    """The credentials, or the 401 saying none were sent (no lookup needed for that)."""
    if credentials is None:
        raise Unauthenticated(
            "No bearer token: send 'Authorization: Bearer <token>'. "
            "Create one with 'stagegate token create --actor ID --role ROLE'."
        )
    return credentials


def authenticate_request(request: Request, credentials: BearerCredentials) -> Principal:
    """FastAPI dependency: the caller, or 401 naming what is wrong with the credentials."""
    credentials = require_credentials(credentials)
    authenticate: Authenticator = request.app.state.authenticate
    try:
        principal = authenticate(credentials.credentials)
    except Exception:
        log.exception("token lookup failed")
        raise HTTPException(
            status_code=503, detail="Cannot check the token now: the database is unreachable."
        ) from None
    if principal is None:
        raise Unauthenticated("The bearer token is unknown, revoked or malformed.")
    record = telemetry.current()
    record.actor, record.role = principal.actor.id, principal.actor.role.value
    return principal


CurrentPrincipal = Annotated[Principal, Depends(authenticate_request)]


def refused_unless(principal: Principal, roles: frozenset[Role], doing: str) -> Response | None:
    """A 403 problem naming the caller's role, what it tried and the roles that may; None when
    the caller holds one of ``roles``."""
    if principal.actor.role in roles:
        return None
    allowed = " or ".join(sorted(role.value for role in roles))
    return problem_response(
        problem(
            "forbidden",
            "Forbidden",
            403,
            f"Role {principal.actor.role.value} cannot {doing}; it needs {allowed}.",
        )
    )
