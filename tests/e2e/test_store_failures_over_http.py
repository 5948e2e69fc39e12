"""Issue 8, finding 6 over HTTP: a store that fails while a posted event is read or recorded
answers a retryable 503 problem, never 500 text/plain, and appends nothing."""

from __future__ import annotations

from typing import Any

import pytest
from eventsourcing.persistence import OperationalError

from infra.bootstrap import Services
from infra.deliveries import DeliveryLog
from tests.e2e.cloudevents_helpers import StoreMark, adoption, assert_problem, post, registered
from tests.e2e.conftest import Api


def _lost_connection(*args: Any, **kwargs: Any) -> Any:
    raise OperationalError("server closed the connection unexpectedly")


@pytest.mark.parametrize(
    "failing",
    ["use_case_source.check_out", "stored_policy"],
    ids=["reading-the-use-case", "reading-the-policy"],
)
def test_a_store_failing_while_an_event_is_judged_is_a_503_problem(
    api: Api, services: Services, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    key = registered(services.app).key
    mark = StoreMark.take(services)
    services.app.policies.forget()  # the policy is read from the store, not remembered
    *path, name = failing.split(".")
    target = services.app
    for part in path:
        target = getattr(target, part)
    monkeypatch.setattr(target, name, _lost_connection)

    response = post(api, adoption(key))

    assert_problem(response, 503, "store-unavailable")
    monkeypatch.undo()
    assert mark.appended_since(services) == 0
    assert post(api, adoption(key)).status_code == 200  # and a retry goes through


def test_a_store_failing_while_deliveries_are_looked_up_is_a_503_problem(
    api: Api, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = registered(services.app).key
    mark = StoreMark.take(services)
    monkeypatch.setattr(DeliveryLog, "_find", _lost_connection)

    response = post(api, adoption(key))

    monkeypatch.undo()
    assert_problem(response, 503, "store-unavailable")
    assert mark.appended_since(services) == 0
