"""Exports over HTTP for auditors and admins: a use case's history as JSON Lines, verifiable
offline like ``stagegate audit export``'s, and the portfolio inventory as JSON and CSV."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from domain import commands as c
from domain.values import Role, Stage
from infra.audit import export_history
from infra.bootstrap import Services
from projections.inventory import CSV_COLUMNS
from tests.builders import Journey, ctx, last_month
from tests.e2e.conftest import Api

VERIFY = Path(__file__).resolve().parents[2] / "docs" / "verify_export.py"


def test_an_auditor_exports_a_history_that_verifies_offline(
    services: Services, api: Api, tmp_path: Path
) -> None:
    journey = Journey(services.app).register().reach(Stage.ACCEPTANCE)

    response = api.http.get(
        f"/v1/use-cases/{journey.key}/history",
        headers={"Authorization": f"Bearer {api.tokens.auditor}"},
    )

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/jsonl")
    lines = response.text.splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["version"] for r in records[:-1]] == list(range(1, journey.use_case.version + 1))
    assert records[-1]["headVersion"] == journey.use_case.version
    # The same bytes as the command line's export of that history.
    cli = io.StringIO()
    export_history(services.app, journey.key, cli)
    assert response.text == cli.getvalue()
    exported = tmp_path / "history.jsonl"
    exported.write_text(response.text)
    verified = subprocess.run(
        [sys.executable, str(VERIFY), str(exported)], capture_output=True, text=True
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "intact" in verified.stdout


@pytest.mark.parametrize("role", ["editor", "viewer", "approver"])
def test_only_auditors_and_admins_export(services: Services, api: Api, role: str) -> None:
    journey = Journey(services.app).register()
    token = getattr(api.tokens, role)

    for path in (f"/v1/use-cases/{journey.key}/history", "/v1/portfolio/inventory"):
        response = api.http.get(path, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 403, (path, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert f"Role {role} cannot export" in response.json()["detail"]
    anonymous = api.http.get("/v1/portfolio/inventory")
    assert anonymous.status_code == 401


def _admin(services: Services) -> str:
    return services.tokens.issue("ada.admin@example.com", Role.ADMIN).secret_token


def test_a_history_that_does_not_exist_is_a_404_problem(services: Services, api: Api) -> None:
    response = api.http.get(
        "/v1/use-cases/no-such-use-case/history",
        headers={"Authorization": f"Bearer {_admin(services)}"},
    )
    assert response.status_code == 404
    assert "There is no use case 'no-such-use-case'" in response.json()["detail"]


def test_the_inventory_lists_every_use_case_with_its_gate_and_evidence(
    services: Services, api: Api
) -> None:
    proposed = Journey(services.app).register()
    measured = Journey(services.app).register().reach(Stage.MEASUREMENT)
    formula = Journey(services.app)
    formula.issue(c.RegisterUseCase, title='=HYPERLINK("http://evil.example")')
    priced = Journey(services.app).register().reach(Stage.MEASUREMENT)
    start, end = last_month(datetime.now(UTC))
    cost = {"key": priced.key, "periodStart": start, "periodEnd": end, "amount": "640.00"}
    services.app.execute(c.RecordInferenceCost.parse({**cost, "currency": "EUR"}), ctx())
    admin = _admin(services)

    as_json = api.http.get(
        "/v1/portfolio/inventory", headers={"Authorization": f"Bearer {api.tokens.auditor}"}
    )
    assert as_json.status_code == 200, as_json.text
    rows = {row["key"]: row for row in as_json.json()}
    assert {proposed.key, measured.key, formula.key} <= set(rows)
    row = rows[measured.key]
    assert row["stage"] == "measurement"
    assert row["gate"]["next"] == "scale"
    assert "AFTER_STATE_MEASURED" in row["gate"]["unmet"]
    assert row["technicalOwner"]
    assert row["businessOwner"]
    assert row["latestEvaluation"]["passes"] is True
    assert (row["monthlyBudget"], row["budgetCurrency"]) == ("1000", "EUR")
    assert row["lastCompleteMonth"] == f"{last_month(datetime.now(UTC))[0]:%Y-%m}"
    assert row["lastMonthCost"] is None  # its journey reported none for this month
    for_the_gate = rows[priced.key]
    assert (for_the_gate["lastMonthCost"], for_the_gate["lastMonthReportedInFull"]) == (
        "640.00",
        True,
    )
    [metric] = row["improvements"]
    assert (metric["kind"], metric["afterState"], metric["counts"]) == ("outcome", None, False)
    assert rows[proposed.key]["gate"]["unmet"] == ["PRIORITY_SCORED", "TECHNICAL_OWNER"]

    as_csv = api.http.get(
        "/v1/portfolio/inventory?format=csv",
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert as_csv.status_code == 200
    assert as_csv.headers["content-type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(as_csv.text)))
    assert tuple(table[0]) == CSV_COLUMNS
    by_key = {line[0]: dict(zip(CSV_COLUMNS, line, strict=True)) for line in table[1:]}
    assert by_key.keys() == rows.keys()
    assert by_key[measured.key]["unmetRequirements"].startswith("AFTER_STATE_MEASURED; ")
    assert by_key[measured.key]["improvements"].endswith("no after-state (outcome, does not count)")
    assert by_key[measured.key]["improvementShown"] == "false"
    # A title a spreadsheet would run as a formula is written as text.
    assert by_key[formula.key]["title"] == '\'=HYPERLINK("http://evil.example")'

    bad = api.http.get(
        "/v1/portfolio/inventory?format=xml",
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert bad.status_code == 422
