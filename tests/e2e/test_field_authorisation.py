"""Field-level authorisation: a caller refused one field gets every other field it asked for,
and one error for that field, at its path, with code FORBIDDEN; the refusal is one warning in
the log, without a traceback."""

from __future__ import annotations

import logging

import pytest

from infra.bootstrap import Services
from tests.builders import Journey
from tests.e2e.conftest import Api

QUERY = """
query($key: String!) {
  useCase(key: $key) {
    key
    stage
    gate { next }
    history { edges { cursor } }
    integrity { intact }
    asOf(version: 1) { stage }
  }
  useCases(first: 5) { edges { node { key history { edges { cursor } } } } }
}
"""


def test_a_viewer_gets_the_fields_it_may_read_and_an_error_for_each_it_may_not(
    services: Services, api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    journey = Journey(services.app).register()
    caplog.clear()

    body = api.gql(QUERY, {"key": journey.key}, token=api.tokens.viewer)

    use_case = body["data"]["useCase"]
    assert use_case == {
        "key": journey.key,
        "stage": "PROPOSED",
        "gate": {"next": "PILOT"},
        "history": None,
        "integrity": None,
        "asOf": None,
    }
    nodes = [edge["node"] for edge in body["data"]["useCases"]["edges"]]
    assert {"key": journey.key, "history": None} in nodes
    refused = {tuple(error["path"]): error for error in body["errors"]}
    assert {("useCase", "history"), ("useCase", "integrity"), ("useCase", "asOf")} <= set(refused)
    assert all(error["extensions"]["code"] == "FORBIDDEN" for error in body["errors"])
    assert "cannot read history" in refused[("useCase", "history")]["message"]
    # One warning for the request, no traceback, nothing at ERROR.
    server = [r for r in caplog.records if r.name.startswith(("api", "strawberry"))]
    assert [r.levelno for r in server if r.levelno >= logging.WARNING] == [logging.WARNING]
    assert all(r.exc_info is None for r in server)


def test_an_auditor_reads_the_same_fields_without_error(services: Services, api: Api) -> None:
    journey = Journey(services.app).register()

    body = api.gql(QUERY, {"key": journey.key}, token=api.tokens.auditor)

    assert "errors" not in body, body["errors"]
    use_case = body["data"]["useCase"]
    assert use_case["history"]["edges"]
    assert use_case["integrity"] == {"intact": True}
    assert use_case["asOf"] == {"stage": "PROPOSED"}
