"""A mutation answers its use case with the gate judged by the policy its command was judged
by: the store checked that policy was in force when the command committed, so the answer
reads nothing after the write (a read there could turn a committed write into an error)."""

from __future__ import annotations

from typing import Any

import pytest

from domain.values import Role
from infra.bootstrap import Services
from tests.builders import PRIORITY
from tests.e2e.conftest import Api

SCORE = """
mutation Score($input: ScorePriorityInput!) {
  scorePriority(input: $input) {
    __typename
    ... on UseCase { version gate { policyVersion next unmet { code } } }
  }
}
"""


def test_a_mutation_answers_the_gate_by_the_policy_it_was_judged_by_without_reading_it(
    api: Api, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = services.tokens.issue("admin", Role.ADMIN).secret_token
    policy = api.gql(
        "mutation { setPolicy(input: {minPriorityScore: 5}) { ... on Policy { version } } }",
        None,
        admin,
    )
    assert policy == {"data": {"setPolicy": {"version": 1}}}
    key = "answered-by-its-policy"
    assert api.mutate("registerUseCase", {"key": key, "title": "Judged"})["__typename"] == "UseCase"
    reads: list[Any] = []
    real = services.app.policies.in_force

    def in_force() -> Any:
        reads.append("in force")
        return real()

    monkeypatch.setattr(services.app.policies, "in_force", in_force)

    body = api.gql(SCORE, {"input": {"key": key, **PRIORITY}})

    answer = body["data"]["scorePriority"]
    assert answer["__typename"] == "UseCase", body
    assert answer["version"] == 2
    # Under the default policy (minimum score 3) a 5/4/4 would meet PRIORITY_SCORED; under
    # policy 1 (minimum 5) it does not.
    assert answer["gate"]["policyVersion"] == 1
    assert "PRIORITY_SCORED" in [unmet["code"] for unmet in answer["gate"]["unmet"]]
    assert reads == []
