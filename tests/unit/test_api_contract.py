"""The names portals and integrations rely on (the specification's "API contract") are in the
schema."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    get_named_type,
)

from api.graphql import schema as schema_module
from api.graphql.schema import SCHEMA_FILE, build_schema, published_sdl

SPEC_MUTATIONS = [
    "registerUseCase",
    "scorePriority",
    "assignOwner",
    "specifyWorkflow",
    "defineAcceptanceCriteria",
    "captureBaseline",
    "registerCandidateVersion",
    "recordEvaluation",
    "signOffAcceptance",
    "confirmReadiness",
    "advanceStage",
    "recordDeployment",
    "recordMeasurement",
    "recordAdoption",
    "recordInferenceCost",
    "stateValue",
    "defineScaleCriteria",
    "confirmScaleCriterion",
    "requestChange",
    "approveChange",
    "rollBack",
    "raiseQualityAlert",
    "resolveQualityAlert",
    "returnToStage",
    "retire",
    "setPolicy",
]
ERROR_MEMBERS = {
    "GateBlocked",
    "VersionConflict",
    "ValidationFailed",
    "NotFound",
    "Forbidden",
    "RuleViolated",
}


@pytest.fixture(scope="module")
def schema() -> GraphQLSchema:
    return build_schema(max_depth=12, max_aliases=30)._schema


WEBHOOK_MUTATIONS = ["createWebhookSubscription", "removeWebhookSubscription"]
REGISTRY_MUTATIONS = ["linkExternalModel", "unlinkExternalModel"]


def test_every_mutation_of_the_spec_exists_and_none_other(schema: GraphQLSchema) -> None:
    # Besides the spec's commands: managing webhook subscriptions (issue 4) and linking models
    # in external registries (issue 12).
    assert sorted(schema.mutation_type.fields) == sorted(
        SPEC_MUTATIONS + WEBHOOK_MUTATIONS + REGISTRY_MUTATIONS
    )


@pytest.mark.parametrize("name", [m for m in SPEC_MUTATIONS if m != "setPolicy"])
def test_each_use_case_mutation_returns_the_use_case_or_an_error_member(
    schema: GraphQLSchema, name: str
) -> None:
    field = schema.mutation_type.fields[name]
    result = get_named_type(field.type)
    assert isinstance(result, GraphQLUnionType)
    assert {t.name for t in result.types} == {"UseCase"} | ERROR_MEMBERS
    if name != "registerUseCase":
        assert "expectedVersion" in get_named_type(field.args["input"].type).fields


def test_stage_enum_has_the_upper_case_values_of_the_spec(schema: GraphQLSchema) -> None:
    stage = schema.type_map["Stage"]
    assert isinstance(stage, GraphQLEnumType)
    assert list(stage.values) == [
        "PROPOSED",
        "PILOT",
        "ACCEPTANCE",
        "DEPLOYMENT",
        "MEASUREMENT",
        "SCALE",
        "RETIRED",
    ]


def test_use_case_type_has_the_fields_portals_rely_on(schema: GraphQLSchema) -> None:
    use_case = schema.type_map["UseCase"]
    assert isinstance(use_case, GraphQLObjectType)
    assert {"key", "title", "stage", "version", "owners", "gate"} <= set(use_case.fields)
    gate = get_named_type(use_case.fields["gate"].type)
    assert {"next", "unmet"} <= set(gate.fields)
    requirement = get_named_type(gate.fields["unmet"].type)
    assert {"code", "message"} <= set(requirement.fields)
    assert str(schema.query_type.fields["useCase"].args["key"].type) == "String!"


def test_the_served_schema_is_the_checked_in_contract() -> None:
    """The GraphQL types are derived from the pydantic models: a renamed field would change
    the API silently. api/graphql/schema.graphql is the contract; change it on purpose
    (``python -m api.graphql.schema``), in the same commit as the change it follows."""
    published = SCHEMA_FILE.read_text()
    served = published_sdl()
    drift = "".join(
        difflib.unified_diff(
            published.splitlines(keepends=True),
            served.splitlines(keepends=True),
            "api/graphql/schema.graphql (checked in)",
            "the schema the code serves",
        )
    )
    assert not drift, f"the GraphQL contract changed:\n{drift}"


def test_the_schema_command_checks_the_contract_without_rewriting_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README's ``python -m api.graphql.schema --check``: 0 when the file is current, 1
    (and the file untouched) when it is not; without ``--check`` it rewrites the file."""
    contract = tmp_path / "schema.graphql"
    monkeypatch.setattr(schema_module, "SCHEMA_FILE", contract)
    contract.write_text(published_sdl())
    assert schema_module.main(["--check"]) == 0

    contract.write_text("type Query { stale: Int }\n")
    assert schema_module.main(["--check"]) == 1
    assert "python -m api.graphql.schema" in capsys.readouterr().err
    assert contract.read_text() == "type Query { stale: Int }\n"

    assert schema_module.main([]) == 0
    assert contract.read_text() == published_sdl()
    assert schema_module.main(["--chek"]) == 2
