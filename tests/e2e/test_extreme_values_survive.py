"""Issue 8: everything that passes validation is stored, projected, read, restarted, rebuilt
and verified, on both stores.

Hypothesis draws a palette of extreme-but-valid values (text at its length limits, from every
Unicode plane, holding every JSON escape and the six characters ``\\u0000``; floats at their
ends, subnormal and negative zero; the largest money and user counts; business times at the
first instant allowed, 1970-01-01T00:00:00Z, in odd offsets, and at the last, a few minutes
ahead of the clock; lists at their caps). One use case is driven through every command with
them, and a second one receives every CloudEvent type with them. Then the same GraphQL read
(everything a use case shows, its whole history and integrity, the lists, the backlog and the
portfolio) must give the same answer after the projections ran, after a restart of the
services, and after a rebuild of the read models; the audit chain verifies and no projection
set anything aside.
"""

from __future__ import annotations

import string
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from api.events.envelope import read_event
from api.events.ingest import Ingestion
from domain import commands as c
from domain.metadata import Actor
from domain.usecase import use_case_id
from domain.values import EARLIEST_BUSINESS_TIME, Role, Stage
from infra.audit import verify_chain
from infra.bootstrap import Services, bootstrap
from infra.deliveries import DeliveryLog, DeliveryRecord
from infra.web import build_api
from tests.builders import (
    ADMIN,
    APPROVER,
    APPROVER_ACTOR,
    BUSINESS,
    BUSINESS_ACTOR,
    PASSING_RESULTS,
    Journey,
    R,
    ctx,
)

# --- the palette ------------------------------------------------------------------------------

ESCAPES = '"\\/\t\n\r\\u0000\u2028\u2029\ufeff\u202e\u0301{}<>&%$'
"""JSON's escapes, the six characters \\u0000, JavaScript's line terminators, a BOM, a
right-to-left override, a combining accent, and characters SQL and templates care about."""
PLANES = "é中\U0001f9fe\U00020000\U0003134a\U000e0001\U000f0000\U0010fffd"
"""One character from the basic plane and from each of the supplementary planes in use."""
ODD_OFFSETS = [timedelta(hours=14), timedelta(hours=-12), timedelta(hours=5, minutes=45)]
ODD_OFFSETS += [timedelta(hours=-9, minutes=-30), timedelta(hours=12, minutes=45), timedelta(0)]
LARGEST_MONEY = Decimal("9999999999999999.99")
EXTREME_FLOATS = [1.7976931348623157e308, -1.7976931348623157e308, 5e-324, -0.0, 0.1 + 0.2]

_printable = st.characters(
    blacklist_categories=("Cs", "Cc"), blacklist_characters="\x00"
) | st.sampled_from(list(ESCAPES + PLANES))


def _text(max_size: int) -> st.SearchStrategy[str]:
    """Text a ShortText/LongText field accepts: 1..max_size characters once trimmed."""
    return st.text(_printable, min_size=1, max_size=max_size).filter(
        lambda s: 0 < len(s.strip()) <= max_size
    )


def _at_limit(max_size: int) -> st.SearchStrategy[str]:
    """Exactly ``max_size`` characters, none of them whitespace at the ends."""
    return st.text(_printable, min_size=1, max_size=8).map(
        lambda s: ((s.strip() or "x") * max_size)[:max_size].strip() or "x" * max_size
    )


@dataclass(frozen=True)
class Palette:
    short: str
    long: str
    label: str
    change_label: str
    person_id: str
    floats: tuple[float, ...]
    money: Decimal
    users: int
    earliest: datetime
    """1970-01-01T00:00:00Z, written in an odd offset."""
    latest: datetime
    """A few minutes ahead of the server clock: the last business time accepted."""
    score: int


def _instant(offset: timedelta, at: datetime) -> datetime:
    return at.astimezone(timezone(offset))


palettes = st.builds(
    Palette,
    short=_text(200) | _at_limit(200),
    long=_text(4000) | _at_limit(4000),
    label=_text(60),
    change_label=_text(60),
    person_id=st.text(string.ascii_letters + string.digits + "._@+:-", min_size=1, max_size=120),
    floats=st.lists(
        st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(EXTREME_FLOATS),
        min_size=1,
        max_size=8,
    ).map(tuple),
    money=st.decimals(min_value=0, max_value=LARGEST_MONEY, places=2) | st.just(LARGEST_MONEY),
    users=st.integers(1, 100_000_000),
    earliest=st.sampled_from(ODD_OFFSETS).map(lambda o: _instant(o, EARLIEST_BUSINESS_TIME)),
    latest=st.sampled_from(ODD_OFFSETS).map(
        lambda o: _instant(o, datetime.now(UTC) + timedelta(minutes=3))
    ),
    score=st.integers(1, 5),
).filter(lambda p: p.label.strip() != p.change_label.strip())  # labels name one version each

MAXIMAL = Palette(
    short=(("\\u0000" + PLANES + ESCAPES) * 10)[:200],
    long=('\\u0000\U0010fffd"\\\t' * 1000)[:4000],
    label="v\\u0000\U0001f9fe",
    change_label="v2\u2028",
    person_id="a" * 120,
    floats=tuple(EXTREME_FLOATS),
    money=LARGEST_MONEY,
    users=100_000_000,
    earliest=_instant(timedelta(hours=14), EARLIEST_BUSINESS_TIME),
    latest=datetime.now(UTC) + timedelta(minutes=3),
    score=5,
)


def _named(palette: Palette, count: int, prefix: str) -> list[dict[str, Any]]:
    """``count`` numbers by distinct names (the largest lists allowed are 200)."""
    floats = palette.floats
    return [
        {"name": f"{prefix}{i}-{palette.short[:150]}", "value": floats[i % len(floats)]}
        for i in range(count)
    ]


# --- driving everything ------------------------------------------------------------------------


def _person(palette: Palette, person_id: str) -> dict[str, Any]:
    return {"id": person_id, "name": palette.short, "team": palette.short[::-1].strip() or "x"}


def _every_command(services: Services, palette: Palette) -> str:
    """One use case through every command, each carrying the palette's values; its key."""
    journey = Journey(services.app)
    p = palette
    dimension = {"score": p.score, "rationale": p.long}
    journey.issue(c.RegisterUseCase, title=p.short, description=p.long, business_unit=p.short)
    journey.issue(c.ScorePriority, leverage=dimension, feasibility=dimension, readiness=dimension)
    journey.issue(c.AssignOwner, role="technical", person=_person(p, p.person_id))
    journey.issue(c.AssignOwner, role="business", person={**_person(p, BUSINESS["id"])})
    journey.issue(c.AssignOwner, role="monitoring", person=_person(p, p.person_id[:119] + "m"))
    steps = [
        {"description": p.short, "performedByRole": p.short, "handlesExceptions": i == 99}
        for i in range(100)
    ]
    escalation = [{**_person(p, f"{p.person_id[:100]}-{i}"), "team": f"ops {i}"} for i in range(20)]
    journey.issue(c.SpecifyWorkflow, workflow={"steps": steps, "escalationPath": escalation})
    criteria = [
        {"metric": f"m{i}", "comparator": ("gte", "lte", "gt", "lt")[i % 4], "threshold": t}
        for i, t in enumerate((p.floats * 50)[:50])
    ]
    journey.issue(
        c.DefineAcceptanceCriteria, criteria=criteria, approver=_person(p, APPROVER["id"])
    )
    for metric, at in (("early", p.earliest), ("late", p.latest)):
        journey.issue(
            c.CaptureBaseline,
            baseline={
                "metric": metric,
                "unit": p.short,
                "value": p.floats[0],
                "direction": "higher_is_better",
                "measuredAt": at,
                "method": p.long,
            },
        )
    version = {"label": p.label, "model": p.short, "prompt": p.long}
    version["thresholds"] = _named(p, 200, "t")  # type: ignore[assignment]
    journey.issue(c.RegisterCandidateVersion, version=version)
    for at in (p.earliest, p.latest):
        journey.issue(
            c.RecordEvaluation,
            version=p.label,
            results=_named(p, 200, "r"),
            evaluatedAt=at,
            harness=p.short,
            dataset=p.short,
        )
    journey.issue(c.ConfirmReadiness, item="cost_tracking", evidence=p.long,
                  monthlyBudget=str(p.money), currency="XTS")  # fmt: skip
    journey.reach(Stage.DEPLOYMENT)  # every gate, with plain values, on top of the above
    journey.satisfy(R.DEPLOYED)
    journey.issue(c.RecordDeployment, version=p.label, environment="staging", deployedAt=p.earliest)
    for at in (p.earliest, p.latest):
        journey.issue(c.RecordMeasurement, metric="early", value=p.floats[-1], measuredAt=at,
                      method=p.long)  # fmt: skip
        journey.issue(c.RecordAdoption, activeUsers=p.users, targetUsers=p.users, measuredAt=at)
    journey.issue(c.RecordInferenceCost, periodStart=p.earliest, periodEnd=p.latest,
                  amount=str(p.money), currency="XTS")  # fmt: skip
    journey.issue(c.StateValue, actor=BUSINESS_ACTOR, statement=p.long[:3980] + " valuable",
                  estimatedAnnualValue=str(p.money), currency="XTS")  # fmt: skip
    journey.issue(
        c.DefineScaleCriteria,
        criteria=[
            {"dimension": d, "target": p.short, "description": p.long}
            for d in ("volume", "geography", "user_population")
        ],
    )
    journey.issue(c.ConfirmScaleCriterion, dimension="geography", evidence=p.long)
    journey.issue(c.RaiseQualityAlert, alertId=p.short, severity="critical",
                  description=p.long, raisedAt=p.earliest)  # fmt: skip
    journey.issue(c.ResolveQualityAlert, alertId=p.short, resolution=p.long, resolvedAt=p.latest)
    change = {"label": p.change_label, "model": p.short, "prompt": p.long[::-1].strip() or "x"}
    journey.issue(c.RequestChange, toVersion=change, reason=p.long)
    journey.issue(c.RecordEvaluation, version=p.change_label, results=PASSING_RESULTS)
    journey.issue(c.ApproveChange, actor=APPROVER_ACTOR, changeNumber=1)
    journey.issue(c.RecordDeployment, version=p.change_label, deployedAt=p.latest)
    journey.issue(c.RollBack, reason=p.long, toVersion=p.label, rolledBackAt=p.latest)
    journey.issue(c.ReturnToStage, stage="pilot", reason=p.long)
    journey.issue(c.Retire, reason=p.long)
    return journey.key


def _attribute(text: str) -> str:
    """Text a CloudEvents attribute may hold: no control characters."""
    return "".join(ch for ch in text if ord(ch) >= 32 and ord(ch) != 127)


def _every_cloudevent(services: Services, palette: Palette) -> str:
    """Every CloudEvent type, with the palette's values, for one use case in production."""
    p = palette
    journey = Journey(services.app).register().reach(Stage.DEPLOYMENT)
    journey.satisfy(R.DEPLOYED)
    label = services.app.use_case(journey.key).state.sign_off.version  # type: ignore[union-attr]
    source = _attribute(f"https://{p.short[:100]}.example/ {p.short[-100:]}")
    kinds: list[tuple[str, dict[str, Any], datetime]] = [
        ("stagegate.evaluation.completed",
         {"version": label, "results": _named(p, 200, "e"), "harness": p.short}, p.earliest),
        ("stagegate.deployment.completed", {"version": label, "environment": "qa"}, p.earliest),
        ("stagegate.metric.measured",
         {"metric": "handling_minutes", "value": p.floats[0], "method": p.long}, p.latest),
        ("stagegate.adoption.measured",
         {"activeUsers": p.users, "targetUsers": p.users}, p.earliest),
        ("stagegate.cost.reported",
         {"periodStart": p.earliest.isoformat(), "amount": str(p.money), "currency": "XTS"},
         p.latest),
        ("stagegate.quality.alert_raised",
         {"alertId": p.short, "severity": "LOW", "description": p.long}, p.earliest),
        ("stagegate.quality.alert_resolved",
         {"alertId": p.short, "resolution": p.long}, p.latest),
        ("stagegate.deployment.rolled_back", {"reason": p.long}, p.latest),
    ]  # fmt: skip
    events = [
        read_event(
            {
                "specversion": "1.0",
                "id": _attribute(f"{p.short[:400]}-{uuid.uuid4()}"),
                "source": source,
                "type": kind,
                "subject": journey.key,
                "time": at.isoformat(),
                "data": data,
            }
        )
        for kind, data, at in kinds
    ]
    ingestion = Ingestion(
        services.app,
        DeliveryLog(services.database),
        refusal_record=lambda *record: DeliveryRecord(*record, None, None),
        after_writes=lambda: None,
    )
    outcomes = ingestion.ingest(events, Actor(id="monitor", role=Role.INTEGRATION), "corr")
    assert [o.status for o in outcomes] == [200] * len(kinds), [o.body for o in outcomes]
    return journey.key


# --- reading everything -------------------------------------------------------------------------

PERSON = "id name team"
VERSION = "label model prompt thresholds { name value }"
EVERYTHING = f"""
query Everything($key: String!) {{
  useCase(key: $key) {{
    key title description businessUnit stage stageSince version registeredAt registeredBy
    updatedAt productionVersion firstProductionDeploymentAt
    priority {{ leverage {{ score rationale }} feasibility {{ score rationale }}
                readiness {{ score rationale }} }}
    owners {{ business {{ {PERSON} }} technical {{ {PERSON} }} monitoring {{ {PERSON} }} }}
    workflow {{ steps {{ description performedByRole handlesExceptions }}
                escalationPath {{ {PERSON} }} }}
    acceptanceCriteria {{ metric comparator threshold }}
    approver {{ {PERSON} }}
    baselines {{ metric unit value direction measuredAt method }}
    candidateVersion {{ {VERSION} }}
    versions {{ {VERSION} }}
    evaluations {{ number version results {{ name value }} passed evaluatedAt harness dataset
                   outcomes {{ criterion {{ metric comparator threshold }} value met }} }}
    signOff {{ evaluationNumber version signedBy comment }}
    readiness {{ item evidence confirmedBy monthlyBudget currency }}
    deployments {{ version environment deployedAt changeNumber }}
    changes {{ number fromVersion toVersion components why requestedBy status approvedBy }}
    latestMeasurements {{ metric value measuredAt method }}
    latestAdoption {{ activeUsers targetUsers measuredAt rate }}
    valueStatement {{ statement statedBy estimatedAnnualValue currency }}
    scaleCriteria {{ criterion {{ dimension target description }}
                     confirmation {{ dimension evidence confirmedBy }} met }}
    openQualityAlerts {{ alertId severity description raisedAt }}
    gate {{ stage next unmet {{ code message }} policyVersion open }}
    history(first: 100) {{
      edges {{ cursor node {{ version type recordedAt businessTime actorId actorRole channel
                              reason correlationId source deliveryId corrects payload }} }}
      pageInfo {{ hasNextPage endCursor }}
    }}
    integrity {{ intact firstBadVersion reason headVersion headHash }}
  }}
  useCases(first: 100) {{ totalCount edges {{ node {{ key title version stage }} }} }}
  backlog(first: 100) {{ edges {{ rank node {{ key }} }} }}
  portfolio {{ stages {{ stage count }} deployed
               deployedWithMeasuredValue measuredValueShare
               valueAgainstCost {{ currency estimatedAnnualValue annualInferenceCost }} }}
}}
"""


@dataclass
class Reader:
    services: Services
    token: str

    def read(self, key: str) -> dict[str, Any]:
        with TestClient(build_api(self.services)) as client:
            response = client.post(
                "/graphql",
                json={"query": EVERYTHING, "variables": {"key": key}},
                headers={"Authorization": f"Bearer {self.token}"},
            )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert "errors" not in body, body["errors"]
        assert body["data"]["useCase"]["history"]["pageInfo"]["hasNextPage"] is False
        return body


@pytest.fixture
def reader(services: Services) -> Reader:
    token = services.tokens.issue("audrey.auditor@example.com", Role.AUDITOR).secret_token
    return Reader(services, token)


def _difference(a: Any, b: Any, path: str = "") -> str | None:
    """Where two reads first differ, and how (None when they are equal)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for name in sorted(set(a) | set(b)):
            found = _difference(a.get(name), b.get(name), f"{path}.{name}")
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            found = _difference(x, y, f"{path}[{i}]")
            if found:
                return found
        return None
    return None if a == b else f"{path}: {a!r:.300} != {b!r:.300}"


def _reads(services: Services, token: str, keys: list[str]) -> list[dict[str, Any]]:
    return [Reader(services, token).read(key) for key in keys]


@settings(
    max_examples=5,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@example(palette=MAXIMAL)
@given(palette=palettes)
def test_extreme_but_valid_values_survive_every_step(
    services: Services, reader: Reader, palette: Palette
) -> None:
    services.app.set_policy(
        c.SetPolicy.parse(
            {"minAdoption": 1.0, "measurementWindowDays": 3650, "reason": palette.long}
        ),
        ctx(ADMIN),
    )
    keys = [_every_command(services, palette), _every_cloudevent(services, palette)]
    services.read_models.catch_up()
    written = _reads(services, reader.token, keys)

    use_case = written[0]["data"]["useCase"]
    assert use_case["title"] == palette.short.strip()
    assert use_case["description"] == palette.long.strip()
    assert use_case["valueStatement"]["estimatedAnnualValue"] == str(palette.money)
    assert use_case["integrity"]["intact"] is True
    assert services.read_models.projection_faults() == (0, [])

    restarted = bootstrap(services.settings)
    try:
        assert restarted.read_models.catch_up() == 0
        after_restart = _reads(restarted, reader.token, keys)
        assert after_restart == written, _difference(after_restart, written)
        restarted.read_models.rebuild()
        assert restarted.read_models.projection_faults() == (0, [])
        after_rebuild = _reads(restarted, reader.token, keys)
        assert after_rebuild == written, _difference(after_rebuild, written)
        for key in keys:
            report = verify_chain(restarted.app, use_case_id(key))
            assert report.intact, (key, report.reason)
    finally:
        restarted.close()
