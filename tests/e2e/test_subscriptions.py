"""GraphQL subscriptions over a real WebSocket to a real server, on SQLite and PostgreSQL.

Each test waits until the server holds its subscriptions (a ping sent after them is answered
only then) before it commits anything, so what it expects is exactly what was committed
after.
A refused command appends nothing, so it is told to nobody; what is told is in the log's
order. The cross-process case is ``tests/integration/test_two_servers.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI

from api.graphql import subscriptions
from domain.usecase import use_case_id
from infra.bootstrap import Services
from infra.database import AppendSignal, Database
from infra.web import build_api
from tests.builders import PRIORITY, TECH, unique_key
from tests.e2e.conftest import Api, Tokens
from tests.e2e.graphql_ws import GraphQLSocket


@dataclass
class LiveServer:
    api: Api
    app: FastAPI

    def socket(self) -> GraphQLSocket:
        return GraphQLSocket(self.api.base_url)

    @property
    def held(self) -> int:
        """How many subscriptions the server holds now."""
        count: int = self.app.state.change_feed.subscriptions
        return count


@pytest.fixture
def live(
    services: Services, tokens: Tokens, serve: Callable[[FastAPI], str]
) -> Iterator[LiveServer]:
    app = build_api(services)
    api = Api(serve(app), tokens)
    yield LiveServer(api, app)
    api.close()


CHANGED = """subscription Changed($key: String!) {
  useCaseChanged(key: $key) { key version stage openQualityAlerts { alertId }
                              history(last: 1) { edges { node { version type } } } } }"""
LIFECYCLE = """subscription Lifecycle($stages: [Stage!]) {
  lifecycle(stages: $stages) { key stage previousStage entry { version type actorId } } }"""
USE_CASES_CHANGED = """subscription UseCases($stages: [Stage!]) {
  useCasesChanged(stages: $stages) { key version stage previousStage } }"""


def register(api: Api, key: str) -> None:
    assert api.mutate("registerUseCase", {"key": key, "title": "Live"})["version"] == 1


def alert(api: Api, key: str, alert_id: str) -> dict[str, Any]:
    return api.mutate(
        "raiseQualityAlert",
        {"key": key, "alertId": alert_id, "severity": "LOW", "description": "drift"},
    )


# --- who may subscribe --------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        None,
        {},
        {"authorization": "Bearer sgt_not-a-token"},
        {"authorization": "Basic dXNlcjpwYXNz"},
        {"authorization": "Bearer "},
        {"authorization": 42},
        {"token": ""},
    ],
    ids=["no-payload", "empty", "unknown", "not-bearer", "bearer-nothing", "not-text", "blank"],
)
def test_a_missing_or_bad_token_closes_the_socket_with_4401(
    live: LiveServer, payload: dict[str, Any] | None
) -> None:
    with live.socket() as socket:
        socket.init(payload)
        code, reason = socket.closed_with()
    assert code == 4401
    assert reason  # says what is wrong


def test_the_token_is_taken_as_bearer_authorization_or_plain(live: LiveServer) -> None:
    for payload in (
        {"authorization": f"Bearer {live.api.tokens.viewer}"},
        {"Authorization": f"bearer {live.api.tokens.viewer}"},
        {"token": live.api.tokens.viewer},
    ):
        with live.socket() as socket:
            socket.init(payload)
            assert socket.receive() == {"type": "connection_ack"}


def test_an_integration_token_closes_the_socket_with_4403(live: LiveServer) -> None:
    with live.socket() as socket:
        socket.init({"authorization": f"Bearer {live.api.tokens.integration}"})
        code, reason = socket.closed_with()
    assert (code, reason) == (4403, "Role integration cannot subscribe: it reads nothing.")


def test_subscribing_before_connection_init_closes_the_socket_with_4401(live: LiveServer) -> None:
    with live.socket() as socket:
        socket.subscribe("1", LIFECYCLE)
        assert socket.closed_with()[0] == 4401


def test_a_viewer_is_refused_lifecycle_with_forbidden(live: LiveServer) -> None:
    with live.socket() as socket:
        socket.authenticate(live.api.tokens.viewer)
        socket.subscribe("1", LIFECYCLE)
        refused = socket.receive()
        assert refused["type"] == "error", refused
        assert refused["id"] == "1"
        [error] = refused["payload"]
        assert error["extensions"]["code"] == "FORBIDDEN"
        assert "viewer" in error["message"]
    assert live.held == 0


def test_a_viewer_sees_each_change_but_its_history_is_null_with_forbidden(
    live: LiveServer,
) -> None:
    key = unique_key("viewed")
    register(live.api, key)
    with live.socket() as socket:
        socket.authenticate(live.api.tokens.viewer)
        socket.subscribe_held("1", CHANGED, {"key": key})
        alert(live.api, key, "a1")
        seen = socket.next("1")
    assert seen["data"] == {
        "useCaseChanged": {
            "key": key,
            "version": 2,
            "stage": "PROPOSED",
            "openQualityAlerts": [{"alertId": "a1"}],
            "history": None,
        }
    }
    [error] = seen["errors"]
    assert error["path"] == ["useCaseChanged", "history"]
    assert error["extensions"]["code"] == "FORBIDDEN"


# --- what is told, and when ---------------------------------------------------------------


def test_a_commit_made_while_the_log_follower_connects_is_told(
    live: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first subscription starts the process's follower of the log, which connects to
    listen before it reads where the log stands: slow under load. The subscription is held
    only once it has, so a commit made just after the pong is told (it was passed over)."""
    listen = Database.append_signal

    def slowly(db: Database) -> AppendSignal:
        time.sleep(0.5)
        return listen(db)

    monkeypatch.setattr(Database, "append_signal", slowly)
    key = unique_key("early")
    register(live.api, key)
    with live.socket() as socket:
        socket.authenticate(live.api.tokens.auditor)
        socket.subscribe_held("changed", CHANGED, {"key": key})
        assert alert(live.api, key, "a1")["__typename"] == "UseCase"
        seen = socket.next("changed")
    assert seen["data"]["useCaseChanged"]["version"] == 2


def test_a_ping_after_subscribing_is_answered_once_the_subscriptions_are_held(
    live: LiveServer,
) -> None:
    key = unique_key("held")
    register(live.api, key)
    with live.socket() as socket:
        socket.authenticate(live.api.tokens.editor)
        socket.subscribe("1", CHANGED, {"key": key})
        socket.subscribe("2", LIFECYCLE)
        socket.subscribe("3", CHANGED, {"key": key})
        socket.send({"type": "ping"})
        assert socket.receive() == {"type": "pong"}
        assert live.held == 3


def test_each_committed_change_arrives_once_committed_in_order(live: LiveServer) -> None:
    """More changes than a request's history budget (20): each event has a budget of its
    own, as each request has."""
    api = live.api
    key = unique_key("watched")
    register(api, key)
    with live.socket() as socket:
        socket.authenticate(api.tokens.auditor)
        socket.subscribe_held("changed", CHANGED, {"key": key})
        for n in range(1, 26):
            if n % 5 == 0:  # refused: appends nothing, so nothing is told
                refused = api.mutate("advanceStage", {"key": key})
                assert refused["__typename"] == "GateBlocked"
            assert alert(api, key, f"a{n}")["__typename"] == "UseCase"
        for version in range(2, 27):
            seen = socket.next("changed")
            assert "errors" not in seen, seen
            changed = seen["data"]["useCaseChanged"]
            assert changed["version"] == version
            assert len(changed["openQualityAlerts"]) == version - 1
            # Told only once committed: what is read as it is told (its history read now,
            # the use case read over HTTP after) includes it, and perhaps later changes.
            [newest] = changed["history"]["edges"]
            assert newest["node"]["version"] >= version
            current = api.version(key)
            assert current is not None
            assert current >= version


def _interleaved(api: Api, keys: list[str], alerts: int) -> None:
    """Each use case registered and given ``alerts`` alerts, all at once: commits interleave."""

    def work(key: str) -> None:
        register(api, key)
        for n in range(alerts):
            alert(api, key, f"a{n}")

    with ThreadPoolExecutor(max_workers=len(keys)) as pool:
        list(pool.map(work, keys))


def test_lifecycle_tells_every_event_of_every_use_case_in_the_logs_order(
    live: LiveServer, services: Services
) -> None:
    api = live.api
    keys = [unique_key(f"busy{n}") for n in range(4)]
    with live.socket() as socket:
        socket.authenticate(api.tokens.editor)
        socket.subscribe_held("all", LIFECYCLE)
        _interleaved(api, keys, alerts=6)
        told = []
        for _ in range(len(keys) * 7):
            lifecycle = socket.next("all")["data"]["lifecycle"]
            told.append((lifecycle["key"], lifecycle["entry"]["version"]))
            assert lifecycle["entry"]["actorId"] == "eddie.editor@example.com"
    assert told == _log_order(services, keys)
    assert sorted(told) == sorted((key, version) for key in keys for version in range(1, 8))


def _log_order(services: Services, keys: list[str]) -> list[tuple[str, int]]:
    """(key, version) of these use cases' events, in the log's order (notification ids)."""
    db = services.database
    by_id = {str(use_case_id(key)).replace("-", ""): key for key in keys}
    n = db.log_position_column
    events = db.table(services.app.recorder.events_table_name)  # type: ignore[attr-defined]
    rows = db.select(f"SELECT originator_id, originator_version FROM {events} ORDER BY {n}")
    return [
        (by_id[found], int(row["originator_version"]))
        for row in rows
        if (found := str(row["originator_id"]).replace("-", "")) in by_id
    ]


def _through_pilot(api: Api) -> tuple[str, str]:
    """Two use cases registered and readied; one goes into PILOT, has an alert there and is
    retired; the other has an alert in PROPOSED, last but one. Their keys, in that order."""
    piloted, elsewhere = unique_key("piloted"), unique_key("elsewhere")
    for key in (piloted, elsewhere):
        register(api, key)
        api.mutate("scorePriority", {"key": key, **PRIORITY})
        api.mutate("assignOwner", {"key": key, "role": "TECHNICAL", "person": TECH})
    assert api.mutate("advanceStage", {"key": piloted})["stage"] == "PILOT"
    alert(api, piloted, "in-pilot")
    alert(api, elsewhere, "not-in-pilot")
    assert api.mutate("retire", {"key": piloted, "reason": "done"})["stage"] == "RETIRED"
    return piloted, elsewhere


def test_lifecycle_of_some_stages_tells_of_use_cases_entering_and_leaving_them(
    live: LiveServer,
) -> None:
    with live.socket() as socket:
        socket.authenticate(live.api.tokens.auditor)
        socket.subscribe_held("pilot", LIFECYCLE, {"stages": ["PILOT"]})
        piloted, _ = _through_pilot(live.api)
        # The last event told is the last committed: none of the others could come later.
        told = [socket.next("pilot")["data"]["lifecycle"] for _ in range(3)]
    assert [(t["key"], t["previousStage"], t["stage"], t["entry"]["type"]) for t in told] == [
        (piloted, "PROPOSED", "PILOT", "StageAdvanced"),
        (piloted, "PILOT", "PILOT", "QualityAlertRaised"),
        (piloted, "PILOT", "RETIRED", "Retired"),
    ]


def test_a_viewer_hears_of_every_use_case_changed_registrations_included(
    live: LiveServer, services: Services
) -> None:
    api = live.api
    keys = [unique_key(f"listed{n}") for n in range(3)]
    with live.socket() as socket:
        socket.authenticate(api.tokens.viewer)
        socket.subscribe_held("list", USE_CASES_CHANGED)
        _interleaved(api, keys, alerts=1)
        told = [socket.next("list")["data"]["useCasesChanged"] for _ in range(len(keys) * 2)]
    assert [(t["key"], t["version"]) for t in told] == _log_order(services, keys)
    for change in told:
        registered = change["version"] == 1
        assert change["stage"] == "PROPOSED"
        assert change["previousStage"] == (None if registered else "PROPOSED"), change


def test_use_cases_changed_in_some_stages_tells_of_use_cases_entering_and_leaving_them(
    live: LiveServer,
) -> None:
    with live.socket() as socket:
        socket.authenticate(live.api.tokens.viewer)
        socket.subscribe_held("pilot", USE_CASES_CHANGED, {"stages": ["PILOT"]})
        piloted, _ = _through_pilot(live.api)
        # The last change told is the last committed: none of the others could come later.
        told = [socket.next("pilot")["data"]["useCasesChanged"] for _ in range(3)]
    assert told == [
        {"key": piloted, "version": 4, "stage": "PILOT", "previousStage": "PROPOSED"},
        {"key": piloted, "version": 5, "stage": "PILOT", "previousStage": "PILOT"},
        {"key": piloted, "version": 6, "stage": "RETIRED", "previousStage": "PILOT"},
    ]


# --- what is refused ----------------------------------------------------------------------


def _refusal(socket: GraphQLSocket, id: str) -> dict[str, Any]:
    message = socket.receive()
    assert (message["id"], message["type"]) == (id, "error"), message
    [error] = message["payload"]
    return error  # type: ignore[no-any-return]


def test_what_cannot_be_subscribed_to_is_an_error_saying_why(live: LiveServer) -> None:
    with live.socket() as socket:
        socket.authenticate(live.api.tokens.editor)
        socket.subscribe("1", CHANGED, {"key": "no-such-use-case"})
        error = _refusal(socket, "1")
        assert error["extensions"]["code"] == "NOT_FOUND"
        assert "no-such-use-case" in error["message"]
        socket.subscribe("2", LIFECYCLE, {"stages": []})
        assert "at least one stage" in _refusal(socket, "2")["message"]
        socket.subscribe("2b", USE_CASES_CHANGED, {"stages": []})
        assert "at least one stage" in _refusal(socket, "2b")["message"]
        socket.subscribe("3", "{ me { role } }")
        assert "POST /graphql" in _refusal(socket, "3")["message"]
        socket.subscribe("4", 'mutation { retire(input: {key: "x", reason: "r"}) { __typename } }')
        assert "POST /graphql" in _refusal(socket, "4")["message"]
        # The connection still serves what it may.
        socket.subscribe_held("5", LIFECYCLE)
        assert live.held == 1


def test_subscriptions_asking_the_same_share_one_execution_per_role(
    live: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three auditors and two viewers ask the same of each change: two executions each, and
    each caller is answered as its role may read (the role is part of what is shared)."""
    executions = []
    run_in_threadpool = subscriptions.run_in_threadpool

    async def counted(function: Any, *args: Any) -> Any:
        executions.append(function)
        return await run_in_threadpool(function, *args)

    monkeypatch.setattr(subscriptions, "run_in_threadpool", counted)
    key = unique_key("shared")
    register(live.api, key)
    tokens = live.api.tokens
    sockets = [live.socket() for _ in range(5)]
    try:
        for socket, token in zip(sockets, [tokens.auditor] * 3 + [tokens.viewer] * 2, strict=True):
            socket.authenticate(token)
            socket.subscribe_held("1", CHANGED, {"key": key})
        executions.clear()  # the subscriptions' own look-ups of the key
        for n in range(3):
            alert(live.api, key, f"a{n}")
        told = [[socket.next("1") for _ in range(3)] for socket in sockets]
    finally:
        for socket in sockets:
            socket.close()
    assert len(executions) == 3 * 2
    auditors, viewers = told[:3], told[3:]
    assert auditors[0] == auditors[1] == auditors[2]
    assert viewers[0] == viewers[1]
    for seen in auditors[0]:
        assert "errors" not in seen
        assert seen["data"]["useCaseChanged"]["history"] is not None
    for seen in viewers[0]:
        assert seen["data"]["useCaseChanged"]["history"] is None
        assert seen["errors"][0]["extensions"]["code"] == "FORBIDDEN"
