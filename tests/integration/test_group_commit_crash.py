"""Issue 9: a server killed (SIGKILL) during a stream of grouped commands loses no command it
acknowledged and leaves no partial group: after a restart every answer a caller got matches
what is stored, the hash chain verifies, and the read models match a rebuild of them."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from typing import Any

import httpx
import pytest

from domain import commands as c
from domain.usecase import use_case_id
from domain.values import Role
from infra.audit import verify_all
from infra.bootstrap import Services, bootstrap
from infra.settings import Settings
from projections.readmodels import UseCaseFilter
from tests.builders import ctx
from tests.integration.test_two_servers import _free_port, _wait_ready, server_env

pytestmark = pytest.mark.postgres

CLIENTS = 12
USE_CASES = 4  # fewer than clients: callers share use cases, so groups hold several of one
STREAM_SECONDS = 1.5
ALERT = """mutation($key: String!, $alert: String!) {
  raiseQualityAlert(input: {key: $key, alertId: $alert, severity: LOW, description: "d"}) {
    __typename ... on UseCase { version } } }"""


def _stream(url: str, token: str, client: int, keys: list[str], answers: list[Any]) -> None:
    """Send commands one after another until the server stops answering."""
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=5) as http:
        for n in range(100_000):
            key, alert = keys[(client + n) % len(keys)], f"c{client}-n{n}"
            try:
                response = http.post(
                    f"{url}/graphql",
                    json={"query": ALERT, "variables": {"key": key, "alert": alert}},
                )
            except httpx.TransportError:
                return  # killed: this command's fate is unknown, and not acknowledged
            result = response.json()["data"]["raiseQualityAlert"]
            assert result["__typename"] == "UseCase", result
            answers.append((key, alert, result["version"]))


def _read_models(services: Services, keys: list[str]) -> tuple[Any, ...]:
    read_models = services.read_models
    page = read_models.use_cases(UseCaseFilter(), 100, None)
    summaries = sorted((r.id, r.version, r.state.model_dump_json()) for r in page.items)
    history = [
        [
            (e.notification_id, e.version, e.event_type, e.payload)
            for e in read_models.history(str(use_case_id(key)), 1000, None).items
        ]
        for key in keys
    ]
    return summaries, history


def test_a_server_killed_during_grouped_commands_loses_no_acknowledged_one(
    postgres_settings: Settings,
) -> None:
    services = bootstrap(postgres_settings)
    token = services.tokens.issue("eddie.editor@example.com", Role.EDITOR).secret_token
    keys = [f"crash-{n}" for n in range(USE_CASES)]
    for key in keys:
        services.app.execute(c.RegisterUseCase.parse({"key": key, "title": key}), ctx())
    services.close()

    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "infra.cli", "serve", "--port", str(port)],
        env=server_env(postgres_settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    answers: list[Any] = []
    try:
        _wait_ready(url, server)
        clients = [
            threading.Thread(target=_stream, args=(url, token, n, keys, answers))
            for n in range(CLIENTS)
        ]
        for client in clients:
            client.start()
        time.sleep(STREAM_SECONDS)
        server.send_signal(signal.SIGKILL)
        server.wait(10)
        for client in clients:
            client.join(20)
    finally:
        if server.poll() is None:
            server.kill()

    assert len(answers) > CLIENTS, "too few commands were answered to mean anything"
    restarted = bootstrap(postgres_settings)
    try:
        app = restarted.app
        for key in keys:
            use_case = app.use_case(key)
            alerts = use_case.state.open_quality_alerts
            # Every acknowledged command is stored, at the version its caller was told.
            for answered_key, alert, version in answers:
                if answered_key == key:
                    assert alert in alerts
                    at_version = app.use_case(key, version=version).state.open_quality_alerts
                    assert alert in at_version
                    assert (
                        alert
                        not in app.use_case(key, version=version - 1).state.open_quality_alerts
                    )
            # No partial group: one alert per event, nothing skipped or doubled.
            assert len(alerts) == use_case.version - 1
        assert all(verified.report.intact for verified in verify_all(app))
        restarted.read_models.refresh()
        before = _read_models(restarted, keys)
        restarted.read_models.rebuild()
        assert _read_models(restarted, keys) == before
    finally:
        restarted.close()
