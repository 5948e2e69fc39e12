"""Issue 8: what a caller gets when something fails that nobody's input caused.

An unexpected exception on any route is a 500 problem document naming the request's
correlation id and nothing of the failure. A mutation whose write is committed answers the
stored use case (or policy) even if the read models then fail to catch up with it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from eventsourcing.persistence import OperationalError
from fastapi import FastAPI

from api.events.ingest import Ingestion
from domain.values import Role
from infra.bootstrap import Services
from infra.web import build_api
from tests.builders import PRIORITY, Journey
from tests.e2e.cloudevents_helpers import adoption, post
from tests.e2e.conftest import Api

PROBLEM_JSON = "application/problem+json"
INTERNALS = "table stagegate_secret_internals is corrupt"


def _fail(*_: Any, **__: Any) -> Any:
    raise RuntimeError(INTERNALS)


def _assert_internal_error(response: httpx.Response, correlation_id: str | None = None) -> None:
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM_JSON
    document = response.json()
    assert document["type"] == "https://stagegate.dev/problems/internal-error"
    assert document["status"] == 500
    assert document["correlationId"] == response.headers["x-correlation-id"]
    if correlation_id is not None:
        assert document["correlationId"] == correlation_id
    assert INTERNALS not in response.text
    assert "Traceback" not in response.text


def test_an_exception_while_events_are_ingested_is_a_500_problem(
    services: Services, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    journey = Journey(services.app).register()
    monkeypatch.setattr(Ingestion, "ingest", _fail)

    response = post(api, adoption(journey.key), headers={"X-Correlation-ID": "ingest-failed-1"})

    _assert_internal_error(response, "ingest-failed-1")


def test_an_exception_on_any_route_is_a_500_problem(
    services: Services, serve: Callable[..., str]
) -> None:
    def fails() -> None:
        raise RuntimeError(INTERNALS)

    app: FastAPI = build_api(services)
    app.add_api_route("/fails", fails)

    response = httpx.get(f"{serve(app)}/fails")

    _assert_internal_error(response)


def _refresh_fails(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services.read_models, "refresh", _fail)


def test_a_committed_mutation_answers_its_use_case_when_the_read_models_fail(
    services: Services, api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    journey = Journey(services.app).register()
    before = services.app.use_case(journey.key).version
    _refresh_fails(services, monkeypatch)
    caplog.clear()

    result = api.mutate("scorePriority", {"key": journey.key, **PRIORITY})

    assert result["__typename"] == "UseCase"
    assert result["version"] == before + 1
    assert services.app.use_case(journey.key).version == before + 1
    [warning] = [r for r in caplog.records if r.name.startswith("api")]
    assert warning.levelno == logging.WARNING
    assert warning.exc_info is None
    assert INTERNALS in warning.getMessage()


def test_a_committed_policy_answers_the_policy_when_the_read_models_fail(
    services: Services, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = services.tokens.issue("admin", Role.ADMIN).secret_token
    version = services.app.policy().version
    _refresh_fails(services, monkeypatch)

    body = api.gql(
        'mutation { setPolicy(input: {stuckAfterDays: 9, reason: "Review."}) '
        "{ __typename ... on Policy { version values { stuckAfterDays } } } }",
        token=admin,
    )

    assert body == {
        "data": {
            "setPolicy": {
                "__typename": "Policy",
                "version": version + 1,
                "values": {"stuckAfterDays": 9},
            }
        }
    }
    assert services.app.policy().version == version + 1


def test_a_store_failing_after_the_first_policy_read_never_fails_a_committed_write(
    services: Services, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mutation reads the policy from the store once, before its write (for the answer; the
    gates judge by that same policy, remembered, which the store verifies as it commits).
    With the store failing from the second read on, the answer must be the stored use case,
    or an error with nothing written: never an error for a write that was committed (the
    answer's read used to come after the commit)."""
    journey = Journey(services.app).register()
    before = services.app.use_case(journey.key).version
    services.app.policies.forget()
    real = services.app._load_policy
    reads: list[int] = []

    def fails_after_the_first(*args: Any, **kwargs: Any) -> Any:
        reads.append(1)
        if len(reads) > 1:
            raise OperationalError("server closed the connection unexpectedly")
        return real(*args, **kwargs)

    monkeypatch.setattr(services.app, "_load_policy", fails_after_the_first)
    body = api.mutate_body("scorePriority", {"key": journey.key, **PRIORITY})
    monkeypatch.undo()
    after = services.app.use_case(journey.key).version

    assert len(reads) == 1
    if after == before:
        [error] = body["errors"]
        assert error["extensions"] == {"code": "UNAVAILABLE", "retryable": True, "written": False}
    else:
        assert "errors" not in body, body
        assert body["data"]["result"]["version"] == after == before + 1
