"""Query cost limits (STAGEGATE_GRAPHQL_MAX_DEPTH, _MAX_ALIASES) hold on every request,
including repeats, whose validation comes from the cache."""

from __future__ import annotations

from tests.e2e.conftest import Api


def _as_of_nested(depth: int) -> str:
    """useCase > asOf > asOf > ... > version, of operation depth ``depth`` (the top-level
    field is at depth 0)."""
    inner = "version"
    for _ in range(depth - 1):
        inner = f"asOf(version: 1) {{ {inner} }}"
    return f'{{ useCase(key: "nobody-has-this-key") {{ {inner} }} }}'


def _aliases(count: int) -> str:
    return "{ " + " ".join(f"a{n}: __typename" for n in range(count)) + " }"


def _messages(api: Api, query: str) -> list[str]:
    return [error["message"] for error in api.gql(query).get("errors", [])]


def test_a_query_deeper_than_the_limit_is_refused_every_time(api: Api) -> None:
    assert not any("depth" in m for m in _messages(api, _as_of_nested(12)))
    for _ in range(3):
        messages = _messages(api, _as_of_nested(13))
        assert any("exceeds maximum operation depth of 12" in m for m in messages), messages


def test_more_aliases_than_the_limit_are_refused_every_time(api: Api) -> None:
    assert _messages(api, _aliases(30)) == []
    for _ in range(3):
        messages = _messages(api, _aliases(31))
        assert any("aliases" in m.lower() for m in messages), messages
