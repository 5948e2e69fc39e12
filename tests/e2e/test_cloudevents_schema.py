"""Schemathesis against the published ``/openapi.json`` of a running server (acceptance 4).

Requests generated from the OpenAPI document (valid and invalid ones) go to ``POST /v1/events``
and the health probes over real HTTP, with an integration token; no answer may be a server
error, and every answer must match the status codes, content types and schemas the document
publishes. Generated events are pointed at the token's own source and, half the time, at a
use case that exists (one in DEPLOYMENT, so the domain has something to judge), so the run
reaches the store and not only the scope check.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
)

from infra.bootstrap import Services
from tests.e2e.cloudevents_helpers import aimed, in_deployment
from tests.e2e.conftest import INTEGRATION_SOURCE, Api

CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
MAX_EXAMPLES = 80


@pytest.fixture
def use_case_key(services: Services) -> str:
    return in_deployment(services.app).key


OPERATIONS = [("POST", "/v1/events"), ("GET", "/healthz"), ("GET", "/readyz")]


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_server_error_and_every_answer_as_published(
    api: Api, use_case_key: str, method: str, path: str
) -> None:
    published = schemathesis.openapi.from_url(f"{api.base_url}/openapi.json")
    operation = published[path][method]
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )
    headers = {"Authorization": f"Bearer {api.tokens.integration}"}

    @hypothesis_settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases)
    def check(case: schemathesis.Case) -> None:
        if case.path == "/v1/events":
            if isinstance(case.body, list):
                case.body = [aimed(event, use_case_key, INTEGRATION_SOURCE) for event in case.body]
            else:
                case.body = aimed(case.body, use_case_key, INTEGRATION_SOURCE)
        case.call_and_validate(base_url=api.base_url, headers=headers, checks=CHECKS)

    check()
