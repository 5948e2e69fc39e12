"""The GraphQL schema: queries, one mutation per command, and the execution limits.

Every resolver is a plain function: the router runs each operation whole on a worker thread
(``api.graphql.router``), so none of them holds the event loop, whatever it waits for.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

import strawberry
from eventsourcing.application import AggregateNotFoundError
from graphql import ASTValidationRule, GraphQLError, NoSchemaIntrospectionCustomRule
from strawberry.extensions import (
    AddValidationRules,
    MaxTokensLimiter,
    ParserCache,
    ValidationCache,
)
from strawberry.extensions.max_aliases import create_validator as max_aliases_rule
from strawberry.extensions.query_depth_limiter import create_validator as max_depth_rule

from api.graphql.context import Context
from api.graphql.derive import input_type, to_wire
from api.graphql.errors import (
    Forbidden,
    GateBlocked,
    NotFound,
    RuleViolated,
    ValidationFailed,
    VersionConflict,
    error_member,
)
from api.graphql.execution import resolve_methods_directly
from api.graphql.history import AuditEntry
from api.graphql.node import AUDIT_ENTRY, USE_CASE, Node, parse_global_id
from api.graphql.readside import ReadQueries
from api.graphql.reporting import MaskUnexpected, ReportingSchema
from api.graphql.subscriptions import Subscription, SubscriptionEventsInThreads
from api.graphql.tracing import OperationSpans
from api.graphql.types import Policy, Principal, UseCase, UseCaseView
from api.graphql.webhooks import WebhookMutations, WebhookQueries
from domain.commands import USE_CASE_COMMANDS, Command, RegisterUseCase, SetPolicy
from domain.errors import DomainError
from domain.errors import NotFound as DomainNotFound
from domain.usecase import UseCase as DomainUseCase

log = logging.getLogger(__name__)

UseCaseResult = Annotated[
    UseCase
    | GateBlocked
    | VersionConflict
    | ValidationFailed
    | NotFound
    | Forbidden
    | RuleViolated,
    strawberry.union("UseCaseResult", description="The updated use case, or why not."),
]
PolicyResult = Annotated[
    Policy | VersionConflict | ValidationFailed | Forbidden,
    strawberry.union("PolicyResult", description="The policy now in force, or why not."),
]


def _use_case_by_id(context: Context, value: str) -> DomainUseCase | None:
    try:
        found: object = context.stagegate.repository.get(UUID(value))
    except (ValueError, AggregateNotFoundError):
        return None
    if not isinstance(found, DomainUseCase):
        return None  # another aggregate's id (the policy's) under a UseCase type name
    return context.stagegate.use_case(found.state.key, to_read=True)


@strawberry.type
class Query(ReadQueries, WebhookQueries):
    @strawberry.field(description="A use case by its key; null if there is none.")
    def use_case(self, info: strawberry.Info[Context, None], key: str) -> UseCase | None:
        context = info.context
        context.authorize_read()
        try:
            use_case = context.stagegate.use_case(key, to_read=True)
        except DomainNotFound:
            return None
        return UseCase(view=UseCaseView(use_case, context.policy()))

    @strawberry.field(
        description="An object by its global id (Relay), as its `id` field gave it; null if "
        "there is none. An audit entry is null for a viewer, with a FORBIDDEN error."
    )
    def node(self, info: strawberry.Info[Context, None], id: strawberry.ID) -> Node | None:
        context = info.context
        context.authorize_read()
        type_name, parts = parse_global_id(id)
        if type_name == USE_CASE and len(parts) == 1:
            found = _use_case_by_id(context, parts[0])
            return None if found is None else UseCase(view=UseCaseView(found, context.policy()))
        if type_name == AUDIT_ENTRY and len(parts) == 2 and parts[1].isdigit():
            context.authorize_history()
            entry = context.read_models.history_entry(parts[0], int(parts[1]))
            return None if entry is None else AuditEntry.from_entry(entry)
        raise GraphQLError(f"{id!r} is not the id of a UseCase or an AuditEntry")

    @strawberry.field(description="The policy in force: the thresholds the gates judge by.")
    def policy(self, info: strawberry.Info[Context, None]) -> Policy:
        context = info.context
        context.authorize_read()
        return Policy.from_domain(context.stagegate.policy())

    @strawberry.field(description="Who the bearer token says the caller is.")
    def me(self, info: strawberry.Info[Context, None]) -> Principal:
        actor = info.context.actor
        return Principal(actor_id=actor.id, role=actor.role)


def mutation_name(command_class: type[Command]) -> str:
    """``RecordEvaluation`` -> ``recordEvaluation``: the mutation names of the API contract."""
    name = command_class.__name__
    return name[0].lower() + name[1:]


def _use_case_mutation(command_class: type[Command]) -> Any:
    """A mutation that validates its input into ``command_class`` and executes it."""
    input_class = input_type(command_class)

    def resolve(info: strawberry.Info[Context, None], input: Any) -> Any:
        context = info.context
        try:
            command = command_class.parse(to_wire(input))
            judged = context.commands.execute_judged(command, context.command_context())
        except DomainError as error:
            return error_member(error)  # raises GraphQLError for StoreUnavailable
        _refresh_after_write(context)
        # Its gate as the policy it was judged by has it: the policy in force when it was
        # committed (no read after the write, which could turn a committed write into an error).
        return UseCase(view=UseCaseView(judged.use_case, judged.policy))

    resolve.__annotations__ = {
        "info": strawberry.Info[Context, None],
        "input": input_class,
        "return": UseCaseResult,
    }
    return strawberry.mutation(
        resolver=resolve,
        name=mutation_name(command_class),
        description=(command_class.__doc__ or "").strip() or None,
    )


def _set_policy(info: strawberry.Info[Context, None], input: Any) -> Any:
    context = info.context
    try:
        command = SetPolicy.parse(to_wire(input))
        policy = context.stagegate.set_policy(command, context.command_context())
    except DomainError as error:
        return error_member(error)
    _refresh_after_write(context)
    return Policy.from_domain(policy)


def _refresh_after_write(context: Context) -> None:
    """Bring the read models up to the write just made (read-your-writes: lists and history
    include it). The write is committed whatever happens here, so a failure is no failure of
    the mutation: the read models catch up later (their worker, or the next refresh)."""
    try:
        context.read_models.refresh()
    except Exception as error:
        log.warning(
            "read models not refreshed after a committed write (correlation id %s): %r",
            context.correlation_id,
            error,
        )


_set_policy.__annotations__ = {
    "info": strawberry.Info[Context, None],
    "input": input_type(SetPolicy),
    "return": PolicyResult,
}

_COMMANDS: tuple[type[Command], ...] = (RegisterUseCase, *USE_CASE_COMMANDS)
_mutations: dict[str, Any] = {mutation_name(c): _use_case_mutation(c) for c in _COMMANDS}
_mutations["setPolicy"] = strawberry.mutation(
    resolver=_set_policy, name="setPolicy", description=(SetPolicy.__doc__ or "").strip()
)
Mutation = strawberry.type(type("Mutation", (WebhookMutations,), _mutations), name="Mutation")


def build_schema(max_depth: int, max_aliases: int, introspection: bool = True) -> strawberry.Schema:
    """The schema with its limits; without ``introspection``, ``__schema`` and ``__type`` are
    refused and no error message suggests names ("Did you mean ...?")."""
    # Factories: strawberry builds fresh extensions per request (the caches live at module
    # level, shared). Parsing and validating dominate a small query's cost; both caches more
    # than double throughput for the repeated queries portals send. The validation cache is
    # keyed by the rules too, so the depth and alias rules are built once, here: the
    # QueryDepthLimiter and MaxAliasesLimiter extensions build new rule classes per request,
    # and with them no validation was ever found in the cache.
    rules: list[type[ASTValidationRule]] = [
        max_depth_rule(max_depth, None, None),
        max_aliases_rule(max_aliases),
    ]
    if not introspection:
        rules.append(NoSchemaIntrospectionCustomRule)
    extensions: list[Any] = [
        lambda: ParserCache(maxsize=512),
        lambda: ValidationCache(maxsize=512),
        lambda: AddValidationRules(rules),
        lambda: MaxTokensLimiter(max_token_count=4000),
        # Unexpected failures (a database outage, a bug) are logged in full but answered with
        # a generic message, so no internals leak to callers.
        MaskUnexpected,
        # A span per operation; without a tracing SDK configured (infra/tracing.py) none
        # is made.
        OperationSpans,
    ]
    schema = ReportingSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        suggestions=introspection,
        # Each subscription event is executed on a worker thread (api.graphql.subscriptions).
        execution_context_class=SubscriptionEventsInThreads,
    )
    resolve_methods_directly(schema._schema)
    return schema


SCHEMA_FILE = Path(__file__).with_name("schema.graphql")
"""The published GraphQL contract, checked in: a test fails when the code would serve another."""


def published_sdl() -> str:
    """The schema as the server builds it, in SDL (the limits do not change the schema)."""
    return build_schema(max_depth=12, max_aliases=30).as_str() + "\n"


def main(arguments: list[str]) -> int:
    """``python -m api.graphql.schema``: write the contract after a deliberate change;
    ``--check``: only say whether the checked-in contract is what the code serves (exit 1 if
    not), which a reader or CI can run without changing anything."""
    if arguments not in ([], ["--check"]):
        print("usage: python -m api.graphql.schema [--check]", file=sys.stderr)
        return 2
    served = published_sdl()
    if arguments == ["--check"]:
        if SCHEMA_FILE.read_text() == served:
            print(f"{SCHEMA_FILE.name} is the schema the code serves")
            return 0
        print(
            f"{SCHEMA_FILE} differs from the schema the code serves; after a deliberate "
            "change, rewrite it with: python -m api.graphql.schema",
            file=sys.stderr,
        )
        return 1
    SCHEMA_FILE.write_text(served)
    print(f"wrote {SCHEMA_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
