"""Linking a use case to a model in an external registry (MLflow, SageMaker, W&B): shown on the
use case and in its history; a model names one use case at most; unlinking is an event too."""

from __future__ import annotations

from infra.bootstrap import Services
from tests.builders import EDITOR, Journey
from tests.e2e.conftest import Api

LINKED = "externalModels { system name linkedBy }"


def test_a_link_is_shown_kept_to_one_use_case_and_undone_by_an_event(
    services: Services, api: Api
) -> None:
    first, second = Journey(services.app).register(), Journey(services.app).register()
    model = {"system": "MLFLOW", "name": "invoice-router"}

    linked = api.mutate("linkExternalModel", {"key": first.key, **model})
    assert linked["__typename"] == "UseCase", linked
    use_case = api.use_case(first.key, LINKED)
    assert use_case is not None
    assert use_case["externalModels"] == [
        {"system": "MLFLOW", "name": "invoice-router", "linkedBy": EDITOR.id}
    ]
    assert services.read_models.linked_use_cases("mlflow", "invoice-router") == [first.key]

    again = api.mutate("linkExternalModel", {"key": first.key, **model})
    assert (again["__typename"], again["code"]) == ("RuleViolated", "MODEL_ALREADY_LINKED")
    elsewhere = api.mutate("linkExternalModel", {"key": second.key, **model})
    assert (elsewhere["__typename"], elsewhere["code"]) == (
        "RuleViolated",
        "MODEL_LINKED_ELSEWHERE",
    )
    assert first.key in elsewhere["message"]
    # The same name in another registry is another model.
    other = api.mutate("linkExternalModel", {"key": second.key, "system": "SAGEMAKER",
                                             "name": "invoice-router"})  # fmt: skip
    assert other["__typename"] == "UseCase", other

    unlinked = api.mutate(
        "unlinkExternalModel", {"key": first.key, **model, "reason": "retrained in SageMaker"}
    )
    assert unlinked["__typename"] == "UseCase", unlinked
    after = api.use_case(first.key, LINKED)
    assert after is not None
    assert after["externalModels"] == []
    history = api.gql(
        "query($key: String!) { useCase(key: $key) { history(last: 2) {"
        " edges { node { type reason } } } } }",
        {"key": first.key},
        api.tokens.auditor,
    )["data"]["useCase"]["history"]["edges"]
    assert [(e["node"]["type"], e["node"]["reason"]) for e in history] == [
        ("ExternalModelLinked", None),
        ("ExternalModelUnlinked", "retrained in SageMaker"),
    ]
    moved = api.mutate("linkExternalModel", {"key": second.key, **model})
    assert moved["__typename"] == "UseCase", moved
    assert services.read_models.linked_use_cases("mlflow", "invoice-router") == [second.key]

    missing = api.mutate("unlinkExternalModel", {"key": first.key, **model, "reason": "tidying up"})
    assert (missing["__typename"], missing["code"]) == ("RuleViolated", "MODEL_NOT_LINKED")
