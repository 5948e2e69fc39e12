"""Acceptance 4: two ``stagegate serve`` processes on one PostgreSQL database, side by side."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from domain.values import Role
from infra.bootstrap import bootstrap
from infra.settings import Settings
from tests.e2e.graphql_ws import GraphQLSocket

pytestmark = pytest.mark.postgres


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def issue_token(settings: Settings, actor: str, role: Role) -> str:
    services = bootstrap(settings)
    try:
        return services.tokens.issue(actor, role).secret_token
    finally:
        services.close()


def server_env(settings: Settings) -> dict[str, str]:
    """The environment of a ``stagegate serve`` process on the tests' PostgreSQL database."""
    return {
        **os.environ,
        "STAGEGATE_DATABASE_URL": settings.database_url,
        "STAGEGATE_POSTGRES_SCHEMA": settings.postgres_schema,
    }


@pytest.fixture
def token(postgres_settings: Settings) -> str:
    return issue_token(postgres_settings, "eddie.editor@example.com", Role.EDITOR)


@pytest.fixture
def servers(postgres_settings: Settings, token: str) -> Iterator[list[str]]:
    env = server_env(postgres_settings)
    processes, urls = [], []
    for _ in range(2):
        port = _free_port()
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "infra.cli", "serve", "--port", str(port)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
        )
        urls.append(f"http://127.0.0.1:{port}")
    try:
        for url, process in zip(urls, processes, strict=True):
            _wait_ready(url, process)
        yield urls
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)


def _wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read().decode() if process.stdout else ""
            pytest.fail(f"server exited early:\n{output}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"{url} did not become ready")


def _gql(url: str, token: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(
        f"{url}/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    return body["data"]


REGISTER = """mutation($key: String!) { registerUseCase(input: {key: $key, title: "Shared"}) {
  __typename ... on UseCase { version } } }"""
ALERT = """mutation($key: String!, $alert: String!, $expected: Int) {
  raiseQualityAlert(input: {key: $key, alertId: $alert, severity: LOW, description: "drift",
                            expectedVersion: $expected}) {
    __typename ... on UseCase { version } ... on Error { message } } }"""
READ = """query($key: String!) { useCase(key: $key) { version openQualityAlerts { alertId } } }"""


def test_two_servers_share_one_database(servers: list[str], token: str) -> None:
    first, second = servers
    key = "shared-use-case"
    assert _gql(first, token, REGISTER, {"key": key})["registerUseCase"]["version"] == 1

    # Alternate writers: each server sees the other's writes at once.
    for n in range(1, 7):
        url = servers[n % 2]
        result = _gql(url, token, ALERT, {"key": key, "alert": f"a{n}", "expected": n})
        assert result["raiseQualityAlert"] == {"__typename": "UseCase", "version": n + 1}

    for url in servers:
        use_case = _gql(url, token, READ, {"key": key})["useCase"]
        assert use_case["version"] == 7
        assert [a["alertId"] for a in use_case["openQualityAlerts"]] == [
            f"a{n}" for n in range(1, 7)
        ]

    # The same stale expectation sent to both servers at once: one wins, one conflicts.
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(
            pool.map(
                lambda url: _gql(url, token, ALERT, {"key": key, "alert": url, "expected": 7}),
                [first, second],
            )
        )
    kinds = sorted(r["raiseQualityAlert"]["__typename"] for r in results)
    assert kinds == ["UseCase", "VersionConflict"]
    assert _gql(second, token, READ, {"key": key})["useCase"]["version"] == 8


def test_serve_with_two_processes_behind_one_port(postgres_settings: Settings, token: str) -> None:
    """STAGEGATE_WORKERS=2: one port, two processes, each with its own services; a write
    through either is read through the other."""
    port = _free_port()
    env = {**server_env(postgres_settings), "STAGEGATE_WORKERS": "2"}
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process)
        assert _gql(url, token, REGISTER, {"key": "two-processes"})["registerUseCase"] == {
            "__typename": "UseCase",
            "version": 1,
        }
        for n in range(1, 9):  # connections land on either process
            with httpx.Client() as fresh:
                response = fresh.post(
                    f"{url}/graphql",
                    json={"query": ALERT, "variables": {"key": "two-processes", "alert": f"a{n}"}},
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=10,
                )
            assert response.json()["data"]["raiseQualityAlert"]["version"] == n + 1
        use_case = _gql(url, token, READ, {"key": "two-processes"})["useCase"]
        assert use_case["version"] == 9
    finally:
        process.terminate()
        output = process.communicate(timeout=20)[0].decode()
    assert "Processes 2 (STAGEGATE_WORKERS)" in output
    assert output.count("Started server process") == 2, output


def test_two_processes_on_sqlite_are_refused(tmp_path: Any) -> None:
    env = {
        **os.environ,
        "STAGEGATE_DATABASE_URL": f"sqlite:///{tmp_path / 'one.db'}",
        "STAGEGATE_WORKERS": "2",
    }
    result = subprocess.run(
        [sys.executable, "-m", "infra.cli", "serve", "--port", str(_free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "STAGEGATE_WORKERS > 1 needs PostgreSQL" in result.stderr


@pytest.fixture
def admin_token(postgres_settings: Settings) -> str:
    return issue_token(postgres_settings, "ada.admin@example.com", Role.ADMIN)


PREPARE = """mutation($key: String!) {
  registerUseCase(input: {key: $key, title: "Judged by the policy in force"}) {
    __typename ... on Error { message } }
  scorePriority(input: {key: $key, leverage: {score: 5, rationale: "r"},
                feasibility: {score: 4, rationale: "r"}, readiness: {score: 4, rationale: "r"}}) {
    __typename ... on Error { message } }
  assignOwner(input: {key: $key, role: TECHNICAL,
                      person: {id: "tess@example.com", team: "AI platform"}}) {
    __typename ... on Error { message } } }"""
SET_POLICY = """mutation { setPolicy(input: {minPriorityScore: 5, reason: "stricter"}) {
  __typename ... on Policy { version } } }"""
ADVANCE = """mutation($key: String!) { advanceStage(input: {key: $key}) {
  __typename ... on GateBlocked { policyVersion unmet { code } }
  ... on UseCase { stage } } }"""
POLICY = "query { policy { version values { minPriorityScore } } }"


def test_a_policy_set_through_one_server_judges_the_next_command_on_the_other(
    servers: list[str], token: str, admin_token: str
) -> None:
    """The second server remembers the policy it judged its last command by; the first then
    changes it. The second's next command must be judged by the new one, and its readers
    must see the new one, at once."""
    first, second = servers
    key = "judged-by-the-policy-in-force"
    prepared = _gql(second, token, PREPARE, {"key": key})
    assert [v["__typename"] for v in prepared.values()] == ["UseCase"] * 3, prepared
    assert _gql(second, token, POLICY, {})["policy"]["version"] == 0

    assert _gql(first, admin_token, SET_POLICY, {})["setPolicy"]["version"] == 1

    # Scored 5/4/4: enough under the default policy (1), not under the new one (5).
    refused = _gql(second, token, ADVANCE, {"key": key})["advanceStage"]
    assert refused == {
        "__typename": "GateBlocked",
        "policyVersion": 1,
        "unmet": [{"code": "PRIORITY_SCORED"}],
    }
    assert _gql(second, token, POLICY, {})["policy"] == {
        "version": 1,
        "values": {"minPriorityScore": 5},
    }


# --- subscriptions across processes -------------------------------------------------------

LIFECYCLE = "subscription { lifecycle { key entry { version type } } }"


def test_a_change_committed_by_one_process_reaches_subscribers_of_another(
    servers: list[str], token: str
) -> None:
    """The subscriber's server and the writer's are ``stagegate serve`` processes of their
    own: only the database tells the one of the other's commits."""
    subscribed_to, written_to = servers
    key = "committed-elsewhere"
    with GraphQLSocket(subscribed_to) as socket:
        socket.authenticate(token)
        socket.subscribe_held("1", LIFECYCLE)
        _gql(written_to, token, REGISTER, {"key": key})
        for n in range(1, 5):
            _gql(written_to, token, ALERT, {"key": key, "alert": f"a{n}", "expected": n})
        told = [socket.next("1")["data"]["lifecycle"] for _ in range(5)]
    assert [(t["key"], t["entry"]["version"], t["entry"]["type"]) for t in told] == [
        (key, 1, "Registered"),
        *[(key, n, "QualityAlertRaised") for n in range(2, 6)],
    ]


def test_subscribers_of_several_worker_processes_hear_every_commit(
    postgres_settings: Settings, token: str
) -> None:
    """STAGEGATE_WORKERS=2 behind one port: the subscription lives in one process, and the
    writes, each on a fresh connection, land on either."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.cli", "serve", "--port", str(port)],
        env={**server_env(postgres_settings), "STAGEGATE_WORKERS": "2"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process)
        with GraphQLSocket(url) as socket:
            socket.authenticate(token)
            socket.subscribe_held("1", LIFECYCLE)
            key = "written-by-either-process"
            for n in range(8):
                query = ALERT if n else REGISTER
                variables = {"key": key, "alert": f"a{n}"}
                with httpx.Client() as fresh:  # a connection of its own: either process
                    response = fresh.post(
                        f"{url}/graphql",
                        json={"query": query, "variables": variables},
                        headers={"Authorization": f"Bearer {token}"},
                        timeout=10,
                    )
                assert "errors" not in response.json(), response.text
            told = [socket.next("1")["data"]["lifecycle"]["entry"]["version"] for _ in range(8)]
    finally:
        process.terminate()
        process.communicate(timeout=20)
    assert told == list(range(1, 9))
