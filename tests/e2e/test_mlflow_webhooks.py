"""MLflow's model-registry webhooks on ``POST /v1/registries/mlflow``: verified with the
model's secret (a real HMAC, refused when altered or stale), deduplicated on the delivery id,
mapped to the commands a person would issue, refused with a problem naming what is missing."""

from __future__ import annotations

import time
from typing import Any

import httpx

from domain.usecase import events as e
from domain.values import RegistrySystem, Stage
from infra.bootstrap import Services
from tests.builders import Journey
from tests.e2e.cloudevents_helpers import assert_problem, events_of
from tests.e2e.conftest import Api
from tests.fixtures.registries import mlflow

MODEL = mlflow.MODEL_VERSION_CREATED["name"]


def _post(api: Api, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return api.http.post("/v1/registries/mlflow", content=body, headers=headers)


def _linked(services: Services, api: Api, stage: Stage = Stage.ACCEPTANCE) -> tuple[Journey, str]:
    journey = Journey(services.app).register().reach(stage)
    linked = api.mutate(
        "linkExternalModel", {"key": journey.key, "system": "MLFLOW", "name": MODEL}
    )
    assert linked["__typename"] == "UseCase", linked
    secret = services.registry_secrets.rotate(RegistrySystem.MLFLOW, MODEL, "ops@example.com")
    return journey, secret


def _alias(alias: str) -> dict[str, Any]:
    return {**mlflow.MODEL_VERSION_ALIAS_CREATED, "alias": alias}


def _deliver(api: Api, secret: str, entity: str, action: str, data: dict[str, Any]) -> Any:
    body = mlflow.envelope(entity, action, data)
    return _post(api, body, mlflow.signed_headers(secret, body))


def test_a_new_model_version_becomes_a_candidate_once_however_often_delivered(
    services: Services, api: Api
) -> None:
    journey, secret = _linked(services, api)
    body = mlflow.envelope("model_version", "created", mlflow.MODEL_VERSION_CREATED)
    headers = mlflow.signed_headers(secret, body)

    first = _post(api, body, headers)

    assert first.status_code == 200, first.text
    assert first.json()["useCase"] == journey.key
    [*_, registered] = events_of(services.app, journey.key)
    assert isinstance(registered, e.CandidateVersionRegistered)
    assert registered.version.label == "example_model/v1"
    assert registered.version.model == "models:/example_model/1"
    assert registered.version.prompt is None  # a classic model
    assert registered.meta.actor_id == f"mlflow:{MODEL}"
    assert registered.meta.source == "mlflow"
    version = journey.use_case.version
    again = _post(api, body, headers)  # MLflow retrying the same delivery
    assert (again.status_code, again.json()) == (200, first.json())
    assert journey.use_case.version == version


def test_a_signature_altered_stale_or_missing_is_refused_and_nothing_is_written(
    services: Services, api: Api
) -> None:
    journey, secret = _linked(services, api)
    version = journey.use_case.version
    body = mlflow.envelope("model_version", "created", mlflow.MODEL_VERSION_CREATED)
    headers = mlflow.signed_headers(secret, body)

    altered = body.replace(b'"1"', b'"2"')
    assert_problem(_post(api, altered, headers), 401, "invalid-signature")
    other = mlflow.signed_headers("not-the-secret", body)
    assert_problem(_post(api, body, other), 401, "invalid-signature")
    stale = mlflow.signed_headers(secret, body, timestamp=int(time.time()) - 3600)
    problem = assert_problem(_post(api, body, stale), 401, "invalid-signature")
    assert "more than five minutes" in problem["detail"]
    unsigned = {k: v for k, v in headers.items() if k != "X-MLflow-Signature"}
    problem = assert_problem(_post(api, body, unsigned), 400, "missing-mlflow-headers")
    assert "x-mlflow-signature" in problem["detail"]
    assert journey.use_case.version == version


def test_a_model_without_a_secret_or_a_link_is_a_problem_naming_it(
    services: Services, api: Api
) -> None:
    body = mlflow.envelope("model_version", "created", {**mlflow.MODEL_VERSION_CREATED,
                                                         "name": "unknown_model"})  # fmt: skip
    problem = assert_problem(
        _post(api, body, mlflow.signed_headers("any", body)), 401, "unknown-webhook-secret"
    )
    assert "stagegate registry secret mlflow unknown_model" in problem["detail"]

    secret = services.registry_secrets.rotate(RegistrySystem.MLFLOW, MODEL, "ops@example.com")
    problem = assert_problem(
        _deliver(api, secret, "model_version", "created", mlflow.MODEL_VERSION_CREATED),
        404,
        "model-not-linked",
    )
    assert "linkExternalModel" in problem["detail"]


def test_an_alias_deploys_its_version_and_a_tag_proves_nothing(
    services: Services, api: Api
) -> None:
    journey, secret = _linked(services, api)
    created = _deliver(api, secret, "model_version", "created", mlflow.MODEL_VERSION_CREATED)
    assert created.status_code == 200, created.text
    journey.satisfy_gate(Stage.DEPLOYMENT)  # evaluated, signed off, ready: example_model/v1
    journey.advance(Stage.DEPLOYMENT)

    staging = _deliver(
        api,
        secret,
        "model_version_alias",
        "created",
        _alias("staging"),
    )
    assert staging.status_code == 200, staging.text
    champion = _deliver(
        api,
        secret,
        "model_version_alias",
        "created",
        _alias("champion"),
    )
    assert champion.status_code == 200, champion.text
    state = journey.use_case.state
    assert [(d.version, d.environment) for d in state.deployments] == [
        ("example_model/v1", "staging"),
        ("example_model/v1", "production"),
    ]
    assert state.production_version == "example_model/v1"

    version = journey.use_case.version
    tagged = _deliver(api, secret, "model_version_tag", "set", mlflow.MODEL_VERSION_TAG_SET)
    assert tagged.status_code == 202
    assert tagged.json()["status"] == "ignored"
    # From deployment on, a new version is a change to request: refused, naming the rule.
    newer = _deliver(api, secret, "model_version", "created",
                     {**mlflow.MODEL_VERSION_CREATED, "version": "2"})  # fmt: skip
    problem = assert_problem(newer, 422, "rule-violated")
    assert problem["code"] == "STAGE_DOES_NOT_ALLOW"
    assert journey.use_case.version == version


def test_an_alias_for_production_before_the_deployment_gate_is_refused(
    services: Services, api: Api
) -> None:
    journey, secret = _linked(services, api)
    _deliver(api, secret, "model_version", "created", mlflow.MODEL_VERSION_CREATED)

    refused = _deliver(
        api,
        secret,
        "model_version_alias",
        "created",
        _alias("production"),
    )

    problem = assert_problem(refused, 422, "rule-violated")
    assert problem["code"] == "STAGE_DOES_NOT_ALLOW"
    assert journey.use_case.state.production_version is None
