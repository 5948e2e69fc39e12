"""graphql-core's executor, with plain leaf fields completed in one step.

A 50-row ``useCases`` page with the value fields completes about 3,200 fields, and most of them
are plain leaves: an attribute read off a dataclass (``amount``, ``month``, ``code``) and turned
into a scalar or an enum. graphql-core spends the same machinery on each of those as on a field
with a resolver (a path entry, a resolve-info object, the argument check, three awaitable checks
and the nested completion of a non-null type), and that machinery, not stagegate's resolvers,
was most of the page's time (bench/RESULTS.md, "The read targets with the value fields").

Two things are done about it:

- A field whose resolver is a method of its object's type that asks for nothing else (no
  arguments, no ``info``, no permission or extension, not async), such as ``UseCase.key``, is
  resolved by calling that method: strawberry's own wrapper would build an ``Info``, convert
  no arguments and chain no extensions around the same call (``resolve_methods_directly``,
  applied once to the built schema). graphql-core still completes the value as before.
- A plain leaf is read and coerced in one step. A field counts as one when it is read off its
  object (strawberry's default resolver, which it marks ``_is_default``, or a method as above),
  takes no arguments and its type is a scalar or an enum, nullable or not. Anything out of the
  ordinary (an exception, a null for a non-null field, a value the scalar refuses) sends the
  field back to graphql-core's own path, which reads it again (reading an attribute or calling
  such a method has no side effect) and reports it exactly as before: the same error, message
  and path, and the same null propagation.

Every other field takes graphql-core's path unchanged. ``tests/unit/test_graphql_execution.py``
holds the short and the long paths to the same answers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import Any

from graphql import (
    GraphQLLeafType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLSchema,
    Undefined,
    is_leaf_type,
)
from graphql.execution.collect_fields import GroupedFieldSet
from graphql.pyutils import Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

_READS_ITS_OBJECT = "_is_default"
"""The mark strawberry gives its default resolver, which reads an attribute off the object;
a method resolved directly carries it too."""

_NOT_PLAIN = object()
"""What ``_PlainLeaf.value_of`` answers when graphql-core's own path must complete the field."""


_PLAIN_VALUES = frozenset({str, int, float, bool, Decimal, datetime, date})
"""Kinds of value that are neither an error nor awaitable, so need no closer look."""


class _PlainLeaf:
    __slots__ = ("non_null", "read", "scalar")

    def __init__(self, read: Callable[..., Any], scalar: GraphQLLeafType, non_null: bool):
        self.read = read
        self.scalar = scalar
        self.non_null = non_null

    def value_of(self, source: Any) -> Any:
        try:
            value = self.read(source, None)
            if value is None or value is Undefined:
                return _NOT_PLAIN if self.non_null else None
            if type(value) not in _PLAIN_VALUES and (
                isinstance(value, Exception) or hasattr(value, "__await__")
            ):
                return _NOT_PLAIN
            coerced = self.scalar.coerce_output_value(value)
        except Exception:  # reported by graphql-core's path, which reads the field again
            return _NOT_PLAIN
        if coerced is None or coerced is Undefined:
            return _NOT_PLAIN
        return coerced


@cache
def _plain_leaves(parent_type: GraphQLObjectType) -> dict[str, _PlainLeaf]:
    """The plain leaf fields of a type, by field name. The schema's types live as long as the
    process (the schema is built once), so they are cached by identity."""
    leaves = {}
    for name, field in parent_type.fields.items():
        resolve = field.resolve
        if resolve is None or not getattr(resolve, _READS_ITS_OBJECT, False) or field.args:
            continue
        kind = field.type
        non_null = isinstance(kind, GraphQLNonNull)
        if non_null:
            kind = kind.of_type
        if not is_leaf_type(kind):
            continue
        definition = (field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
        if (
            isinstance(definition, StrawberryField)
            and definition.base_resolver is None
            and definition.default_resolver is getattr
        ):
            # What strawberry's default resolver does, without its two calls around it.
            read: Callable[..., Any] = _attribute(definition.python_name)
        else:
            read = resolve
        leaves[name] = _PlainLeaf(read, kind, non_null)
    return leaves


def _attribute(name: str) -> Callable[..., Any]:
    def read(source: Any, _info: None = None) -> Any:
        return getattr(source, name)

    return read


def resolve_methods_directly(schema: GraphQLSchema) -> None:
    """Resolve each field whose resolver is a method asking for nothing but its object by
    calling that method (see the module's docstring)."""
    for named in schema.type_map.values():
        if not isinstance(named, GraphQLObjectType) or named.name.startswith("__"):
            continue
        for field in named.fields.values():
            definition = (field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
            if not isinstance(definition, StrawberryField) or field.args:
                continue
            resolver = definition.base_resolver
            if (
                resolver is None
                or definition.extensions
                or resolver.arguments
                or resolver.is_async
                or resolver.self_parameter is None
                or resolver.info_parameter is not None
                or resolver.root_parameter is not None
                or resolver.parent_parameter is not None
            ):
                continue
            method = resolver.wrapped_func
            if isinstance(method, staticmethod | classmethod):  # no object to call it on
                continue
            field.resolve = _calling(method)


def _calling(method: Callable[[Any], Any]) -> Callable[..., Any]:
    def resolve(source: Any, _info: GraphQLResolveInfo[Any] | None = None) -> Any:
        return method(source)

    setattr(resolve, _READS_ITS_OBJECT, True)
    return resolve


class PlainLeavesInOneStep(StrawberryGraphQLCoreExecutionContext):
    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: GroupedFieldSet,
        position_context: Any,
    ) -> Any:
        leaves = _plain_leaves(parent_type)
        # strawberry gives every execution a manager, empty unless an extension resolves
        # fields; a middleware must see every field, so then every field takes the long path.
        middleware = self.middleware_manager
        if not leaves or (middleware is not None and middleware.middlewares):
            return super().execute_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )
        done: dict[str, Any] = {}
        rest: GroupedFieldSet = {}
        for response_name, field_details_list in grouped_field_set.items():
            node = field_details_list[0].node
            leaf = leaves.get(node.name.value)
            if leaf is not None and not node.arguments:
                value = leaf.value_of(source_value)
                if value is not _NOT_PLAIN:
                    done[response_name] = value
                    continue
            rest[response_name] = field_details_list
        if not rest:
            return done
        others = super().execute_fields(parent_type, source_value, path, rest, position_context)
        if not done:
            return others
        if isinstance(others, dict):
            return _in_order(grouped_field_set, done, others)
        return _in_order_once_awaited(grouped_field_set, done, others)


def _in_order(
    grouped_field_set: GroupedFieldSet, done: dict[str, Any], others: dict[str, Any]
) -> dict[str, Any]:
    """Both parts in the order the query asked for them (a response keeps the query's order)."""
    results = {}
    for response_name in grouped_field_set:
        if response_name in done:
            results[response_name] = done[response_name]
        elif response_name in others:  # graphql-core leaves out fields the type lacks
            results[response_name] = others[response_name]
    return results


async def _in_order_once_awaited(
    grouped_field_set: GroupedFieldSet, done: dict[str, Any], others: Awaitable[dict[str, Any]]
) -> dict[str, Any]:
    return _in_order(grouped_field_set, done, await others)
