"""Traces (optional, OpenTelemetry): a real server, configured by the standard ``OTEL_*``
variables alone, exports spans for HTTP, the GraphQL operation, the command and its SQL, all
in the caller's trace; a posted CloudEvent's ``traceparent`` extension starts its span in the
event's own trace. The console exporter writes the spans to the server's stdout, read here."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from domain.values import Role
from infra.settings import Settings
from tests.integration.test_two_servers import _free_port, _wait_ready, issue_token, server_env

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
SOURCE = "https://monitoring.example.com/quality"


def _spans(output: str) -> list[dict[str, Any]]:
    """The console exporter's spans: JSON objects, one after another."""
    decoder, spans, at = json.JSONDecoder(), [], 0
    while (start := output.find("{", at)) != -1:
        try:
            found, at = decoder.raw_decode(output, start)
        except ValueError:
            at = start + 1
            continue
        if isinstance(found, dict) and "context" in found and "name" in found:
            spans.append(found)
    return spans


def test_a_command_is_traced_from_http_to_sql_in_the_callers_trace(
    postgres_settings: Settings, tmp_path: Path
) -> None:
    editor = issue_token(postgres_settings, "eddie.editor@example.com", Role.EDITOR)
    monitoring = _integration_token(postgres_settings)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    output = tmp_path / "spans.out"
    env = {
        **server_env(postgres_settings),
        "STAGEGATE_PORT": str(port),
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_SERVICE_NAME": "stagegate-under-test",
        "OTEL_BSP_SCHEDULE_DELAY": "50",
    }
    caller_trace, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    event_trace, event_span = secrets.token_hex(16), secrets.token_hex(8)
    with output.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "infra.cli", "serve"], cwd=ROOT, env=env, stdout=out
        )
        try:
            _wait_ready(url, server)
            registered = httpx.post(
                f"{url}/graphql",
                headers={
                    "Authorization": f"Bearer {editor}",
                    "traceparent": f"00-{caller_trace}-{caller_span}-01",
                },
                json={
                    "query": 'mutation Register { registerUseCase(input: {key: "traced",'
                    ' title: "Traced"}) { __typename } }',
                    "operationName": "Register",
                },
            )
            assert registered.json() == {"data": {"registerUseCase": {"__typename": "UseCase"}}}
            posted = httpx.post(
                f"{url}/v1/events",
                headers={
                    "Authorization": f"Bearer {monitoring}",
                    "Content-Type": "application/cloudevents+json",
                },
                json={
                    "specversion": "1.0",
                    "id": "traced-alert-1",
                    "source": SOURCE,
                    "type": "stagegate.quality.alert_raised",
                    "subject": "traced",
                    "traceparent": f"00-{event_trace}-{event_span}-01",
                    "data": {"severity": "low", "description": "a traced alert"},
                },
            )
            assert posted.status_code < 500, posted.text
        finally:
            server.send_signal(signal.SIGINT)  # a clean stop flushes the spans
            server.wait(timeout=30)
    spans = _spans(output.read_text())
    # The readiness probes _wait_ready made are not traced.
    assert not [s for s in spans if s["attributes"].get("url.path") == "/readyz"]
    assert not [s for s in spans if "readyz" in s["name"]]

    in_caller = [s for s in spans if s["context"]["trace_id"] == f"0x{caller_trace}"]
    names = {s["name"] for s in in_caller}
    assert "POST /graphql" in names
    [http] = [
        s for s in in_caller if s["name"] == "POST /graphql" and s["kind"] == "SpanKind.SERVER"
    ]
    assert http["parent_id"] == f"0x{caller_span}"  # continues the caller's span
    assert http["resource"]["attributes"]["service.name"] == "stagegate-under-test"
    [operation] = [s for s in in_caller if s["name"] == "mutation Register"]
    assert operation["attributes"]["graphql.operation.type"] == "mutation"
    [command] = [s for s in in_caller if s["name"] == "command RegisterUseCase"]
    assert command["attributes"]["stagegate.outcome"] == "accepted"
    assert command["attributes"]["stagegate.use_case.key"] == "traced"
    sql = [s for s in in_caller if s["attributes"].get("db.system") == "postgresql"]
    assert sql, names  # the append and its reads
    assert not any("eddie" in json.dumps(s) for s in sql)  # statements only, no parameters

    [event] = [s for s in spans if s["name"] == "cloudevent stagegate.quality.alert_raised"]
    assert event["context"]["trace_id"] == f"0x{event_trace}"  # the event's own trace
    assert event["parent_id"] == f"0x{event_span}"
    assert event["attributes"]["cloudevents.event_id"] == "traced-alert-1"
    assert event["attributes"]["stagegate.outcome"] == "accepted"
    [request] = [
        s for s in spans if s["name"] == "POST /v1/events" and s["kind"] == "SpanKind.SERVER"
    ]
    assert [link["context"]["trace_id"] for link in event["links"]] == [
        request["context"]["trace_id"]
    ]


def _server_spans(spans: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [s for s in spans if s["name"] == name and s["kind"] == "SpanKind.SERVER"]


def _integration_token(settings: Settings) -> str:
    from infra.bootstrap import bootstrap

    services = bootstrap(settings)
    try:
        return services.tokens.issue(
            "quality.monitor@example.com",
            Role.INTEGRATION,
            sources=(SOURCE,),
            event_types=("stagegate.quality.alert_raised",),
        ).secret_token
    finally:
        services.close()


def test_traces_asked_for_without_the_sdk_stop_the_server_with_a_clear_message(
    tmp_path: Path,
) -> None:
    env = {
        **os.environ,
        "STAGEGATE_DATABASE_URL": f"sqlite:///{tmp_path / 'stagegate.db'}",
        "OTEL_TRACES_EXPORTER": "zipkin",
    }
    result = subprocess.run(
        [sys.executable, "-m", "infra.cli", "serve"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "OTEL_TRACES_EXPORTER='zipkin': stagegate can export spans by 'otlp'" in result.stderr
