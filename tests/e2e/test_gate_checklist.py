"""``gate { requirements { code met message } }``: every requirement of the next gate, met or
not, over real HTTP (the portal's checklist reads it).

The expected codes are the gate's own, as docs/domain.md lists them for the gate into
``pilot``; which of them holds follows from what each step wrote.
"""

from __future__ import annotations

from typing import Any

from tests.builders import unique_key
from tests.e2e.conftest import Api

GATE = "gate { next unmet { code message } requirements { code met message } }"


def _gate(api: Api, key: str) -> dict[str, Any]:
    found = api.use_case(key, GATE)
    assert found is not None
    gate: dict[str, Any] = found["gate"]
    return gate


def test_the_checklist_lists_every_requirement_of_the_next_gate_met_or_not(api: Api) -> None:
    key = unique_key("checklist")
    assert api.mutate("registerUseCase", {"key": key, "title": "Checklist"})["key"] == key

    gate = _gate(api, key)
    assert gate["next"] == "PILOT"
    assert [(r["code"], r["met"]) for r in gate["requirements"]] == [
        ("PRIORITY_SCORED", False),
        ("TECHNICAL_OWNER", False),
    ]
    # An unmet requirement says what to do, as `unmet` says it.
    assert [{"code": r["code"], "message": r["message"]} for r in gate["requirements"]] == gate[
        "unmet"
    ]

    scored = {"score": 4, "rationale": "Assessed."}
    api.mutate(
        "scorePriority",
        {"key": key, "leverage": scored, "feasibility": scored, "readiness": scored},
    )
    gate = _gate(api, key)
    assert gate["requirements"] == [
        {"code": "PRIORITY_SCORED", "met": True, "message": None},
        {
            "code": "TECHNICAL_OWNER",
            "met": False,
            "message": gate["unmet"][0]["message"],
        },
    ]
    assert [r["code"] for r in gate["unmet"]] == ["TECHNICAL_OWNER"]


def test_a_use_case_with_no_next_stage_has_an_empty_checklist(api: Api) -> None:
    key = unique_key("checklist")
    api.mutate("registerUseCase", {"key": key, "title": "Checklist"})
    api.mutate("retire", {"key": key, "reason": "Not pursued."})
    gate = _gate(api, key)
    assert (gate["next"], gate["requirements"], gate["unmet"]) == (None, [], [])
