"""Schemathesis against the published ``/openapi.json`` of a running server (acceptance 4).

Requests generated from the OpenAPI document (valid and invalid ones) go to ``POST /v1/events``
and the health probes over real HTTP, with an integration token; no answer may be a server
error, and every answer must match the status codes, content types and schemas the document
publishes. Generated events are pointed at the token's own source and, half the time, at a
use case that exists (one in DEPLOYMENT, so the domain has something to judge), so the run
reaches the store and not only the scope check.
"""

from __future__ import annotations

import zlib
from typing import Any

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
from tests.e2e.cloudevents_helpers import in_deployment
from tests.e2e.conftest import INTEGRATION_SOURCE, Api

CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
MAX_EXAMPLES = 80


@pytest.fixture
def use_case_key(services: Services) -> str:
    return in_deployment(services.app).key


OPERATIONS = [("POST", "/v1/events"), ("GET", "/healthz"), ("GET", "/readyz")]


def _aim(event: Any, key: str) -> Any:
    """Post as the token's own source, and (for half of the subjects) to the real use case."""
    if not isinstance(event, dict):
        return event
    aimed = dict(event)
    if isinstance(aimed.get("source"), str):
        aimed["source"] = INTEGRATION_SOURCE
    subject = aimed.get("subject")
    if isinstance(subject, str) and zlib.crc32(subject.encode()) % 2 == 0:
        aimed["subject"] = key
    return aimed


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
                case.body = [_aim(event, use_case_key) for event in case.body]
            else:
                case.body = _aim(case.body, use_case_key)
        case.call_and_validate(base_url=api.base_url, headers=headers, checks=CHECKS)

    check()
