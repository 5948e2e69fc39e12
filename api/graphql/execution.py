"""graphql-core's executor, with plain fields completed in one step.

A 50-row ``useCases`` page with the value fields completes about 3,200 fields, and most of them
are plain leaves: an attribute read off a dataclass (``amount``, ``month``, ``code``) and turned
into a scalar or an enum. graphql-core spends the same machinery on each of those as on a field
with a resolver (a path entry, a resolve-info object, the argument check, three awaitable checks
and the nested completion of a non-null type), and that machinery, not stagegate's resolvers,
was most of the page's time (bench/RESULTS.md, "The read targets with the value fields").

What is done about it:

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
  and path, and the same null propagation. A value a built-in scalar would answer unchanged (a
  ``str`` for String, an ``int`` within 32 bits for Int, a finite ``float`` for Float, a
  ``bool`` for Boolean) is answered without calling the scalar.
- An object, or a list of non-null objects, read off its parent the same way is completed by
  collecting its fields, as graphql-core does once it has checked the value's kind, without
  the resolve info and the dispatch on the field's type. A value out of the ordinary (a null,
  an exception, an awaitable, not a list) goes back to graphql-core's path before anything of
  it is completed; errors met below are handled as graphql-core handles them, item by item and
  then for the field. Types with interfaces, which strawberry gives an ``is_type_of`` check,
  and lists whose items may be null always take graphql-core's path.

How each field of an object is taken is decided once per field set of the query, not once per
object: every item of a list shares it (``PlainFieldsInOneStep._plan``).

Every other field takes graphql-core's path unchanged. ``tests/unit/test_graphql_execution.py``
holds the short and the long paths to the same answers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import Any

from graphql import (
    GraphQLBoolean,
    GraphQLFloat,
    GraphQLInt,
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLString,
    Undefined,
    is_leaf_type,
)
from graphql.execution.collect_fields import FieldDetailsList, GroupedFieldSet
from graphql.pyutils import Path, gather_with_cancel
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

_CALLS_ITS_METHOD = "_stagegate_calls_its_method"
"""The mark of a resolver ``resolve_methods_directly`` made. It is not strawberry's own
``_is_default``, which says "no resolver of the user's" (its tracing skips such fields)."""


def _reads_its_object(resolve: Any) -> bool:
    """Strawberry's default resolver (an attribute read off the object) or a method called
    directly: either reads its object and nothing else."""
    return getattr(resolve, "_is_default", False) or getattr(resolve, _CALLS_ITS_METHOD, False)


_NOT_PLAIN = object()
"""What ``_PlainLeaf.value_of`` answers when graphql-core's own path must complete the field."""


_PLAIN_VALUES = frozenset({str, int, float, bool, Decimal, datetime, date})
"""Kinds of value that are neither an error nor awaitable, so need no closer look."""


_BUILT_IN_SCALARS: dict[GraphQLScalarType, type] = {
    GraphQLString: str,
    GraphQLInt: int,
    GraphQLFloat: float,
    GraphQLBoolean: bool,
}
_INT_RANGE = range(-(2**31), 2**31)
"""GraphQL's ``Int``: 32 bits, signed."""


class _PlainLeaf:
    __slots__ = ("attribute", "exact_type", "non_null", "read", "scalar")

    def __init__(
        self,
        read: Callable[..., Any],
        scalar: GraphQLLeafType,
        non_null: bool,
        attribute: str | None = None,
    ):
        self.read = read
        self.attribute = attribute
        """The attribute ``read`` reads, where that is all it does: then it is read here,
        without calling ``read``."""
        self.scalar = scalar
        self.non_null = non_null
        self.exact_type = (
            _BUILT_IN_SCALARS.get(scalar) if isinstance(scalar, GraphQLScalarType) else None
        )
        """For a built-in scalar, the Python type its values pass through as they are (the
        scalar's coercion answers an ``int`` in range, a finite ``float``, any ``str`` or
        ``bool`` unchanged); other values are coerced by the scalar."""

    def value_of(self, source: Any) -> Any:
        try:
            attribute = self.attribute
            value = getattr(source, attribute) if attribute is not None else self.read(source, None)
            kind = type(value)
            if kind is self.exact_type and (
                (kind is not int or value in _INT_RANGE)
                and (kind is not float or math.isfinite(value))
            ):
                return value
            if value is None or value is Undefined:
                return _NOT_PLAIN if self.non_null else None
            if kind not in _PLAIN_VALUES and (
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
        if resolve is None or not _reads_its_object(resolve) or field.args:
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
            leaves[name] = _PlainLeaf(resolve, kind, non_null, definition.python_name)
        else:
            leaves[name] = _PlainLeaf(resolve, kind, non_null)
    return leaves


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

    setattr(resolve, _CALLS_ITS_METHOD, True)
    return resolve


class _PlainObjects:
    """An object, or a list of non-null objects, read off its parent (as plain leaves are)."""

    __slots__ = ("item_type", "list_type", "object_type", "read", "type")

    def __init__(
        self,
        read: Callable[..., Any],
        field_type: GraphQLOutputType,
        item_type: GraphQLOutputType | None,
        object_type: GraphQLObjectType,
    ):
        self.read = read
        self.type = field_type
        self.list_type = item_type is not None
        self.item_type = item_type if item_type is not None else field_type
        self.object_type = object_type


@cache
def _plain_objects(parent_type: GraphQLObjectType) -> dict[str, _PlainObjects]:
    """The fields of a type whose value is an object or a list of non-null objects, read off
    the parent without arguments; only objects that need no ``is_type_of`` check (strawberry
    gives one to types with interfaces), so completing them is collecting their fields."""
    plain = {}
    for name, field in parent_type.fields.items():
        resolve = field.resolve
        if resolve is None or not _reads_its_object(resolve) or field.args:
            continue
        kind = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
        item_type = None
        if isinstance(kind, GraphQLList):
            item_type = kind.of_type
            if not isinstance(item_type, GraphQLNonNull):  # null items: the long path
                continue
            kind = item_type.of_type
        if isinstance(kind, GraphQLObjectType) and kind.is_type_of is None:
            plain[name] = _PlainObjects(resolve, field.type, item_type, kind)
    return plain


_Step = tuple[str, FieldDetailsList, "_PlainLeaf | None", "_PlainObjects | None"]
"""A field of a plan: its response name, its nodes, and how it may be taken the short way."""


class PlainFieldsInOneStep(StrawberryGraphQLCoreExecutionContext):
    _plans: dict[int, tuple[GroupedFieldSet, GraphQLObjectType, list[_Step] | None]] | None = None
    """Each grouped field set's plan, by the set's identity (``_plan``), for one execution."""

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: GroupedFieldSet,
        position_context: Any,
    ) -> Any:
        """graphql-core's ``execute_fields``, field by field in the query's order, with the
        plain fields taken the short way."""
        # strawberry gives every execution a manager, empty unless an extension resolves
        # fields; a middleware must see every field, so then every field takes the long path.
        middleware = self.middleware_manager
        plan = self._plan(parent_type, grouped_field_set)
        if plan is None or (middleware is not None and middleware.middlewares):
            return super().execute_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )
        results: dict[str, Any] = {}
        is_awaitable = self.is_awaitable
        awaitable_fields: list[str] = []
        try:
            for response_name, field_details_list, leaf, objects in plan:
                if leaf is not None:
                    value = leaf.value_of(source_value)
                    if value is not _NOT_PLAIN:
                        results[response_name] = value
                        continue
                if objects is not None:
                    value = self._complete_objects(
                        objects,
                        source_value,
                        Path(path, response_name, parent_type.name),
                        field_details_list,
                        position_context,
                    )
                    if value is not _NOT_PLAIN:
                        results[response_name] = value
                        if is_awaitable(value):
                            awaitable_fields.append(response_name)
                        continue
                result = self.execute_field(
                    parent_type,
                    source_value,
                    field_details_list,
                    Path(path, response_name, parent_type.name),
                    position_context,
                )
                if result is not Undefined:
                    results[response_name] = result
                    if is_awaitable(result):
                        awaitable_fields.append(response_name)
        except Exception:
            if awaitable_fields:  # as graphql-core does: they may fail too
                self.settle_in_background([results[name] for name in awaitable_fields])
            raise
        if not awaitable_fields:
            return results

        async def get_results() -> dict[str, Any]:
            awaited = await gather_with_cancel(*(results[name] for name in awaitable_fields))
            results.update(zip(awaitable_fields, awaited, strict=True))
            return results

        return get_results()

    def _plan(
        self, parent_type: GraphQLObjectType, grouped_field_set: GroupedFieldSet
    ) -> list[_Step] | None:
        """How each field of ``grouped_field_set`` is taken (None: every one the long way).

        graphql-core collects an object's fields once per field of the query (its memo), so
        every item of a list comes with the same grouped field set: the plan is made once for
        all of them, and kept with the set, as graphql-core keeps its memo, so that the set's
        identity cannot be reused within the execution."""
        plans = self._plans
        if plans is None:
            plans = self._plans = {}
        kept = plans.get(id(grouped_field_set))
        if kept is not None and kept[0] is grouped_field_set and kept[1] is parent_type:
            return kept[2]
        leaves = _plain_leaves(parent_type)
        objects = _plain_objects(parent_type)
        plan: list[_Step] | None = None
        if leaves or objects:
            plan = []
            for response_name, field_details_list in grouped_field_set.items():
                node = field_details_list[0].node
                name = None if node.arguments else node.name.value
                plan.append(
                    (
                        response_name,
                        field_details_list,
                        leaves.get(name) if name is not None else None,
                        objects.get(name) if name is not None else None,
                    )
                )
        plans[id(grouped_field_set)] = (grouped_field_set, parent_type, plan)
        return plan

    def _complete_objects(
        self,
        plain: _PlainObjects,
        source: Any,
        path: Path,
        field_details_list: FieldDetailsList,
        position_context: Any,
    ) -> Any:
        """What graphql-core's ``execute_field`` completes for such a field, without its
        resolve info and its dispatch on the field's type. A value out of the ordinary (an
        exception, a null, an awaitable, not a list) goes back to the long path before
        anything of it is completed; errors met while completing are handled as graphql-core
        handles them, item by item and then for the field."""
        try:
            value = plain.read(source, None)
        except Exception:  # the long path reads again and reports it
            return _NOT_PLAIN
        if value is None or value is Undefined or isinstance(value, Exception):
            return _NOT_PLAIN
        if plain.list_type:
            if not isinstance(value, list | tuple) or any(
                item is None or isinstance(item, Exception) or hasattr(item, "__await__")
                for item in value
            ):
                return _NOT_PLAIN
        elif hasattr(value, "__await__"):
            return _NOT_PLAIN
        complete = self.collect_and_execute_subfields
        object_type = plain.object_type
        try:
            if not plain.list_type:
                completed = complete(object_type, field_details_list, path, value, position_context)
                if self.is_awaitable(completed):
                    return self._awaited(plain, completed, path, field_details_list)
                return completed
            items = []
            for index, item in enumerate(value):
                item_path = path.add_key(index, None)
                try:
                    items.append(
                        complete(object_type, field_details_list, item_path, item, position_context)
                    )
                except Exception as raw_error:  # items are non-null: this raises again
                    self.handle_field_error(
                        raw_error, plain.item_type, field_details_list, item_path
                    )
            if any(self.is_awaitable(item) for item in items):
                return self._awaited(plain, items, path, field_details_list)
            return items
        except Exception as raw_error:
            self.handle_field_error(raw_error, plain.type, field_details_list, path)
            return None

    async def _awaited(
        self, plain: _PlainObjects, completed: Any, path: Path, field_details_list: FieldDetailsList
    ) -> Any:
        """The same for fields below that resolve asynchronously (none of stagegate's do)."""
        try:
            if not plain.list_type:
                return await completed
            items = []
            for index, item in enumerate(completed):
                if self.is_awaitable(item):
                    try:
                        item = await item
                    except Exception as raw_error:
                        item_path = path.add_key(index, None)
                        self.handle_field_error(
                            raw_error, plain.item_type, field_details_list, item_path
                        )
                items.append(item)
            return items
        except Exception as raw_error:
            self.handle_field_error(raw_error, plain.type, field_details_list, path)
            return None


async def _awaitable(value: Any) -> Any:
    return await value if hasattr(value, "__await__") else value
