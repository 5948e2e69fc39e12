"""SageMaker Model Registry state changes on ``POST /v1/registries/sagemaker`` (an EventBridge
API destination with a bearer token): a completed package version becomes a candidate once,
however many events SageMaker sends for the change; ``Approved`` never records a sign-off."""

from __future__ import annotations

from typing import Any

import httpx

from domain.usecase import events as e
from domain.values import Role, Stage
from infra.bootstrap import Services
from tests.builders import Journey
from tests.e2e.cloudevents_helpers import assert_problem, events_of
from tests.e2e.conftest import Api
from tests.fixtures.registries import sagemaker

SAGEMAKER = "aws.sagemaker"


def _token(services: Services, source: str = SAGEMAKER) -> str:
    issued = services.tokens.issue("eventbridge@example.com", Role.INTEGRATION, sources=(source,))
    return issued.secret_token


def _post(api: Api, token: str, event: dict[str, Any]) -> httpx.Response:
    return api.http.post(
        "/v1/registries/sagemaker", json=event, headers={"Authorization": f"Bearer {token}"}
    )


def _linked(services: Services, api: Api) -> Journey:
    journey = Journey(services.app).register().reach(Stage.ACCEPTANCE)
    linked = api.mutate(
        "linkExternalModel", {"key": journey.key, "system": "SAGEMAKER", "name": sagemaker.GROUP}
    )
    assert linked["__typename"] == "UseCase", linked
    return journey


def test_a_completed_package_version_becomes_a_candidate_once(services: Services, api: Api) -> None:
    journey = _linked(services, api)
    token = _token(services)
    change = sagemaker.model_package_state_change()

    first = _post(api, token, change)

    assert first.status_code == 200, first.text
    [*_, registered] = events_of(services.app, journey.key)
    assert isinstance(registered, e.CandidateVersionRegistered)
    assert registered.version.label == f"{sagemaker.GROUP}/v2"
    assert registered.version.model == change["detail"]["ModelPackageArn"]
    assert registered.version.prompt is None
    version = journey.use_case.version
    # The same change sent again, under another event id (SageMaker may send several).
    copy = sagemaker.model_package_state_change(event_id="another-id-for-the-same-change")
    again = _post(api, token, copy)
    assert (again.status_code, again.json()) == (200, first.json())
    # Approved in SageMaker: acknowledged, and no sign-off: it names no approver.
    approved = _post(
        api,
        token,
        sagemaker.model_package_state_change(approval="Approved", modified="2021-02-24T17:01:39Z"),
    )
    assert approved.status_code == 202, approved.text
    assert "no approver" in approved.json()["reason"]
    assert journey.use_case.version == version
    assert journey.use_case.state.sign_off is None


def test_what_is_not_a_completed_version_of_a_linked_group_is_refused_or_acknowledged(
    services: Services, api: Api
) -> None:
    token = _token(services)
    unlinked = _post(api, token, sagemaker.model_package_state_change(group="other-group"))
    problem = assert_problem(unlinked, 404, "model-not-linked")
    assert "other-group" in problem["detail"]

    journey = _linked(services, api)
    version = journey.use_case.version
    in_progress = _post(api, token, sagemaker.model_package_state_change(status="InProgress"))
    assert in_progress.status_code == 202
    not_sagemaker = _post(api, token, {"detail-type": "EC2 Instance State-change Notification"})
    problem = assert_problem(not_sagemaker, 400, "invalid-sagemaker-event")
    assert {e["path"] for e in problem["errors"]} >= {"detail-type", "detail"}
    other_source = _post(api, _token(services, "https://ci.example.com"),
                         sagemaker.model_package_state_change())  # fmt: skip
    assert_problem(other_source, 403, "source-not-allowed")
    assert api.http.post("/v1/registries/sagemaker", json={}).status_code == 401
    assert journey.use_case.version == version


def test_the_event_as_aws_documents_it_is_mapped(services: Services, api: Api) -> None:
    """The page's example, posted as published (its repeated ``source``, its ISO 8601 times and
    a ``Rejected`` approval): a completed version of a linked group becomes a candidate, and the
    approval status records nothing, as it names no one."""
    journey = _linked(services, api)

    answer = api.http.post(
        "/v1/registries/sagemaker",
        content=sagemaker.DOCUMENTED_EXAMPLE.encode(),
        headers={"Authorization": f"Bearer {_token(services)}", "Content-Type": "application/json"},
    )

    assert answer.status_code == 200, answer.text
    [*_, registered] = events_of(services.app, journey.key)
    assert isinstance(registered, e.CandidateVersionRegistered)
    assert registered.version.label == f"{sagemaker.GROUP}/v2"
    assert registered.version.model == (
        "arn:aws:sagemaker:us-east-2:123456789012:model-package/versionedmp-p-idy6c3e1fiqj/2"
    )
    assert journey.use_case.state.sign_off is None
