"""An auditor asks GraphQL whether a use case's history is intact."""

from __future__ import annotations

from domain.values import Stage
from infra.bootstrap import Services
from infra.chain import HASHES_TABLE
from tests.builders import Journey
from tests.e2e.conftest import Api

QUERY = """query($key: String!) { useCase(key: $key) {
  version integrity { intact firstBadVersion reason headVersion headHash } } }"""


def test_an_intact_history_says_so_and_gives_its_head(services: Services, api: Api) -> None:
    journey = Journey(services.app).register().reach(Stage.PILOT)

    body = api.gql(QUERY, {"key": journey.key}, api.tokens.auditor)

    use_case = body["data"]["useCase"]
    integrity = use_case["integrity"]
    assert integrity["intact"] is True
    assert integrity["firstBadVersion"] is None
    assert integrity["headVersion"] == use_case["version"]
    assert len(integrity["headHash"]) == 64


def test_a_tampered_history_names_the_first_bad_version(services: Services, api: Api) -> None:
    journey = Journey(services.app).register().reach(Stage.PILOT)
    use_case_id = services.app.use_case(journey.key).id
    db = services.database
    with db.transaction() as curs:
        if db.is_postgres:
            curs.execute("SET LOCAL session_replication_role = replica")
        curs.execute(
            f"UPDATE {db.table(HASHES_TABLE)} SET hash = %s"
            " WHERE originator_id = %s AND originator_version = 2",
            ("f" * 64, use_case_id if db.is_postgres else str(use_case_id)),
        )

    integrity = api.gql(QUERY, {"key": journey.key}, api.tokens.auditor)["data"]["useCase"][
        "integrity"
    ]

    assert integrity["intact"] is False
    assert integrity["firstBadVersion"] == 2
    assert "version 2" in integrity["reason"]


def test_viewers_cannot_ask(services: Services, api: Api) -> None:
    journey = Journey(services.app).register()
    body = api.gql(QUERY, {"key": journey.key}, api.tokens.viewer)
    # The refused field alone is null: the use case's other fields are answered.
    assert body["data"]["useCase"]["integrity"] is None
    assert body["data"]["useCase"]["version"] == 1
    [error] = body["errors"]
    assert error["path"] == ["useCase", "integrity"]
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert "viewer" in error["message"]
