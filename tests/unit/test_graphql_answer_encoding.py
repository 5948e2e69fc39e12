"""GraphQL answers are encoded by orjson, and what orjson refuses by the standard library: no
answer fails to encode because of the value it holds."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest

from api.graphql.router import ThreadedGraphQLRouter


def _encode(data: object) -> bytes:
    # encode_json reads nothing of the router: no schema is needed to call it.
    return ThreadedGraphQLRouter.encode_json(object.__new__(ThreadedGraphQLRouter), data)


def test_an_ordinary_answer_is_orjsons_encoding() -> None:
    data = {"data": {"useCase": {"key": "a", "rate": 0.25, "count": 3, "title": "Zürich ✓"}}}

    assert _encode(data) == orjson.dumps(data)


@pytest.mark.parametrize(
    "value",
    [
        2**64,  # a JSON scalar may hold an integer orjson cannot write
        {1: "a key that is not a string"},
        "a lone surrogate \ud800",
    ],
)
def test_what_orjson_refuses_is_encoded_by_the_standard_library(value: Any) -> None:
    data = {"data": {"payload": value}}
    with pytest.raises(TypeError):
        orjson.dumps(data)

    encoded = _encode(data)

    assert encoded == json.dumps(data, separators=(",", ":")).encode()
    assert json.loads(encoded) == json.loads(json.dumps(data))
