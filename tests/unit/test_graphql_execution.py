"""The short paths of ``api.graphql.execution`` answer exactly what graphql-core's and
strawberry's own paths answer: the same data in the same order, and the same errors (message,
path, locations) with the same nulls, for plain leaves, methods, and every way they can fail."""

from __future__ import annotations

import enum
import json
from decimal import Decimal
from typing import Any

import pytest
import strawberry
from graphql import GraphQLObjectType
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from api.graphql import execution
from api.graphql.execution import PlainFieldsInOneStep, resolve_methods_directly


@strawberry.enum
class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@strawberry.type
class Part:
    label: str
    weight: int
    """Some parts hold None here: the error makes the part's list null (its items are
    non-null), or the item itself when the list is the long path's kind."""


@strawberry.interface
class Named:
    name: str


@strawberry.type
class Tag(Named):
    """A type with an interface: strawberry gives it an ``is_type_of`` (the long path)."""

    name: str


@strawberry.type
class Item:
    name: str
    count: int
    colour: Colour
    price: Decimal
    note: str | None
    must: str
    """Non-null, but some items hold None: an error, and the item becomes null."""
    number: int
    """Some items hold a text here, which Int refuses."""

    @strawberry.field
    def shout(self) -> str:
        return self.name.upper()

    @strawberry.field
    def fails(self) -> str | None:
        if self.count > 1:
            raise ValueError(f"{self.name} cannot say")
        return "said"

    @strawberry.field
    def repeat(self, times: int) -> str:
        return self.name * times

    @strawberry.field
    def who(self, info: strawberry.Info) -> str:
        return str(info.context["who"])

    @strawberry.field
    def main_part(self) -> Part:
        return Part(label=f"{self.name}-main", weight=None if self.count == 2 else 1)  # type: ignore[arg-type]

    @strawberry.field
    def spare(self) -> Part | None:
        if self.count == 3:
            raise LookupError(f"{self.name} has no spare")
        return None if self.count == 1 else Part(label="spare", weight=self.count)

    @strawberry.field
    def parts(self) -> list[Part] | None:
        weights = [1, None] if self.count == 3 else [1, 2]
        return [Part(label=f"{self.name}{i}", weight=w) for i, w in enumerate(weights)]  # type: ignore[arg-type]

    @strawberry.field
    def loose_parts(self) -> list[Part | None]:
        return [Part(label="x", weight=None), None]  # type: ignore[arg-type]

    @strawberry.field
    def gappy_parts(self) -> list[Part] | None:
        """A list of non-null parts that holds a None for one item."""
        return [Part(label="p", weight=1), None] if self.count == 2 else []  # type: ignore[list-item]

    @strawberry.field
    def tag(self) -> Tag:
        return Tag(name=self.name)


@strawberry.type
class Reading:
    """Values of the kinds built-in scalars pass through unchanged, and of the kinds they
    convert or refuse: an int beyond 32 bits, a float that is not finite, a bool for an Int,
    an int for a Float or a String."""

    whole: int
    ratio: float
    flag: bool
    text: str


def _item(*values: Any) -> Item:
    """An item holding what it is given, the wrong kinds of value included."""
    names = ("name", "count", "colour", "price", "note", "must", "number")
    return Item(**dict(zip(names, values, strict=True)))


@strawberry.type
class Query:
    @strawberry.field
    def items(self) -> list[Item | None]:
        return [
            _item("a", 1, Colour.RED, Decimal("1.50"), None, "x", 1),
            _item("b", 2, Colour.BLUE, Decimal("2"), "n", None, 2),
            _item("c", 3, Colour.RED, Decimal("0.1"), "m", "z", "three"),
        ]

    @strawberry.field
    def readings(self) -> list[Reading | None]:
        odd: list[Any] = [
            (2**31, float("nan"), True, 7),
            (True, 3, False, 2.5),
            (-(2**31), float("inf"), 1, "text"),
        ]
        return [Reading(whole=1, ratio=0.5, flag=True, text="plain")] + [
            Reading(whole=w, ratio=r, flag=f, text=t) for w, r, f, t in odd
        ]

    @strawberry.field
    def strict(self) -> list[Item]:
        return [_item("d", 1, Colour.RED, Decimal(1), None, None, 1)]


QUERIES = [  # each with the number of errors it has, on either path
    ("{ items { name count colour price note shout } }", 0),
    ("{ items { zz: count name aa: name ...F } } fragment F on Item { colour shout name }", 0),
    ("{ items { name must } }", 1),
    ("{ items { name number } }", 1),
    ("{ items { name fails shout } }", 2),
    ("{ items { name repeat(times: 2) who } }", 0),
    ("{ strict { name must } }", 1),
    ("{ items { name __typename } }", 0),
    ("{ items { name @skip(if: true) count @include(if: false) colour } }", 0),
    ("{ items { name mainPart { label } parts { label weight: label } } }", 0),
    ("{ items { name mainPart { label weight } } }", 1),
    ("{ items { name spare { label weight } } }", 1),
    ("{ items { name parts { label weight } } }", 1),
    ("{ items { name parts { label } heavy: parts { weight } } }", 1),
    ("{ items { name looseParts { label weight } tag { name } } }", 3),
    ("{ strict { name mainPart { weight } parts { weight } } }", 0),
    ("{ items { name gappyParts { label } } }", 1),
    ("{ readings { whole ratio flag text } }", 2),  # 2**31 and inf: each nulls its item
]


def _answer(schema: strawberry.Schema, query: str) -> dict[str, Any]:
    result = schema.execute_sync(query, context_value={"who": "me"})
    errors = [
        {
            "message": e.message,
            "path": e.path,
            "locations": [(x.line, x.column) for x in e.locations or ()],
        }
        for e in result.errors or ()
    ]
    return {"data": json.dumps(result.data), "errors": errors}  # the order of keys included


@pytest.mark.parametrize(("query", "errors"), QUERIES)
def test_the_short_paths_answer_what_the_long_path_answers(query: str, errors: int) -> None:
    long_path = strawberry.Schema(
        Query, execution_context_class=StrawberryGraphQLCoreExecutionContext
    )
    short = strawberry.Schema(Query, execution_context_class=PlainFieldsInOneStep)
    resolve_methods_directly(short._schema)

    answer = _answer(short, query)

    assert answer == _answer(long_path, query)
    assert len(answer["errors"]) == errors, answer["errors"]


def test_methods_that_ask_for_nothing_else_are_resolved_directly_and_others_are_not() -> None:
    schema = strawberry.Schema(Query, execution_context_class=PlainFieldsInOneStep)
    item = schema._schema.type_map["Item"]
    assert isinstance(item, GraphQLObjectType)
    fields = item.fields
    before = {name: fields[name].resolve for name in ("shout", "fails", "repeat", "who", "name")}

    resolve_methods_directly(schema._schema)

    assert fields["shout"].resolve is not before["shout"]
    assert fields["fails"].resolve is not before["fails"]
    # Arguments, info and plain attributes keep strawberry's own resolver.
    assert {n: fields[n].resolve for n in ("repeat", "who", "name")} == {
        n: before[n] for n in ("repeat", "who", "name")
    }


def test_the_short_paths_are_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without this, short paths that never applied would pass the tests above."""
    schema = strawberry.Schema(Query, execution_context_class=PlainFieldsInOneStep)
    resolve_methods_directly(schema._schema)
    leaves, objects = [], []
    value_of = execution._PlainLeaf.value_of
    complete_objects = PlainFieldsInOneStep._complete_objects

    def counting_leaves(self: Any, source: Any) -> Any:
        leaves.append(source)
        return value_of(self, source)

    def counting_objects(self: Any, plain: Any, *args: Any) -> Any:
        objects.append(plain)
        return complete_objects(self, plain, *args)

    monkeypatch.setattr(execution._PlainLeaf, "value_of", counting_leaves)
    monkeypatch.setattr(PlainFieldsInOneStep, "_complete_objects", counting_objects)
    schema.execute_sync("{ items { name shout colour mainPart { label } parts { label } } }")

    assert len(leaves) == 9 + 3 + 6  # the items' three leaves, each part's label
    assert len(objects) == 6  # each item's main part and parts
