"""Issue 10, item 3: ``GET /metrics``, the Prometheus text page, after real traffic.

Counters are read before and after what a test does, and the differences asserted: the
counters live for the whole test process (prometheus-client's registry is global), so other
tests' traffic is in the totals, never in the differences. Every page is parsed with
``prometheus_client.parser``: what a Prometheus would read.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from ipaddress import ip_network

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from domain.values import Role
from infra.bootstrap import Services
from infra.web import build_api
from infra.webhook_destinations import DestinationPolicy
from tests.builders import Journey, unique_key
from tests.e2e import cloudevents_helpers as ce
from tests.e2e.conftest import Api
from tests.lagging import left_to_the_runners

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(page: str) -> Samples:
    """Every sample of a text page, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(page)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """A sample's value; 0 where it is absent (a counter not yet incremented)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def scrape(api: Api, token: str) -> Samples:
    response = api.http.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain"), response.headers
    return parse(response.text)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


ADVANCE = "mutation Advance($key: String!) { advanceStage(input: {key: $key}) { __typename } }"
SCORE = """mutation Score($key: String!, $expected: Int) {
  scorePriority(input: {key: $key, expectedVersion: $expected,
    leverage: {score: 4, rationale: "r"}, feasibility: {score: 4, rationale: "r"},
    readiness: {score: 4, rationale: "r"}}) { __typename } }"""


def test_a_scrape_after_a_lifecycle_counts_what_happened(services: Services, api: Api) -> None:
    token = api.tokens.auditor
    key = unique_key("metrics")
    api.mutate("registerUseCase", {"key": key, "title": "Counted"})
    before = scrape(api, token)

    # A gate refusal (one command, two unmet requirements), an accepted command, a conflict.
    assert api.gql(ADVANCE, {"key": key})["data"]["advanceStage"]["__typename"] == "GateBlocked"
    assert api.gql(SCORE, {"key": key})["data"]["scorePriority"]["__typename"] == "UseCase"
    stale = api.gql(SCORE, {"key": key, "expected": 1})["data"]["scorePriority"]
    assert stale["__typename"] == "VersionConflict"
    # Unnamed, and failing, GraphQL operations.
    assert "errors" not in api.gql("{ me { role } }")
    assert api.gql("query Broken { useCases { nothingHere } }")["errors"]
    # CloudEvents: one accepted, one for a use case that does not exist.
    assert ce.post(api, ce.adoption(key)).status_code == 200
    assert ce.post(api, ce.adoption(f"{key}-missing")).status_code == 404
    # A request that is not authenticated, on a route that exists, and on one that does not.
    assert api.http.get("/graphql", params={"query": "{ me { role } }"}).status_code == 401
    assert api.http.get("/no/such/path/42").status_code == 404
    assert api.http.get("/healthz").status_code == 200  # answered after the others are counted

    after = scrape(api, token)

    commands = "stagegate_commands_total"
    assert delta(before, after, commands, command="AdvanceStage", outcome="refused") == 1
    assert delta(before, after, commands, command="ScorePriority", outcome="accepted") == 1
    assert delta(before, after, commands, command="ScorePriority", outcome="conflict") == 1
    assert delta(before, after, commands, command="RecordAdoption", outcome="accepted") == 1
    assert delta(before, after, commands, command="Unknown", outcome="refused") == 1  # no such key
    refusals = "stagegate_gate_refusals_total"
    unmet = {"PRIORITY_SCORED", "TECHNICAL_OWNER"}
    for code in unmet:
        assert delta(before, after, refusals, requirement=code) == 1, code
    moved = {
        dict(labels)["requirement"]
        for (name, labels) in after
        if name == refusals and delta(before, after, name, **dict(labels))
    }
    assert moved == unmet

    operations = "stagegate_graphql_operations_total"
    assert delta(before, after, operations, operation="Advance", outcome="ok") == 1
    assert delta(before, after, operations, operation="Score", outcome="ok") == 2
    assert delta(before, after, operations, operation="anonymous", outcome="ok") == 1
    assert delta(before, after, operations, operation="Broken", outcome="error") == 1

    cloudevents = "stagegate_cloudevents_total"
    assert delta(before, after, cloudevents, type=ce.ADOPTION, outcome="accepted") == 1
    assert delta(before, after, cloudevents, type=ce.ADOPTION, outcome="refused") == 1

    requests = "stagegate_http_requests_total"
    # Five GraphQL requests, and the first scrape's request.
    assert delta(before, after, requests, method="POST", route="/graphql", status="200") == 5
    assert delta(before, after, requests, method="GET", route="/metrics", status="200") == 1
    assert delta(before, after, requests, method="GET", route="/graphql", status="401") == 1
    assert delta(before, after, requests, method="POST", route="/v1/events", status="200") == 1
    assert delta(before, after, requests, method="POST", route="/v1/events", status="404") == 1
    assert delta(before, after, requests, method="GET", route="unmatched", status="404") == 1
    assert not [labels for (name, labels) in after if ("route", "/no/such/path/42") in labels]
    histogram = "stagegate_http_request_duration_seconds_count"
    assert delta(before, after, histogram, method="POST", route="/graphql") == 5


def test_projection_lag_webhook_queue_and_pool_are_read_when_scraped(
    services: Services, api: Api
) -> None:
    token = api.tokens.auditor
    current = scrape(api, token)
    for projection in ("summaries", "history"):
        assert value(current, "stagegate_projection_lag_events", projection=projection) == 0
        assert value(current, "stagegate_projection_lag_seconds", projection=projection) == 0

    with left_to_the_runners(services):  # two events the read models have not applied
        Journey(services.app).register().report_cost()
    lagging = scrape(api, token)
    for projection in ("summaries", "history"):
        assert value(lagging, "stagegate_projection_lag_events", projection=projection) == 2
        assert value(lagging, "stagegate_projection_lag_seconds", projection=projection) > 0

    admin = services.tokens.issue("ops@example.com", Role.ADMIN).secret_token
    # A loopback http URL (nothing listens on port 9): allowed as an administrator would.
    services.webhooks.destinations = DestinationPolicy(
        allow_http=True, allowed_networks=(ip_network("127.0.0.0/8"),)
    )
    created = api.gql(
        'mutation { createWebhookSubscription(input: {url: "http://127.0.0.1:9/hook"}) '
        "{ __typename } }",
        token=admin,
    )
    assert (
        created["data"]["createWebhookSubscription"]["__typename"] == "CreatedWebhookSubscription"
    )
    key = Journey(services.app).register().key
    for _ in range(2):  # two gate refusals: two notifications for the subscription
        assert api.gql(ADVANCE, {"key": key})["data"]["advanceStage"]["__typename"] == "GateBlocked"
    services.webhooks.fan_out()
    queued = scrape(api, token)
    pending = value(queued, "stagegate_webhook_deliveries_pending")
    assert pending == 2

    services.webhooks.send = lambda _destination, _body, _headers: 503
    attempted = services.webhooks.deliver_due()
    assert attempted == pending
    failed = scrape(api, token)
    attempts = "stagegate_webhook_delivery_attempts_total"
    assert delta(queued, failed, attempts, outcome="failed") == attempted
    assert delta(queued, failed, attempts, outcome="delivered") == 0
    assert value(failed, "stagegate_webhook_deliveries_pending") == pending  # to be retried

    pool_max = value(failed, "stagegate_db_pool_connections", state="max")
    if services.database.pool_usage():
        assert pool_max == services.database.pool_usage()["pool_max"] > 0
        assert value(failed, "stagegate_db_pool_connections", state="size") >= 1
    else:  # SQLite: no pool, nothing sampled (the gauge may hold another test's PostgreSQL)
        assert services.settings.database_url.startswith("sqlite")


@pytest.mark.parametrize(
    ("who", "status"), [(None, 401), ("editor", 403), ("viewer", 403), ("integration", 403)]
)
def test_only_admins_and_auditors_may_scrape(api: Api, who: str | None, status: int) -> None:
    headers = {} if who is None else {"Authorization": f"Bearer {getattr(api.tokens, who)}"}
    response = api.http.get("/metrics", headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "stagegate_" not in response.text


def test_an_admin_may_scrape(services: Services, api: Api) -> None:
    admin = services.tokens.issue("ops@example.com", Role.ADMIN).secret_token
    response = api.http.get("/metrics", headers={"Authorization": f"Bearer {admin}"})
    assert response.status_code == 200, response.text
    assert "# TYPE stagegate_http_requests_total counter" in response.text


def test_metrics_off_serves_no_page(
    services: Services, serve: Callable[[FastAPI], str], api: Api
) -> None:
    settings = services.settings.model_copy(update={"metrics": "off"})
    url = serve(build_api(dataclasses.replace(services, settings=settings)))
    before = scrape(api, api.tokens.auditor)
    editor = {"Authorization": f"Bearer {api.tokens.editor}"}
    probe = httpx.post(
        f"{url}/graphql", json={"query": "query OffProbe { me { role } }"}, headers=editor
    )
    assert probe.json() == {"data": {"me": {"role": "EDITOR"}}}
    after = scrape(api, api.tokens.auditor)
    operations = "stagegate_graphql_operations_total"
    assert delta(before, after, operations, operation="OffProbe", outcome="ok") == 0
    requests = "stagegate_http_requests_total"
    assert delta(before, after, requests, method="POST", route="/graphql", status="200") == 0
    response = httpx.get(
        f"{url}/metrics", headers={"Authorization": f"Bearer {api.tokens.auditor}"}
    )
    assert response.status_code == 404
