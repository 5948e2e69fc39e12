"""Acceptance 6 (domain level): bad input is refused naming each bad field, and writes nothing.

Each case starts from a valid payload (camelCase, as a caller writes it), breaks one field and
expects ``Command.parse`` to raise ``ValidationFailed`` naming exactly that field's path.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain import commands as c
from domain.application import Stagegate
from domain.errors import NotFound, ValidationFailed
from tests.builders import APPROVER, PASSING_RESULTS, Journey, ctx, days_ago, unique_key

MISSING = object()
NAN, INF = float("nan"), float("inf")
FUTURE = (datetime.now(UTC) + timedelta(days=1)).isoformat()
NAIVE = "2024-01-15T09:30:00"
PAST = "2024-01-15T09:30:00+00:00"
YEAR_ONE = "0001-01-01T00:30:00+01:00"

VALID: dict[type[c.Command], dict[str, Any]] = {
    c.RegisterUseCase: {"key": "invoice-triage", "title": "Invoice triage"},
    c.ScorePriority: {
        "key": "invoice-triage",
        "leverage": {"score": 5, "rationale": "High volume."},
        "feasibility": {"score": 4, "rationale": "Data is there."},
        "readiness": {"score": 3, "rationale": "Owner committed."},
    },
    c.AssignOwner: {"key": "invoice-triage", "role": "business", "person": {"id": "bob@x.org"}},
    c.DefineAcceptanceCriteria: {
        "key": "invoice-triage",
        "criteria": [
            {"metric": "accuracy", "comparator": "gte", "threshold": 0.9},
            {"metric": "latency", "comparator": "lte", "threshold": 2.0},
        ],
        "approver": APPROVER,
    },
    c.CaptureBaseline: {
        "key": "invoice-triage",
        "baseline": {
            "metric": "minutes",
            "unit": "min",
            "value": 12.0,
            "direction": "lower_is_better",
            "measuredAt": PAST,
            "method": "study",
        },
    },
    c.RecordEvaluation: {
        "key": "invoice-triage",
        "version": "v1",
        "results": PASSING_RESULTS,
        "evaluatedAt": PAST,
    },
    c.ConfirmReadiness: {
        "key": "invoice-triage",
        "item": "cost_tracking",
        "evidence": "FinOps",
        "monthlyBudget": "1000",
        "currency": "EUR",
    },
    c.AdvanceStage: {"key": "invoice-triage", "to": "pilot"},
    c.RecordDeployment: {"key": "invoice-triage", "version": "v1", "deployedAt": PAST},
    c.RecordMeasurement: {
        "key": "invoice-triage",
        "metric": "minutes",
        "value": 5.0,
        "measuredAt": PAST,
    },
    c.RecordAdoption: {
        "key": "invoice-triage",
        "activeUsers": 10,
        "targetUsers": 20,
        "measuredAt": PAST,
    },
    c.RecordInferenceCost: {
        "key": "invoice-triage",
        "periodStart": "2024-01-01T00:00:00Z",
        "periodEnd": "2024-02-01T00:00:00Z",
        "amount": "12.50",
        "currency": "EUR",
    },
    c.DefineScaleCriteria: {
        "key": "invoice-triage",
        "criteria": [{"dimension": "volume", "target": "50k/month"}],
    },
    c.RequestChange: {
        "key": "invoice-triage",
        "reason": "cheaper",
        "toVersion": {"label": "v2", "model": "m", "prompt": "p"},
    },
    c.ApproveChange: {"key": "invoice-triage", "changeNumber": 1},
    c.RollBack: {"key": "invoice-triage", "reason": "errors up", "rolledBackAt": PAST},
    c.RaiseQualityAlert: {
        "key": "invoice-triage",
        "severity": "high",
        "description": "drift",
        "raisedAt": PAST,
    },
    c.ReturnToStage: {"key": "invoice-triage", "stage": "pilot", "reason": "rework"},
    c.Retire: {"key": "invoice-triage", "reason": "superseded"},
}

# (command, where to break the payload, the bad value or MISSING, the path the error must name)
CASES: list[tuple[type[c.Command], str, Any, str]] = [
    # malformed key
    *[
        (c.RegisterUseCase, "key", bad, "key")
        for bad in ["Invoice-Triage", "invoice triage", "-triage", "triage-", "a--b", "x", "a" * 65]
    ],
    (c.Retire, "key", "Not A Slug", "key"),
    # priority scores out of range
    (c.ScorePriority, "leverage.score", 0, "leverage.score"),
    (c.ScorePriority, "readiness.score", 6, "readiness.score"),
    # malformed and naive dates
    (c.RecordDeployment, "deployedAt", "2024-13-01T00:00:00Z", "deployedAt"),
    (c.RecordDeployment, "deployedAt", "yesterday", "deployedAt"),
    (c.CaptureBaseline, "baseline.measuredAt", NAIVE, "baseline.measuredAt"),
    (c.RecordMeasurement, "measuredAt", NAIVE, "measuredAt"),
    (c.RecordInferenceCost, "periodStart", "2024-01-01T00:00:00", "periodStart"),
    # business times in the future
    (c.RecordEvaluation, "evaluatedAt", FUTURE, "evaluatedAt"),
    (c.RecordDeployment, "deployedAt", FUTURE, "deployedAt"),
    (c.RecordMeasurement, "measuredAt", FUTURE, "measuredAt"),
    (c.RecordAdoption, "measuredAt", FUTURE, "measuredAt"),
    (c.RollBack, "rolledBackAt", FUTURE, "rolledBackAt"),
    (c.RaiseQualityAlert, "raisedAt", FUTURE, "raisedAt"),
    (c.CaptureBaseline, "baseline.measuredAt", FUTURE, "baseline.measuredAt"),
    # business times before 1970 (a year-1 time with an offset cannot even become UTC)
    *[
        (command, where, YEAR_ONE, where)
        for command, where in [
            (c.RecordEvaluation, "evaluatedAt"),
            (c.RecordDeployment, "deployedAt"),
            (c.RecordMeasurement, "measuredAt"),
            (c.RecordAdoption, "measuredAt"),
            (c.RecordInferenceCost, "periodStart"),
            (c.RollBack, "rolledBackAt"),
            (c.RaiseQualityAlert, "raisedAt"),
            (c.CaptureBaseline, "baseline.measuredAt"),
        ]
    ],
    (c.RecordMeasurement, "measuredAt", "1969-12-31T23:59:59.999999Z", "measuredAt"),
    # unknown enum values
    (c.AssignOwner, "role", "owner", "role"),
    (c.ConfirmReadiness, "item", "vibes_check", "item"),
    (c.DefineAcceptanceCriteria, "criteria.1.comparator", "eq", "criteria.1.comparator"),
    (c.CaptureBaseline, "baseline.direction", "sideways", "baseline.direction"),
    (c.ReturnToStage, "stage", "limbo", "stage"),
    (c.AdvanceStage, "to", "heaven", "to"),
    (c.RaiseQualityAlert, "severity", "urgent", "severity"),
    # missing required fields
    (c.RegisterUseCase, "title", MISSING, "title"),
    (c.Retire, "key", MISSING, "key"),
    (c.Retire, "reason", MISSING, "reason"),
    (c.CaptureBaseline, "baseline.method", MISSING, "baseline.method"),
    (c.RecordInferenceCost, "amount", MISSING, "amount"),
    (c.ApproveChange, "changeNumber", MISSING, "changeNumber"),
    (c.RequestChange, "toVersion.model", MISSING, "toVersion.model"),
    # oversized or empty strings
    (c.RegisterUseCase, "title", "t" * 201, "title"),
    (c.RegisterUseCase, "title", "   ", "title"),
    (c.ScorePriority, "feasibility.rationale", "r" * 4001, "feasibility.rationale"),
    (c.RollBack, "reason", "r" * 4001, "reason"),
    # non-finite numbers
    (c.CaptureBaseline, "baseline.value", NAN, "baseline.value"),
    (c.RecordMeasurement, "value", INF, "value"),
    (c.DefineAcceptanceCriteria, "criteria.0.threshold", -INF, "criteria.0.threshold"),
    (c.RecordEvaluation, "results", {"accuracy": 0.9}, "results"),  # a mapping, not pairs
    (c.RecordEvaluation, "results.1.value", NAN, "results.1.value"),
    (c.RecordInferenceCost, "amount", "NaN", "amount"),
    # adoption target, cost period, budget, duplicates
    (c.RecordAdoption, "targetUsers", 0, "targetUsers"),
    (c.RecordInferenceCost, "periodEnd", "2023-12-31T00:00:00Z", "periodEnd"),
    (c.ConfirmReadiness, "monthlyBudget", MISSING, "monthlyBudget"),
    (c.RecordEvaluation, "results.1.name", "accuracy", "results"),
    # extra unknown fields
    (c.RegisterUseCase, "colour", "blue", "colour"),
    (c.CaptureBaseline, "baseline.colour", "blue", "baseline.colour"),
]


def broken(command: type[c.Command], where: str, bad: Any) -> dict[str, Any]:
    data = copy.deepcopy(VALID[command])
    *parents, last = where.split(".")
    node: Any = data
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if bad is MISSING:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = bad
    else:
        node[last] = bad
    return data


def case_id(case: tuple[Any, ...]) -> str:
    command, where, bad, _ = case
    names = {id(MISSING): "missing", id(FUTURE): "future", id(YEAR_ONE): "year-one"}
    shown = names.get(id(bad), repr(bad)[:20])
    return f"{command.__name__}-{where}={shown}"


@pytest.mark.parametrize("command", list(VALID), ids=lambda k: k.__name__)
def test_the_valid_payloads_parse(command: type[c.Command]) -> None:
    assert isinstance(command.parse(VALID[command]), command)


@pytest.mark.parametrize(("command", "where", "bad", "path"), CASES, ids=map(case_id, CASES))
def test_bad_input_is_refused_naming_the_field(
    command: type[c.Command], where: str, bad: Any, path: str
) -> None:
    with pytest.raises(ValidationFailed) as invalid:
        command.parse(broken(command, where, bad))

    assert [e.path for e in invalid.value.errors] == [path]
    assert all(e.message for e in invalid.value.errors)


@pytest.mark.parametrize(("field", "length"), [("title", 200), ("description", 4000)])
def test_strings_at_their_limit_are_accepted(field: str, length: int) -> None:
    parsed = c.RegisterUseCase.parse({**VALID[c.RegisterUseCase], field: "x" * length})
    assert len(getattr(parsed, field)) == length


@pytest.mark.parametrize(
    "earliest", ["1970-01-01T00:00:00Z", "1970-01-01T05:45:00+05:45", "1969-12-31T14:00:00-10:00"]
)
def test_the_earliest_business_time_is_accepted_in_any_offset(earliest: str) -> None:
    parsed = c.RecordMeasurement.parse({**VALID[c.RecordMeasurement], "measuredAt": earliest})
    assert parsed.measured_at == datetime(1970, 1, 1, tzinfo=UTC)


def test_a_list_past_its_cap_is_refused_for_its_length_before_its_names_are_compared() -> None:
    # 40,000 results, every name the same: the length decides, and the names (which a
    # quadratic check took seconds over) are never compared.
    results = [{"name": "accuracy", "value": 0.9}] * 40_000
    with pytest.raises(ValidationFailed) as invalid:
        c.RecordEvaluation.parse({**VALID[c.RecordEvaluation], "results": results})
    [error] = invalid.value.errors
    assert error.path == "results"
    assert "at most 200" in error.message


def test_duplicate_names_within_the_cap_are_named() -> None:
    results = [{"name": f"m{i % 150}", "value": 0.5} for i in range(200)]
    with pytest.raises(ValidationFailed) as invalid:
        c.RecordEvaluation.parse({**VALID[c.RecordEvaluation], "results": results})
    [error] = invalid.value.errors
    assert "names given more than once: m0, m1," in error.message


def test_every_bad_field_is_named_in_one_answer() -> None:
    data = broken(c.ScorePriority, "leverage.score", 0)
    data["feasibility"]["score"] = 6
    data["readiness"]["rationale"] = "r" * 4001
    data["key"] = "Bad Key"

    with pytest.raises(ValidationFailed) as invalid:
        c.ScorePriority.parse(data)

    assert {e.path for e in invalid.value.errors} == {
        "key",
        "leverage.score",
        "feasibility.score",
        "readiness.rationale",
    }


def test_a_prefix_is_put_in_front_of_every_path() -> None:
    with pytest.raises(ValidationFailed) as invalid:
        c.RecordAdoption.parse(broken(c.RecordAdoption, "targetUsers", 0), prefix="data")
    assert [e.path for e in invalid.value.errors] == ["data.targetUsers"]


# --- through the application ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "fields"),
    [
        (c.AdvanceStage, {}),
        (c.Retire, {"reason": "never existed"}),
        (c.RecordEvaluation, {"version": "v1", "results": PASSING_RESULTS}),
    ],
    ids=lambda x: getattr(x, "__name__", ""),
)
def test_an_unknown_key_is_not_found(
    memory_app: Stagegate, command: type[c.Command], fields: dict[str, Any]
) -> None:
    Journey(memory_app).register()  # another use case exists
    before = memory_app.recorder.max_notification_id()
    key = unique_key("missing")

    with pytest.raises(NotFound) as not_found:
        memory_app.execute(command.parse({"key": key, **fields}), ctx())

    assert not_found.value.key == key
    assert memory_app.recorder.max_notification_id() == before


@pytest.mark.parametrize(("command", "where", "bad", "path"), CASES, ids=map(case_id, CASES))
def test_no_invalid_input_appends_an_event(
    memory_app: Stagegate, command: type[c.Command], where: str, bad: Any, path: str
) -> None:
    journey = Journey(memory_app).register()
    version = journey.use_case.version
    before = memory_app.recorder.max_notification_id()
    data = broken(command, where, bad)
    if where != "key" and "key" in data:
        data["key"] = journey.key if command is not c.RegisterUseCase else unique_key()

    with pytest.raises(ValidationFailed):
        memory_app.execute(command.parse(data), ctx())

    assert journey.use_case.version == version
    assert memory_app.recorder.max_notification_id() == before
    if command is c.RegisterUseCase and where != "key":
        with pytest.raises(NotFound):
            memory_app.use_case(data["key"])


def test_a_valid_command_does_append_so_the_check_above_can_fail(memory_app: Stagegate) -> None:
    journey = Journey(memory_app).register()
    before = memory_app.recorder.max_notification_id()
    data = {**VALID[c.RaiseQualityAlert], "key": journey.key, "raisedAt": days_ago(1)}
    journey.issue(c.RaiseQualityAlert, **data)
    assert memory_app.recorder.max_notification_id() == before + 1
