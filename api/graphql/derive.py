"""GraphQL types derived from the domain's pydantic models, so schema and domain cannot drift.

Input types mirror the command models: GraphQL checks the types (a string where an Int
belongs, an unknown enum value, a missing required field); pydantic then checks the rest
(ranges, lengths, formats, cross-field rules) with full field paths, and its failures come back
as ``ValidationFailed``. Output types mirror the value objects: resolvers return the domain
objects themselves and strawberry reads their attributes.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from enum import Enum
from functools import cache
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin, get_type_hints

import strawberry
from pydantic import AwareDatetime, BaseModel
from pydantic.alias_generators import to_camel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from domain.values import NamedValue


@cache
def graphql_enum(python_enum: type[Enum]) -> Any:
    """Register a domain enum with strawberry once; GraphQL uses the upper-case member names."""
    description = inspect.cleandoc(python_enum.__doc__ or "") or None
    return strawberry.enum(python_enum, description=description)


V = TypeVar("V")

_SCALARS: tuple[type, ...] = (bool, int, float, Decimal, datetime, str)


def _graphql_type(annotation: Any, model_type: Callable[[type[BaseModel]], Any]) -> Any:
    origin = get_origin(annotation)
    if origin is dict:
        # GraphQL has no maps: numbers by name travel as a list of {name, value} pairs.
        return list[model_type(NamedValue)]  # type: ignore[misc]
    if origin is Annotated:
        return _graphql_type(get_args(annotation)[0], model_type)
    if origin in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        if len(members) != 1:
            raise TypeError(f"cannot map union {annotation} to GraphQL")
        return _graphql_type(members[0], model_type) | None
    if origin in (tuple, list):
        return list[_graphql_type(get_args(annotation)[0], model_type)]  # type: ignore[misc]
    if annotation is AwareDatetime:
        return datetime
    if isinstance(annotation, type):
        if issubclass(annotation, Enum):
            return graphql_enum(annotation)
        if issubclass(annotation, BaseModel):
            return model_type(annotation)
        for scalar in _SCALARS:
            if issubclass(annotation, scalar):
                return scalar
    raise TypeError(f"no GraphQL type for {annotation!r}")


def _description(model: type[BaseModel]) -> str | None:
    return inspect.cleandoc(model.__doc__ or "") or None


# --- inputs -------------------------------------------------------------------------------


def input_type(model: type[BaseModel]) -> Any:
    """The strawberry input type for ``model``, named ``<Model>Input`` (built once)."""
    return _input_type(model)


@cache
def _input_type(model: type[BaseModel]) -> Any:
    name = f"{model.__name__}Input"
    annotations: dict[str, Any] = {}
    namespace: dict[str, Any] = {"__annotations__": annotations, "__module__": __name__}
    for field_name, info in model.model_fields.items():
        graphql_type = _graphql_type(info.annotation, input_type)
        if not info.is_required() and not _nullable(graphql_type):
            # Omitted means "use the command's default" (often "now"), decided by pydantic.
            graphql_type = graphql_type | None
        annotations[field_name] = graphql_type
        namespace[field_name] = strawberry.field(
            default=_input_default(info), description=info.description
        )
    return strawberry.input(type(name, (), namespace), name=name, description=_description(model))


def _input_default(info: FieldInfo) -> Any:
    if info.is_required():
        return strawberry.UNSET
    default = info.default
    if default is PydanticUndefined or info.default_factory is not None:
        return None
    return default if isinstance(default, (str, int, float, bool, Enum)) else None


def _nullable(graphql_type: Any) -> bool:
    origin = get_origin(graphql_type)
    return origin in (Union, types.UnionType) and type(None) in get_args(graphql_type)


def to_wire(value: Any) -> Any:
    """A strawberry input (or list of them) as plain data for the command model.

    Fields left unset or null are dropped, so the command's own defaults apply; keys are the
    camelCase wire names, so validation errors name fields as the caller wrote them.
    """
    if isinstance(value, Enum):
        return value  # enum classes carry a strawberry definition too; members are values
    if isinstance(value, list):
        return [to_wire(item) for item in value]
    if hasattr(value, "__strawberry_definition__"):
        return {
            to_camel(name): to_wire(item)
            for name, item in vars(value).items()
            if item is not None and item is not strawberry.UNSET
        }
    return value


# --- outputs ------------------------------------------------------------------------------


def output_type(model: type[BaseModel]) -> Any:
    """The strawberry object type for ``model``, under the model's own name (built once)."""
    return _output_type(model)


@cache
def _output_type(model: type[BaseModel]) -> Any:
    annotations: dict[str, Any] = {}
    namespace: dict[str, Any] = {"__annotations__": annotations, "__module__": __name__}
    for field_name, info in model.model_fields.items():
        if _is_mapping(info.annotation):
            namespace[field_name] = strawberry.field(
                resolver=_pairs_resolver(field_name), description=info.description
            )
            continue
        annotations[field_name] = _graphql_type(info.annotation, output_type)
        namespace[field_name] = strawberry.field(description=info.description)
    for prop_name, prop in vars(model).items():
        # Public properties (``Adoption.rate``, ``QualityAlert.is_open``) are fields too.
        if isinstance(prop, property) and not prop_name.startswith("_") and prop.fget:
            annotations[prop_name] = _graphql_type(get_type_hints(prop.fget)["return"], output_type)
            namespace[prop_name] = strawberry.field(description=prop.__doc__)
    name = model.__name__
    return strawberry.type(type(name, (), namespace), name=name, description=_description(model))


def _is_mapping(annotation: Any) -> bool:
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return get_origin(annotation) is dict


def in_key_order(mapping: Mapping[Any, V]) -> list[V]:
    """A mapping's values in the order of its keys: enum members as declared, text sorted.

    A state loaded from a snapshot (stored as canonical JSON, keys sorted) holds its dicts in
    key order, one built event by event in the order the events came: the API shows one
    order for both, whichever the server happened to hold.
    """
    return [mapping[key] for key in sorted(mapping, key=_key_order)]


def _key_order(key: Any) -> tuple[int, str]:
    if isinstance(key, Enum):
        return list(type(key)).index(key), ""
    return 0, str(key)


def _pairs_resolver(field_name: str) -> Any:
    pair_type = output_type(NamedValue)

    def resolve(root: strawberry.Parent[Any]) -> Any:
        mapping: dict[str, float] = getattr(root, field_name)
        return [NamedValue(name=name, value=mapping[name]) for name in sorted(mapping)]

    resolve.__annotations__ = {"root": strawberry.Parent[Any], "return": list[pair_type]}  # type: ignore[misc,valid-type]
    return resolve
