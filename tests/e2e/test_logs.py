"""Issue 8: what the server logs about a request.

An expected refusal (no permission, a page too large, a query that does not validate) is one
WARNING line naming why and the correlation id, without a traceback; an unexpected exception is
an ERROR with its traceback (and masked to the caller). No secret reaches a log: API tokens,
webhook secrets, or string literals a caller wrote into a failing query.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from eventsourcing.persistence import OperationalError

from infra.bootstrap import Services
from infra.web import build_api
from tests.builders import Journey
from tests.e2e.conftest import Api, Tokens

SERVER_LOGGERS = ("api", "strawberry", "uvicorn")


def _server_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith(SERVER_LOGGERS)]


def _everything_logged(caplog: pytest.LogCaptureFixture) -> str:
    """The log as a handler would write it (tracebacks included), and each record's parts."""
    parts = [caplog.text]
    for record in caplog.records:
        parts += [record.getMessage(), record.exc_text or "", str(record.stack_info or "")]
    return "\n".join(parts)


def _post(api: Api, query: str, token: str, correlation_id: str, **kw: Any) -> dict[str, Any]:
    headers = {"X-Correlation-ID": correlation_id}
    response = api.post_graphql(query, token=token, headers=headers, **kw)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# --- refusals and failures ------------------------------------------------------------------

REFUSALS = {
    "permission": (
        "query($key: String!) { useCase(key: $key) { history { edges { cursor } } } }",
        "viewer",
        "cannot read history",
    ),
    "page size": ("{ useCases(first: 100000) { totalCount } }", "editor", "first"),
    "validation": ("{ useCases { nothingHere } }", "editor", "nothingHere"),
}


@pytest.mark.parametrize("refusal", REFUSALS.values(), ids=REFUSALS.keys())
def test_a_refusal_is_one_warning_line_without_a_traceback(
    services: Services, api: Api, caplog: pytest.LogCaptureFixture, refusal: tuple[str, str, str]
) -> None:
    query, holder, why = refusal
    journey = Journey(services.app).register()
    correlation_id = f"refusal-{uuid.uuid4()}"
    caplog.clear()

    body = _post(
        api, query, getattr(api.tokens, holder), correlation_id, variables={"key": journey.key}
    )

    assert body["errors"], body
    [record] = _server_records(caplog)
    assert record.levelno == logging.WARNING
    assert record.exc_info is None
    assert why in record.getMessage()
    assert correlation_id in record.getMessage()


def test_an_unexpected_exception_is_an_error_with_its_traceback_masked_to_the_caller(
    services: Services, api: Api, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*_: Any) -> Any:
        raise RuntimeError("the portfolio figures are on fire")

    monkeypatch.setattr(services.read_models, "portfolio", fail)
    correlation_id = f"failure-{uuid.uuid4()}"
    caplog.clear()

    body = _post(api, "{ portfolio { deployed } }", api.tokens.editor, correlation_id)

    assert [e["message"] for e in body["errors"]] == ["Unexpected error."]
    errors = [r for r in _server_records(caplog) if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is not None
    assert correlation_id in errors[0].getMessage()
    assert "on fire" in caplog.text


# --- secrets --------------------------------------------------------------------------------


def test_a_webhook_secret_written_into_a_failing_query_is_not_logged(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    secret = f"inline-webhook-secret-{uuid.uuid4().hex}"
    query = (
        'mutation { createWebhookSubscription(input: {url: "https://hooks.example.com/in", '
        f'secret: "{secret}", unknownField: 1}}) {{ __typename }} }}'
    )
    caplog.clear()

    body = _post(api, query, api.tokens.editor, "inline-secret")

    assert body["errors"], body
    assert _server_records(caplog), "the refusal was not logged at all"
    assert secret not in _everything_logged(caplog)


def test_a_webhook_secret_in_variables_that_fail_is_not_logged(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    secret = f"variable-webhook-secret-{uuid.uuid4().hex}"
    query = (
        "mutation($input: CreateWebhookSubscriptionInput!) { "
        "createWebhookSubscription(input: $input) { __typename } }"
    )
    variables = {"input": {"url": "https://hooks.example.com/in", "secret": secret, "nope": 1}}
    caplog.clear()

    body = _post(api, query, api.tokens.editor, "variable-secret", variables=variables)

    assert body["errors"], body
    assert _server_records(caplog), "the refusal was not logged at all"
    assert secret not in _everything_logged(caplog)


def test_string_literals_of_a_failing_query_are_not_logged(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    literal = f"literal-{uuid.uuid4().hex}"
    queries = [
        f'{{ useCases(first: "{literal}") {{ totalCount }} }}',  # quoted in the message
        f'{{ useCase(key: "{literal}") {{ noSuchField }} }}',  # only in the query text
    ]
    caplog.clear()

    for query in queries:
        assert _post(api, query, api.tokens.editor, "literal")["errors"]

    assert len(_server_records(caplog)) == len(queries)
    assert literal not in _everything_logged(caplog)


@pytest.fixture
def access_logged_api(
    services: Services, tokens: Tokens, serve: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> Iterator[Api]:
    """The app served with uvicorn's access log on, captured (it does not propagate)."""
    api = Api(serve(build_api(services), access_log=True, log_level="info"), tokens)
    access = logging.getLogger("uvicorn.access")
    access.addHandler(caplog.handler)
    yield api
    access.removeHandler(caplog.handler)
    api.close()


def test_a_token_sent_in_the_url_is_not_in_the_access_log(
    access_logged_api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    token = access_logged_api.tokens.editor
    secret = token.split("_", 2)[2]
    caplog.clear()

    response = access_logged_api.http.get(
        "/graphql", params={"query": "{ me { role } }", "access_token": token}
    )

    assert response.status_code == 401
    assert any(r.name == "uvicorn.access" for r in caplog.records), "no access log line"
    assert secret not in _everything_logged(caplog)


def test_a_token_a_failed_lookup_quotes_is_not_logged(
    services: Services, api: Api, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    presented = f"sgt_0123456789abcdef_{uuid.uuid4().hex}"

    def unreachable(token: str) -> None:
        raise OperationalError(f"could not look up token {token!r}: connection refused")

    monkeypatch.setattr(services.tokens, "authenticate", unreachable)
    caplog.clear()

    response = httpx.post(
        f"{api.base_url}/graphql",
        json={"query": "{ me { role } }"},
        headers={"Authorization": f"Bearer {presented}"},
    )

    assert response.status_code == 503
    assert _server_records(caplog), "the failed lookup was not logged"
    assert presented.split("_", 2)[2] not in _everything_logged(caplog)
