"""Issue 10, item 4: ``STAGEGATE_LOG_FORMAT=json``, one line per request, and no secret.

A whole lifecycle runs through the API (the GraphQL journey of acceptance 5, webhook
subscriptions, a posted CloudEvent, refusals and failures) with the server's log written by the
JSON handler ``stagegate serve`` configures. Every line must parse as JSON; each request's
line must carry its correlation id, actor, role, operation, outcome, duration and, unless it
went well, a stable error code; and no token secret or webhook secret issued during the test
may appear on any line.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import httpx
import pytest

from domain.clock import clock_set_to
from domain.values import Role
from infra.bootstrap import Services
from infra.logs import handler_for
from infra.webhook_destinations import DestinationPolicy
from tests.e2e import cloudevents_helpers as ce
from tests.e2e.conftest import Api
from tests.e2e.test_cli import STAGEGATE, _clean_env, _free_port, _read_until, _wait_ready
from tests.e2e.test_graphql_lifecycle import _from_deployment_to_scale, _to_deployment

REQUEST_FIELDS = {"correlation_id", "operation", "outcome", "status", "duration_ms", "route"}


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The root logger writes INFO and above through the JSON handler into a buffer."""
    from api.redaction import install_redaction

    stream = io.StringIO()
    handler = handler_for("json", stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    install_redaction()  # as serve does, on the handler just added
    # The test's own HTTP client logs each URL it calls at INFO: not the server's log.
    client_loggers = [logging.getLogger(name) for name in ("httpx", "httpcore")]
    client_levels = [logger.level for logger in client_loggers]
    for logger in client_loggers:
        logger.setLevel(logging.WARNING)
    yield stream
    for logger, client_level in zip(client_loggers, client_levels, strict=True):
        logger.setLevel(client_level)
    root.removeHandler(handler)
    root.setLevel(level)


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    text = stream.getvalue()
    assert text.endswith("\n"), "a log line was left unfinished"
    parsed = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            pytest.fail(f"a log line is not JSON: {line!r}")
        assert isinstance(record, dict), line
        assert {"time", "level", "logger", "message"} <= record.keys(), record
        parsed.append(record)
    return parsed


def _requests(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r["logger"] == "api.requests"]


def test_a_lifecycle_logged_as_json_has_a_line_per_request_and_no_secret(
    services: Services, api: Api, json_log: io.StringIO
) -> None:
    t = api.tokens
    admin = services.tokens.issue("ops@example.com", Role.ADMIN).secret_token
    given_secret = f"whsec_{base64.b64encode(uuid.uuid4().bytes * 2).decode()}"
    # hooks.example.com is never resolved: its address is the test's (and never contacted,
    # no deliverer runs here).
    services.webhooks.destinations = DestinationPolicy(
        resolve=lambda _host, _port: [ip_address("93.184.215.14")]
    )
    subscribe = (
        "mutation Subscribe($input: CreateWebhookSubscriptionInput!) {"
        " createWebhookSubscription(input: $input) {"
        " ... on CreatedWebhookSubscription { secret } } }"
    )
    given = api.gql(
        subscribe, {"input": {"url": "https://hooks.example.com/a", "secret": given_secret}}, admin
    )
    generated = api.gql(subscribe, {"input": {"url": "https://hooks.example.com/b"}}, admin)
    generated_secret = generated["data"]["createWebhookSubscription"]["secret"]
    assert given["data"]["createWebhookSubscription"]["secret"] == given_secret

    with clock_set_to(lambda: datetime.now(UTC) - timedelta(days=130)):
        journey = _to_deployment(api)
    _from_deployment_to_scale(api, journey)
    posted = ce.post(api, ce.adoption(journey.key))
    assert posted.status_code == 200, posted.text
    # Refusals and failures: no token, a bad one, one in the URL, an invalid query.
    assert api.http.post("/graphql", json={"query": "{ me { role } }"}).status_code == 401
    bad = {"Authorization": f"Bearer sgt_0123456789abcdef_{uuid.uuid4().hex}"}
    assert (
        api.http.post("/graphql", json={"query": "{ me { role } }"}, headers=bad).status_code == 401
    )
    in_url = {"query": "{ me { role } }", "access_token": t.editor}
    assert api.http.get("/graphql", params=in_url).status_code == 401
    assert api.gql("query Broken { useCases { nothingHere } }")["errors"]
    inline_secret = f"inline-webhook-secret-{uuid.uuid4().hex}"
    failing = (
        'mutation { createWebhookSubscription(input: {url: "https://hooks.example.com/c", '
        f'secret: "{inline_secret}", unknownField: 1}}) {{ __typename }} }}'
    )
    assert api.gql(failing, token=admin)["errors"]
    handled = services.webhooks.list_subscriptions()
    assert len(handled) == 2

    records = _lines(json_log)
    requests = _requests(records)
    # One line per request: the lifecycle's mutations and reads, and the rest above.
    assert len(requests) >= journey.accepted + 10
    for line in requests:
        assert line.keys() >= REQUEST_FIELDS, line
        assert line["correlation_id"], line
        assert line["outcome"] in ("ok", "refused", "error"), line
        assert isinstance(line["duration_ms"], int | float), line
        assert line["duration_ms"] >= 0, line
        if line["outcome"] == "ok":
            assert "error_code" not in line, line
        else:
            assert line["error_code"], line
        if line["status"] != 401:
            assert line["actor"], line
            assert line["role"], line

    by_outcome = {(r["operation"], r["outcome"], r.get("error_code")) for r in requests}
    assert ("Run", "refused", "GATE_BLOCKED") in by_outcome  # the journey's refused advances
    assert ("Run", "ok", None) in by_outcome
    assert ("Broken", "error", "INVALID_REQUEST") in by_outcome
    assert ("POST /graphql", "refused", "http-401") in by_outcome
    assert ("GET /graphql", "refused", "http-401") in by_outcome
    assert ("POST /v1/events", "ok", None) in by_outcome
    refused_advance = next(r for r in requests if r.get("error_code") == "GATE_BLOCKED")
    assert (refused_advance["actor"], refused_advance["role"]) == (
        "eddie.editor@example.com",
        "editor",
    )
    approver_lines = [r for r in requests if r.get("role") == "approver"]
    assert approver_lines, "the approver's sign-off was not logged"

    everything = json_log.getvalue()
    secrets = [
        token.split("_", 2)[2]
        for token in (t.editor, t.approver, t.business_owner, t.viewer, t.auditor, t.integration)
    ]
    secrets += [admin.split("_", 2)[2], bad["Authorization"].split("_", 2)[2]]
    secrets += [given_secret, generated_secret, inline_secret]
    leaked = [secret for secret in secrets if secret in everything]
    assert leaked == [], "secrets in the log"


def test_serve_writes_every_line_as_json(tmp_path: Path) -> None:
    """The real command, its own process: uvicorn's lines too are JSON, on stderr."""
    port = _free_port()
    env = {**_clean_env(), "STAGEGATE_LOG_FORMAT": "json"}
    stderr_path = tmp_path / "stderr.log"
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(
            [*STAGEGATE, "serve", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        try:
            _read_until(process, "Authenticate every request")
            _wait_ready(port)
            response = httpx.post(
                f"http://127.0.0.1:{port}/graphql",
                json={"query": "query Who { me { role } }"},
                headers={"X-Correlation-ID": "json-serve-1"},
            )
            assert response.status_code == 401
        finally:
            process.terminate()
            process.wait(timeout=20)
    lines = stderr_path.read_text().splitlines()
    assert lines, "nothing was logged"
    records = [json.loads(line) for line in lines]  # every line, or this fails
    assert any(r["logger"].startswith("uvicorn") for r in records), records
    [request] = [r for r in records if r.get("correlation_id") == "json-serve-1"]
    assert request["route"] == "/graphql"
    assert (request["outcome"], request["error_code"], request["status"]) == (
        "refused",
        "http-401",
        401,
    )


@pytest.mark.parametrize(
    ("name", "value", "why"),
    [
        ("STAGEGATE_LOG_FORMAT", "xml", "'text' or 'json'"),
        ("STAGEGATE_METRICS", "prometheus", "'token', 'address' or 'off'"),
        ("STAGEGATE_METRICS_ADDRESS", "9464", "not host:port"),
        ("STAGEGATE_METRICS_ADDRESS", "127.0.0.1:99999", "out of range"),
    ],
)
def test_a_bad_setting_is_refused_naming_it(
    tmp_path: Path, name: str, value: str, why: str
) -> None:
    env = {**_clean_env(), name: value}
    result = subprocess.run(
        [*STAGEGATE, "serve", "--port", str(_free_port())],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert f"{name}:" in result.stderr, result.stderr
    assert why in result.stderr, result.stderr


def test_in_text_mode_a_request_is_one_line_with_the_same_fields(api: Api) -> None:
    stream = io.StringIO()
    handler = handler_for("text", stream)
    requests_log = logging.getLogger("api.requests")
    level = requests_log.level
    requests_log.addHandler(handler)
    requests_log.setLevel(logging.INFO)
    try:
        response = api.post_graphql(
            "query Who { me { role } }",
            token=api.tokens.viewer,
            headers={"X-Correlation-ID": "text-mode-1"},
        )
        assert response.status_code == 200
        # The line is written once the response has gone out: on a busy machine, a moment
        # after the client has it.
        deadline = time.monotonic() + 10
        while "text-mode-1" not in stream.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        requests_log.removeHandler(handler)
        requests_log.setLevel(level)
    [line] = [line for line in stream.getvalue().splitlines() if "text-mode-1" in line]
    assert line.startswith("INFO api.requests: request correlation_id=text-mode-1 "), line
    for field in (
        "actor=vic.viewer@example.com",
        "role=viewer",
        "operation=Who",
        "outcome=ok",
        "status=200",
        "duration_ms=",
    ):
        assert f" {field}" in line, (field, line)
