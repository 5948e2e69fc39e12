"""JSON is read only up to ``MAX_JSON_DEPTH`` levels of nesting (arrays and objects alike)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from api.limits import MAX_JSON_DEPTH, Refused, loads_json


def _nested(depth: int, inner: Any = 1) -> Any:
    """Arrays and objects alternating, ``depth`` containers deep around ``inner``."""
    value = inner
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


def test_the_documented_depth_is_64() -> None:
    assert MAX_JSON_DEPTH == 64


def test_json_as_deep_as_the_limit_is_read() -> None:
    document = _nested(MAX_JSON_DEPTH)
    assert loads_json(json.dumps(document)) == document


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 1_000, 200_000])
def test_deeper_json_is_refused_naming_the_limit(depth: int) -> None:
    with pytest.raises(Refused) as refused:
        loads_json("[" * depth + "]" * depth)

    assert refused.value.document["status"] == 400
    assert refused.value.document["type"].endswith("/json-too-deep")
    assert str(MAX_JSON_DEPTH) in refused.value.document["detail"]


def test_brackets_inside_strings_do_not_count() -> None:
    assert loads_json(json.dumps({"text": "[" * 1_000})) == {"text": "[" * 1_000}


def test_wide_json_is_not_deep() -> None:
    wide = [[1] * 1_000 for _ in range(1_000)]
    assert loads_json(json.dumps(wide)) == wide


@pytest.mark.parametrize("body", [b"", b"{", b"\xff\xfe{}", b"NaN["])
def test_malformed_json_is_refused_as_malformed(body: bytes) -> None:
    with pytest.raises(Refused) as refused:
        loads_json(body)

    assert refused.value.document["type"].endswith("/malformed-json")
