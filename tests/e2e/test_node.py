"""Relay object identification: every use case and audit entry has a global id, and
``node(id)`` finds the same object again, under the same roles as everywhere."""

from __future__ import annotations

import base64

from domain import commands as c
from domain.gates import RequirementCode as R
from domain.policy import POLICY_ID
from infra.bootstrap import Services
from tests.builders import ADMIN, Journey, ctx
from tests.e2e.conftest import Api

IDS = """
query($key: String!) {
  useCase(key: $key) { id key history { edges { node { id version type } } } }
}
"""
NODE = """
query($id: ID!) {
  node(id: $id) {
    __typename
    id
    ... on UseCase { key stage }
    ... on AuditEntry { version type }
  }
}
"""


def _ids(api: Api, key: str) -> tuple[str, list[dict[str, object]]]:
    body = api.gql(IDS, {"key": key}, token=api.tokens.auditor)
    use_case = body["data"]["useCase"]
    return use_case["id"], [edge["node"] for edge in use_case["history"]["edges"]]


def test_node_finds_a_use_case_and_each_audit_entry_by_their_global_ids(
    services: Services, api: Api
) -> None:
    journey = Journey(services.app).register()
    journey.satisfy(R.PRIORITY_SCORED)  # a second entry in the history
    use_case_id, entries = _ids(api, journey.key)

    found = api.gql(NODE, {"id": use_case_id}, token=api.tokens.viewer)["data"]["node"]
    assert found == {
        "__typename": "UseCase",
        "id": use_case_id,
        "key": journey.key,
        "stage": "PROPOSED",
    }
    assert entries
    for entry in entries:
        node = api.gql(NODE, {"id": entry["id"]}, token=api.tokens.auditor)["data"]["node"]
        assert node == {"__typename": "AuditEntry", **entry}
    # Opaque to callers, but Relay's usual form: base64 of Type:id.
    assert base64.b64decode(use_case_id).decode().startswith("UseCase:")
    assert len({use_case_id, *(e["id"] for e in entries)}) == 1 + len(entries)


def test_a_viewer_gets_no_audit_entry_by_its_id(services: Services, api: Api) -> None:
    journey = Journey(services.app).register()
    _, [entry, *_] = _ids(api, journey.key)

    body = api.gql(NODE, {"id": entry["id"]}, token=api.tokens.viewer)

    assert body["data"] == {"node": None}
    [error] = body["errors"]
    assert error["path"] == ["node"]
    assert error["extensions"]["code"] == "FORBIDDEN"


def test_an_id_that_names_nothing_is_null_and_one_that_is_no_id_is_an_error(
    services: Services, api: Api
) -> None:
    gone = base64.b64encode(b"UseCase:00000000-0000-0000-0000-000000000000").decode()
    # The policy is an aggregate too: its id under the UseCase type names no use case.
    policy = base64.b64encode(f"UseCase:{POLICY_ID}".encode()).decode()
    services.app.set_policy(c.SetPolicy.parse({"minAdoption": 0.4}), ctx(ADMIN))
    assert api.gql(NODE, {"id": gone})["data"] == {"node": None}
    assert api.gql(NODE, {"id": policy})["data"] == {"node": None}

    body = api.gql(NODE, {"id": "not-an-id"})
    assert body["data"] == {"node": None}
    assert "is not a global id" in body["errors"][0]["message"]
    other = base64.b64encode(b"Policy:1").decode()
    body = api.gql(NODE, {"id": other})
    assert "is not the id of a UseCase or an AuditEntry" in body["errors"][0]["message"]
