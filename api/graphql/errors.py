"""Expected failures as data: each domain error becomes a member of the mutation's result union.

Every member implements ``Error`` so a portal can ask ``... on Error { message }`` once.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import strawberry
from graphql import GraphQLError

from api import telemetry
from api.graphql.derive import graphql_enum
from domain import errors as domain
from domain.gates import RequirementCode as DomainRequirementCode
from domain.values import Stage as DomainStage

if TYPE_CHECKING:
    Stage = DomainStage
    RequirementCode = DomainRequirementCode
else:
    Stage = graphql_enum(DomainStage)
    RequirementCode = graphql_enum(DomainRequirementCode)


@strawberry.interface(description="Why a command was refused. Nothing was written.")
class Error:
    message: str


@strawberry.type(description="A requirement of a stage gate that does not hold.")
class Requirement:
    code: RequirementCode
    message: str


@strawberry.type(description="The forward move was refused; `unmet` names every unmet requirement.")
class GateBlocked(Error):
    stage: Stage
    target: Stage
    unmet: list[Requirement]
    policy_version: int


@strawberry.type(description="Another write got there first; reload and retry.")
class VersionConflict(Error):
    expected_version: int | None
    actual_version: int | None


@strawberry.type(description="One invalid input field, by its path inside `input`.")
class FieldError:
    path: str
    message: str


@strawberry.type(description="The input is malformed; `errors` names each invalid field.")
class ValidationFailed(Error):
    errors: list[FieldError]


@strawberry.type(description="No use case has this key.")
class NotFound(Error):
    key: str


@strawberry.type(description="The caller's role, or who the caller is, does not allow this.")
class Forbidden(Error):
    pass


@strawberry.type(description="A domain rule other than a gate refused the command.")
class RuleViolated(Error):
    code: str


ErrorMember = GateBlocked | VersionConflict | ValidationFailed | NotFound | Forbidden | RuleViolated


_SNAKE = re.compile(r"(?<=[a-z])(?=[A-Z])")
"""Where a CamelCase name becomes SNAKE_CASE (GateBlocked: GATE_BLOCKED)."""


def error_member(error: domain.DomainError) -> ErrorMember:
    """Translate a domain error into its GraphQL union member (the one place this happens).

    A store that did not take the write is not the caller's doing and has no member: it is
    raised as a GraphQL error with ``extensions.code = "UNAVAILABLE"``, safe to retry.
    """
    if not isinstance(error, domain.StoreUnavailable):
        # The answer is data (a union member); the request's log line says it was refused.
        telemetry.refused(_SNAKE.sub("_", type(error).__name__).upper())
    if isinstance(error, domain.StoreUnavailable):
        # written: false (nothing was written, retry) or "unknown" (read before retrying).
        written = "unknown" if error.written is None else error.written
        raise GraphQLError(
            error.message,
            extensions={"code": "UNAVAILABLE", "retryable": True, "written": written},
        )
    if isinstance(error, domain.GateBlocked):
        return GateBlocked(
            message=error.message,
            stage=error.stage,
            target=error.target,
            unmet=[Requirement(code=r.code, message=r.message) for r in error.unmet],
            policy_version=error.policy_version,
        )
    if isinstance(error, domain.VersionConflict):
        return VersionConflict(
            message=error.message, expected_version=error.expected, actual_version=error.actual
        )
    if isinstance(error, domain.ValidationFailed):
        return ValidationFailed(
            message=error.message,
            errors=[FieldError(path=e.path, message=e.message) for e in error.errors],
        )
    if isinstance(error, domain.NotFound):
        return NotFound(message=error.message, key=error.key)
    if isinstance(error, domain.Forbidden):
        return Forbidden(message=error.message)
    if isinstance(error, domain.RuleViolated):
        return RuleViolated(message=error.message, code=error.code.value)
    raise TypeError(f"unmapped domain error {type(error).__name__}")
