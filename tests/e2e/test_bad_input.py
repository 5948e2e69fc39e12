"""Acceptance 6 over HTTP: malformed input is refused, names the field, and appends nothing.

A refusal comes either as the ``ValidationFailed`` member (pydantic's checks: ranges, lengths,
formats), whose ``errors[].path`` is the field's path inside ``input``, or as a GraphQL error
(the schema's checks: types, enum values, required fields) whose message names the field. In
every case the use case's version is the same after the request as before it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.builders import BUSINESS, TECH, unique_key
from tests.e2e.conftest import RESULT_FRAGMENT, Api

LONG_TEXT_LIMIT = 4000
SHORT_TEXT_LIMIT = 200

PRIORITY = {
    "leverage": {"score": 5, "rationale": "High volume, costly errors."},
    "feasibility": {"score": 4, "rationale": "Data is accessible."},
    "readiness": {"score": 4, "rationale": "Owner committed."},
}
BASELINE = {
    "metric": "handling_minutes",
    "unit": "minutes",
    "value": 12.0,
    "direction": "LOWER_IS_BETTER",
    "measuredAt": "2025-01-15T09:00:00+00:00",
    "method": "time study",
}


def _with(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**base, **changes}


def _without(base: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in base.items() if k != name}


def _in_days(days: float) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


@dataclass(frozen=True)
class Case:
    mutation: str
    input: dict[str, Any]
    """The input apart from ``key``, which is the registered use case's unless given here."""
    field: str
    """The path of the offending field inside ``input``."""
    document: str | None = None
    """A whole mutation (taking only ``$key``) when the bad value must be a literal."""


CASES: dict[str, Case] = {
    # --- keys -----------------------------------------------------------------------------
    "key-not-a-slug": Case("registerUseCase", {"key": "Invoice Triage!", "title": "t"}, "key"),
    "key-too-long": Case("registerUseCase", {"key": "k" * 65, "title": "t"}, "key"),
    "key-malformed-on-a-command": Case("scorePriority", _with(PRIORITY, key="UPPER_case"), "key"),
    # --- scores out of range --------------------------------------------------------------
    "score-zero": Case(
        "scorePriority",
        _with(PRIORITY, leverage={"score": 0, "rationale": "none"}),
        "leverage.score",
    ),
    "score-six": Case(
        "scorePriority",
        _with(PRIORITY, readiness={"score": 6, "rationale": "eager"}),
        "readiness.score",
    ),
    "score-not-an-int": Case(
        "scorePriority",
        _with(PRIORITY, feasibility={"score": "five", "rationale": "sure"}),
        "feasibility.score",
    ),
    "adoption-zero-target": Case(
        "recordAdoption", {"activeUsers": 5, "targetUsers": 0}, "targetUsers"
    ),
    "adoption-negative-active": Case(
        "recordAdoption", {"activeUsers": -1, "targetUsers": 10}, "activeUsers"
    ),
    "expected-version-zero": Case(
        "scorePriority", _with(PRIORITY, expectedVersion=0), "expectedVersion"
    ),
    # --- oversized and empty strings ------------------------------------------------------
    "title-too-long": Case(
        "registerUseCase", {"key": "fresh-key", "title": "t" * (SHORT_TEXT_LIMIT + 1)}, "title"
    ),
    "title-blank": Case("registerUseCase", {"key": "fresh-key", "title": "   "}, "title"),
    "title-control-character": Case(
        "registerUseCase", {"key": "fresh-key", "title": "Invoice\x07triage"}, "title"
    ),
    "description-too-long": Case(
        "registerUseCase",
        {"key": "fresh-key", "title": "t", "description": "d" * (LONG_TEXT_LIMIT + 1)},
        "description",
    ),
    "rationale-too-long": Case(
        "scorePriority",
        _with(PRIORITY, leverage={"score": 5, "rationale": "r" * (LONG_TEXT_LIMIT + 1)}),
        "leverage.rationale",
    ),
    "reason-too-long": Case("retire", {"reason": "r" * (LONG_TEXT_LIMIT + 1)}, "reason"),
    "person-id-with-spaces": Case(
        "assignOwner", {"role": "BUSINESS", "person": {"id": "Bob Business"}}, "person.id"
    ),
    "currency-not-iso": Case(
        "confirmReadiness",
        {"item": "COST_TRACKING", "evidence": "budget", "monthlyBudget": "100", "currency": "euro"},
        "currency",
    ),
    # --- malformed dates ------------------------------------------------------------------
    "date-not-a-date": Case(
        "captureBaseline", {"baseline": _with(BASELINE, measuredAt="yesterday")}, "measuredAt"
    ),
    "date-impossible": Case(
        "recordAdoption",
        {"activeUsers": 5, "targetUsers": 10, "measuredAt": "2025-13-45T00:00:00Z"},
        "measuredAt",
    ),
    "date-without-timezone": Case(
        "captureBaseline",
        {"baseline": _with(BASELINE, measuredAt="2025-01-15T09:00:00")},
        "baseline.measuredAt",
    ),
    "date-in-the-future": Case(
        "recordAdoption",
        {"activeUsers": 5, "targetUsers": 10, "measuredAt": _in_days(30)},
        "measuredAt",
    ),
    # --- unknown enum values --------------------------------------------------------------
    "unknown-owner-role": Case(
        "assignOwner", {"role": "OWNER", "person": {"id": BUSINESS["id"]}}, "role"
    ),
    "enum-in-lower-case": Case(
        "captureBaseline", {"baseline": _with(BASELINE, direction="lower_is_better")}, "direction"
    ),
    "unknown-stage": Case("advanceStage", {"to": "PRODUCTION"}, "to"),
    # --- missing required fields ----------------------------------------------------------
    "missing-title": Case("registerUseCase", {"key": "fresh-key"}, "title"),
    "missing-person": Case("assignOwner", {"role": "TECHNICAL"}, "person"),
    "missing-dimension": Case("scorePriority", _without(PRIORITY, "readiness"), "readiness"),
    "missing-nested-method": Case(
        "captureBaseline", {"baseline": _without(BASELINE, "method")}, "method"
    ),
    "empty-criteria": Case(
        "defineAcceptanceCriteria",
        {"criteria": [], "approver": {"id": "ada@example.com"}},
        "criteria",
    ),
    # --- non-finite numbers ---------------------------------------------------------------
    "value-nan": Case(
        "captureBaseline", {"baseline": _with(BASELINE, value=float("nan"))}, "baseline.value"
    ),
    "value-infinity": Case(
        "captureBaseline", {"baseline": _with(BASELINE, value=float("inf"))}, "baseline.value"
    ),
    "measurement-minus-infinity": Case(
        "recordMeasurement", {"metric": "handling_minutes", "value": float("-inf")}, "value"
    ),
    "threshold-nan": Case(
        "defineAcceptanceCriteria",
        {
            "criteria": [{"metric": "accuracy", "comparator": "GTE", "threshold": float("nan")}],
            "approver": {"id": "ada@example.com"},
        },
        "threshold",
    ),
    "float-literal-overflowing-to-infinity": Case(
        "captureBaseline",
        {},
        "baseline.value",
        document=(
            "mutation Run($key: String!) { result: captureBaseline(input: {key: $key, "
            'baseline: {metric: "m", unit: "u", value: 1e400, direction: LOWER_IS_BETTER, '
            'measuredAt: "2025-01-15T09:00:00+00:00", method: "time study"}}) '
            "{ ...Result } }\n" + RESULT_FRAGMENT
        ),
    ),
}


def _names_field(message: str, path: str) -> bool:
    """Whether an error message names the field: its last path segment as a whole word."""
    name = path.rsplit(".", 1)[-1]
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", message) is not None


def assert_refused_naming(body: dict[str, Any], path: str) -> None:
    if body.get("errors"):
        messages = [e["message"] for e in body["errors"]]
        assert (body.get("data") or {}).get("result") is None, body
        assert any(_names_field(m, path) for m in messages), (path, messages)
        return
    result = body["data"]["result"]
    assert result["__typename"] == "ValidationFailed", (path, result)
    paths = [e["path"] for e in result["errors"]]
    assert path in paths, (path, result["errors"])
    assert all(e["message"] for e in result["errors"]), result


@pytest.fixture
def subject(api: Api) -> str:
    """A registered, scored use case: the one every malformed command is aimed at."""
    key = unique_key("bad-input")
    for name, input in (
        ("registerUseCase", {"title": "Invoice triage"}),
        ("scorePriority", PRIORITY),
    ):
        result = api.mutate(name, {"key": key, **input})
        assert result["__typename"] == "UseCase", (name, result)
    return key


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_malformed_input_is_refused_naming_the_field_and_appends_nothing(
    api: Api, subject: str, case: Case
) -> None:
    input = {"key": subject, **case.input}
    touched = input["key"]
    before = api.version(subject)
    touched_before = api.version(touched)

    if case.document is not None:
        body = api.gql(case.document, {"key": subject})
    else:
        body = api.mutate_body(case.mutation, input)

    assert_refused_naming(body, case.field)
    assert api.version(subject) == before
    assert api.version(touched) == touched_before


@pytest.mark.parametrize(
    ("mutation", "input"),
    [
        ("scorePriority", PRIORITY),
        ("assignOwner", {"role": "TECHNICAL", "person": TECH}),
        ("advanceStage", {}),
        ("retire", {"reason": "never existed"}),
    ],
)
def test_a_command_for_an_unknown_key_is_not_found_and_creates_nothing(
    api: Api, subject: str, mutation: str, input: dict[str, Any]
) -> None:
    key = unique_key("unknown")
    before = api.version(subject)

    result = api.mutate(mutation, {"key": key, **input})

    assert result["__typename"] == "NotFound", result
    assert result["key"] == key
    assert api.use_case(key) is None
    assert api.version(subject) == before
