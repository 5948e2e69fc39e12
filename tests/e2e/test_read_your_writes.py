"""Issue 9: once a mutation answers, every read includes it, with no waiting anywhere.

The read-model rows commit in the transaction that appends the events, so a portal's next
request (the use-case list, the history, the backlog, the portfolio) finds the write: on both
stores, with the read models kept inline or by external workers (none runs here: a read
that waited for one would find the write missing).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI

from infra.bootstrap import Services, bootstrap
from infra.settings import Settings
from infra.web import build_api
from tests.builders import PRIORITY, unique_key
from tests.e2e.cloudevents_helpers import adoption, post
from tests.e2e.conftest import Api, issue_tokens

READS = """
query Reads($key: String!) {
  useCase(key: $key) { version history(last: 1) { edges { node { version type } } } }
  useCases(first: 100, filter: {stages: [PROPOSED]}) { edges { node { key version } } }
  backlog(first: 100) { edges { node { key version } } }
  portfolio { stages { stage count } }
}
"""


@pytest.fixture(
    params=[
        "sqlite-inline",
        pytest.param("postgres-inline", marks=pytest.mark.postgres),
        pytest.param("postgres-external", marks=pytest.mark.postgres),
    ]
)
def mode_api(
    request: pytest.FixtureRequest, serve: Callable[[FastAPI], str]
) -> Iterator[tuple[Api, Services]]:
    store, projections = request.param.split("-")
    base: Settings = request.getfixturevalue(f"{store}_settings")
    services = bootstrap(base.model_copy(update={"projections": projections}))
    api = Api(serve(build_api(services)), issue_tokens(services))
    yield api, services
    api.close()
    services.close()


def _reads(api: Api, key: str) -> dict[str, Any]:
    body = api.gql(READS, {"key": key}, token=api.tokens.auditor)
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


def _listed(connection: dict[str, Any], key: str) -> int | None:
    versions = [e["node"]["version"] for e in connection["edges"] if e["node"]["key"] == key]
    return versions[0] if versions else None


def test_every_read_includes_a_mutation_the_moment_it_answers(
    mode_api: tuple[Api, Services],
) -> None:
    api, _ = mode_api
    key = unique_key()
    api.mutate("registerUseCase", {"key": key, "title": "Read your writes"})
    scored = api.mutate("scorePriority", {"key": key, **PRIORITY})

    reads = _reads(api, key)

    assert scored["version"] == 2
    assert reads["useCase"]["history"]["edges"][0]["node"] == {
        "version": 2,
        "type": "PriorityScored",
    }
    assert _listed(reads["useCases"], key) == 2
    assert _listed(reads["backlog"], key) == 2
    [proposed] = [s for s in reads["portfolio"]["stages"] if s["stage"] == "PROPOSED"]
    assert proposed["count"] >= 1


def test_every_read_includes_a_posted_event_the_moment_it_is_accepted(
    mode_api: tuple[Api, Services],
) -> None:
    api, _ = mode_api
    key = unique_key()
    api.mutate("registerUseCase", {"key": key, "title": "Read your events"})

    accepted = post(api, adoption(key))
    reads = _reads(api, key)

    assert accepted.status_code == 200, accepted.text
    assert reads["useCase"]["history"]["edges"][0]["node"] == {
        "version": 2,
        "type": "AdoptionRecorded",
    }
    assert _listed(reads["useCases"], key) == 2
