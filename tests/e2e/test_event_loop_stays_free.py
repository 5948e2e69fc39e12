"""Issue 8: a request's CPU work never holds the event loop, so others are answered meanwhile.

Each test holds one step of a request's work (a GraphQL resolver, reading a posted event) on a
latch, and asks ``/healthz`` while it is held. Had that step run on the event loop, nothing
else could be answered until it was let go; the order of what happened says which it was.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from api.events import router as events_router
from api.graphql import types as graphql_types
from infra.bootstrap import Services
from tests.builders import Journey
from tests.e2e.cloudevents_helpers import adoption, post
from tests.e2e.conftest import Api

LATCH_SECONDS = 20.0
"""Longest a latch holds (a guard against a hung run): the test lets go far sooner unless the
server is stuck, and a stuck server shows as the wrong order."""


class Latch:
    """Wraps a function so that each call waits until released, recording the order."""

    def __init__(self, order: list[str]) -> None:
        self.order = order
        self.entered = threading.Event()
        self.released = threading.Event()

    def around(self, function: Callable[..., Any]) -> Callable[..., Any]:
        def held(*args: Any, **kwargs: Any) -> Any:
            self.entered.set()
            self.released.wait(LATCH_SECONDS)
            self.order.append("held work done")
            return function(*args, **kwargs)

        return held


def _healthz_while_held(api: Api, latch: Latch, request: Callable[[], Any]) -> Any:
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(request)
        assert latch.entered.wait(LATCH_SECONDS), "the request never reached the held step"
        health = httpx.get(f"{api.base_url}/healthz", timeout=2 * LATCH_SECONDS)
        latch.order.append("healthz answered")
        latch.released.set()
        result = pending.result()
    assert health.status_code == 200
    return result


def test_healthz_answers_while_a_graphql_resolver_computes(
    services: Services, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    journey = Journey(services.app).register()
    order: list[str] = []
    latch = Latch(order)
    monkeypatch.setattr(graphql_types, "gate_status", latch.around(graphql_types.gate_status))

    body = _healthz_while_held(
        api,
        latch,
        lambda: api.gql(
            "query($key: String!) { useCase(key: $key) { gate { next } } }", {"key": journey.key}
        ),
    )

    assert order == ["healthz answered", "held work done"]
    assert body == {"data": {"useCase": {"gate": {"next": "PILOT"}}}}


def test_healthz_answers_while_posted_events_are_read(
    services: Services, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    journey = Journey(services.app).register()
    order: list[str] = []
    latch = Latch(order)
    monkeypatch.setattr(events_router, "read_event", latch.around(events_router.read_event))

    response = _healthz_while_held(api, latch, lambda: post(api, adoption(journey.key)))

    assert order == ["healthz answered", "held work done"]
    assert response.status_code == 200, response.text
