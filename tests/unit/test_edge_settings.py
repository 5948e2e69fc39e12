"""The HTTP edge's settings: defaults, bounds, and introspection by environment."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from infra.settings import Settings


def test_defaults() -> None:
    settings = Settings()

    assert settings.max_body_bytes == 1024 * 1024
    assert settings.body_timeout_seconds == 30
    assert settings.header_timeout_seconds == 10
    assert settings.graphql_introspection is None


def test_they_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAGEGATE_MAX_BODY_BYTES", "2048")
    monkeypatch.setenv("STAGEGATE_BODY_TIMEOUT_SECONDS", "2.5")
    monkeypatch.setenv("STAGEGATE_HEADER_TIMEOUT_SECONDS", "3")
    monkeypatch.setenv("STAGEGATE_GRAPHQL_INTROSPECTION", "true")

    settings = Settings()

    assert settings.max_body_bytes == 2048
    assert settings.body_timeout_seconds == 2.5
    assert settings.header_timeout_seconds == 3
    assert settings.introspection is True


@pytest.mark.parametrize(
    "setting",
    [
        {"max_body_bytes": 1023},
        {"max_body_bytes": 64 * 1024 * 1024 + 1},
        {"body_timeout_seconds": 0},
        {"header_timeout_seconds": -1},
    ],
)
def test_out_of_bounds_values_are_refused(setting: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        Settings(**setting)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("environment", "setting", "expected"),
    [
        ("production", None, False),
        ("development", None, True),
        ("production", True, True),
        ("development", False, False),
    ],
)
def test_introspection_follows_the_environment_unless_set(
    environment: str, setting: bool | None, expected: bool
) -> None:
    settings = Settings(environment=environment, graphql_introspection=setting)  # type: ignore[arg-type]
    assert settings.introspection is expected
