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
from api.graphql.execution import PlainLeavesInOneStep, resolve_methods_directly


@strawberry.enum
class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


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
    short = strawberry.Schema(Query, execution_context_class=PlainLeavesInOneStep)
    resolve_methods_directly(short._schema)

    answer = _answer(short, query)

    assert answer == _answer(long_path, query)
    assert len(answer["errors"]) == errors, answer["errors"]


def test_methods_that_ask_for_nothing_else_are_resolved_directly_and_others_are_not() -> None:
    schema = strawberry.Schema(Query, execution_context_class=PlainLeavesInOneStep)
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
    """Without this, a short path that never applied would pass the tests above."""
    schema = strawberry.Schema(Query, execution_context_class=PlainLeavesInOneStep)
    resolve_methods_directly(schema._schema)
    read = []
    real = execution._PlainLeaf.value_of

    def counting(self: Any, source: Any) -> Any:
        read.append(source)
        return real(self, source)

    monkeypatch.setattr(execution._PlainLeaf, "value_of", counting)
    schema.execute_sync("{ items { name shout colour } }")

    assert len(read) == 9
