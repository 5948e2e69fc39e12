"""The W&B automation template in docs/registries.md, filled in as W&B fills its payload
variables (``${event_type}``, ``${artifact_version_string}``, ``${event_author}``), posts a
CloudEvent stagegate applies once: the composed id makes W&B's retries one delivery."""

from __future__ import annotations

import json
import re
from pathlib import Path

from domain.usecase import events as e
from domain.values import Role, Stage
from infra.bootstrap import Services
from tests.builders import Journey
from tests.e2e.cloudevents_helpers import events_of
from tests.e2e.conftest import Api

DOC = Path(__file__).parents[2] / "docs" / "registries.md"


def _template() -> str:
    section = DOC.read_text().split("## Weights & Biases", 1)[1]
    match = re.search(r"```json\n(.*?)```", section, re.S)
    assert match is not None, "docs/registries.md has no W&B template"
    return match.group(1)


def test_the_documented_wandb_template_posts_a_deployment_once(
    services: Services, api: Api
) -> None:
    journey = Journey(services.app).register().reach(Stage.DEPLOYMENT)
    signed_off = journey.use_case.state.sign_off
    assert signed_off is not None
    filled = (
        _template()
        .replace("${event_type}", "ADD_ARTIFACT_ALIAS")
        .replace("${artifact_version_string}", signed_off.version)
        .replace("${event_author}", "ava")
        .replace('"subject": "invoice-triage"', f'"subject": "{journey.key}"')
    )
    event = json.loads(filled)
    token = services.tokens.issue(
        "wandb@example.com", Role.INTEGRATION, sources=(event["source"],)
    ).secret_token
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/cloudevents+json",
    }

    first = api.http.post("/v1/events", content=filled.encode(), headers=headers)

    assert first.status_code == 200, first.text
    [*_, deployed] = events_of(services.app, journey.key)
    assert isinstance(deployed, e.DeploymentRecorded)
    assert (deployed.deployment.version, deployed.deployment.environment) == (
        signed_off.version,
        "production",
    )
    version = journey.use_case.version
    retried = api.http.post("/v1/events", content=filled.encode(), headers=headers)
    assert (retried.status_code, retried.json()) == (200, first.json())
    assert journey.use_case.version == version
