"""Acceptance 4 (issue 3): ``asOf`` for every version of 100 randomly driven use cases equals the
state the reference model had at that version.

The lifecycle state machine's command helpers (``UseCaseLifecycle``: each command checked
against ``tests.reference_model`` as it is issued) drive 100 use cases with seeded random
command sequences, interleaved on one shared server clock, so that policy changes made mid-way
fall between the versions of many use cases at once. After every accepted command the driver
keeps a copy of the reference model and the server time the event was recorded at.

Then, for every version ``v`` of every use case:

- ``Stagegate.use_case(key, version=v)`` has the model's state at ``v`` (stage, stage since,
  owners, approver, candidate, production version, first production deployment, baselines,
  readiness, open alerts, scale criteria and confirmations, who stated value) and its gate,
  judged under the policy in force when ``v`` was recorded, names exactly the model's unmet
  requirements under that policy;
- over GraphQL, ``useCase(key) { asOf(version: v) }`` and ``asOf(at: <recorded time of v>)``
  answer the same, with ``gate.policyVersion`` the policy version in force then.

A policy change moves the minimum priority score, the minimum adoption and the measurement
window, so the same state is judged differently before and after it; the test checks that this
happened (a version whose gate differs under the policy of the day and the policy of today).
"""

from __future__ import annotations

import copy
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from domain import commands as c
from domain.application import Stagegate
from domain.clock import clock_set_to
from domain.gates import gate_status
from domain.policy import PolicyInForce
from domain.state import UseCaseState
from domain.values import Role
from infra.bootstrap import Services
from infra.web import build_api
from tests import reference_model as m
from tests.builders import (
    ADMIN,
    AUDITOR,
    EDITOR,
    NOW,
    VIEWER,
    ctx,
    unique_key,
)
from tests.integration.test_lifecycle_state_machine import (
    ADVANCERS,
    ALERT_IDS,
    BASELINE_METRICS,
    CRITERIA_SETS,
    PEOPLE,
    READINESS,
    RESULTS,
    SCALE_DIMENSIONS,
    SEND_TO,
    SIGNERS,
    STAGE_NAMES,
    VALUE_STATERS,
    UseCaseLifecycle,
)

SEED = 20260504
USE_CASES = {"sqlite": 100, "postgres": 25}
"""100 is the requirement (SQLite); PostgreSQL drives fewer to keep the run short."""
RULES_PER_USE_CASE = (5, 20)
START = NOW - timedelta(days=365 * 15)
"""The shared clock starts far back: measurement windows are waited out on it for every use
case, and it must never reach the real clock (business times may not be in the future)."""
GRAPHQL_BATCH = 10
"""asOf versions per GraphQL request (each asked by version and by time: 20 aliases)."""
GRAPHQL_SAMPLE = (
    None
    if os.environ.get("STAGEGATE_AS_OF_GRAPHQL") == "all"
    else int(os.environ.get("STAGEGATE_AS_OF_GRAPHQL", "6"))
)
"""Versions per use case asked over GraphQL (the domain path checks every one)."""

STARTS = (m.PROPOSED, m.PILOT, m.ACCEPTANCE, m.DEPLOYMENT, m.DEPLOYMENT, m.MEASUREMENT)
STARTS += (m.MEASUREMENT, m.SCALE)
POLICIES = (
    # (measurement window days, minimum adoption, minimum priority score)
    (30, 0.2, 1),
    (90, 0.8, 3),
    (60, 0.5, 3),
    (90, 0.2, 2),
    (30, 0.8, 1),
)


# --- the shared clock and the policy timeline ---------------------------------------------


@dataclass
class SharedClock:
    now: datetime


@dataclass
class PolicyTimeline:
    """Every policy the organisation had, with the server time it came into force."""

    changes: list[tuple[datetime, PolicyInForce]] = field(default_factory=list)

    def at(self, moment: datetime) -> PolicyInForce:
        policy = PolicyInForce.default()
        for recorded_at, changed in self.changes:
            if recorded_at <= moment:
                policy = changed
        return policy


def model_policy(policy: PolicyInForce) -> m.Policy:
    values = policy.values
    return m.Policy(
        measurement_window_days=values.measurement_window_days,
        min_adoption=values.min_adoption,
        min_priority_score=values.min_priority_score,
    )


class TimedModel(m.UseCaseModel):
    """The reference model, also remembering when its current stage was entered."""

    stage_since: datetime | None = None

    def _enter(self, stage: str, at: datetime) -> None:
        super()._enter(stage, at)
        self.stage_since = at


@dataclass(frozen=True)
class Snapshot:
    recorded_at: datetime
    model: TimedModel


class AsOfDriver(UseCaseLifecycle):
    """The lifecycle machine's command helpers on a clock shared by every use case, keeping the
    reference model as it stood after each accepted command."""

    def __init__(self, app: Stagegate, clock: SharedClock) -> None:
        self._clock = clock
        self._built = False
        super().__init__(app)  # sets the machine's own clock, which the setter ignores
        self._built = True
        self.model = TimedModel()
        self.key = unique_key("asof")
        self.snapshots: dict[int, Snapshot] = {}

    @property  # type: ignore[override]
    def now(self) -> datetime:
        return self._clock.now

    @now.setter
    def now(self, value: datetime) -> None:
        if self._built:
            assert value >= self._clock.now, "the shared clock only moves forward"
            self._clock.now = value

    def _issue(
        self,
        command: type[c.UseCaseCommand],
        fields: dict[str, Any],
        actor: Any,
        expected: m.Expectation,
        expected_version: int | None = None,
    ) -> Any:
        at = self.now
        result = super()._issue(command, fields, actor, expected, expected_version)
        if result is not None:
            self.snapshots[result.version] = Snapshot(at, copy.deepcopy(self.model))
        return result

    def keep_latest_snapshot(self) -> None:
        """Raising an alert without an id teaches the model the id the server chose after the
        command: the latest version's copy is taken again once that rule is done."""
        assert self.current is not None
        version = self.current.version
        self.snapshots[version] = Snapshot(
            self.snapshots[version].recorded_at, copy.deepcopy(self.model)
        )

    def register(self, start: str) -> None:  # type: ignore[override]
        """Register under the policy in force (unlike the machine, never resetting it) and
        bring the use case to ``start`` through every gate."""
        at = self.now
        fields = {"key": self.key, "title": "Invoice triage", "business_unit": "Finance"}
        self.current = self.execute(c.RegisterUseCase.parse(fields), EDITOR)
        self.model.stage_since = at
        self.snapshots[1] = Snapshot(at, copy.deepcopy(self.model))
        for _ in range(len(m.FORWARD) * 2):
            if self.model.stage == start:
                break
            self.progress_through_gate()
        assert self.model.stage == start, f"could not bring {self.key} to {start}"


# --- seeded random rules (the machine's rules, with arguments drawn as its strategies do) -


def _rules(rng: random.Random) -> list[tuple[int, str, Callable[[AsOfDriver], dict[str, Any]]]]:
    pick = rng.choice
    return [
        (30, "progress_one_requirement", lambda d: {"pick": rng.randint(0, 4)}),
        (8, "progress_to_next_stage", lambda d: {}),
        (
            4,
            "advance_stage",
            lambda d: {"actor": pick(ADVANCERS), "to": pick([None, None, "next", *STAGE_NAMES])},
        ),
        (
            2,
            "score_priority",
            lambda d: {"scores": (rng.randint(1, 5), rng.randint(1, 5), rng.randint(1, 5))},
        ),
        (
            3,
            "assign_owner",
            lambda d: {
                "role": pick(["business", "technical", "monitoring"]),
                "who": pick(sorted(PEOPLE)),
            },
        ),
        (
            2,
            "specify_workflow",
            lambda d: {
                "exception_step": rng.random() < 0.5,
                "first_responder": pick([None, *sorted(PEOPLE)]),
            },
        ),
        (
            2,
            "define_acceptance_criteria",
            lambda d: {"which": pick(sorted(CRITERIA_SETS)), "approver": pick(sorted(PEOPLE))},
        ),
        (1, "capture_baseline", lambda d: {"metric": pick(BASELINE_METRICS)}),
        (1, "register_candidate_version", lambda d: {"label": pick(["v1", "v2", "v3"])}),
        (
            2,
            "record_evaluation",
            lambda d: {
                "version": pick(["candidate", "v1", "v2", "v3", "v9"]),
                "results": pick(sorted(RESULTS)),
            },
        ),
        (
            2,
            "sign_off_acceptance",
            lambda d: {"signer": pick(SIGNERS), "evaluation_number": pick([None, 1, 2, 3, 6])},
        ),
        (2, "confirm_readiness", lambda d: {"item": pick(READINESS)}),
        (
            3,
            "record_deployment",
            lambda d: {
                "version": pick(["signed-off", "signed-off", "candidate", "v1", "v2", "v9"]),
                "environment": pick(["production", "production", "staging"]),
                "when": pick(["now", "now", "a day before the gate"]),
            },
        ),
        (1, "roll_back_production", lambda d: {"to": pick(["unchecked", "previous", "v9"])}),
        (
            2,
            "record_measurement",
            lambda d: {
                "metric": pick([*BASELINE_METRICS, "throughput"]),
                "days_before_now": pick([0, 0, 1, 30]),
                "value": pick([5.0, 5.0, 12.0, 13.0]),  # better, level, worse than 12
            },
        ),
        (
            1,
            "record_measurement_at_the_window",
            lambda d: {
                "metric": pick(BASELINE_METRICS),
                "seconds_after_window": pick([-1, 0, 0, 1]),
            },
        ),
        (
            3,
            "record_adoption",
            lambda d: {
                "users": pick([(40, 50), (25, 50), (10, 50), (0, 10), (9, 10)]),
                "days_before_now": pick([20, 5, 1, 0, 0]),
            },
        ),
        (2, "state_value_statement", lambda d: {"actor": pick(VALUE_STATERS)}),
        (
            1,
            "define_scale_criteria",
            lambda d: {"dimensions": frozenset(rng.sample(SCALE_DIMENSIONS, rng.randint(1, 3)))},
        ),
        (2, "confirm_scale_criterion", lambda d: {"dimension": pick(SCALE_DIMENSIONS)}),
        (2, "raise_quality_alert", lambda d: {"alert_id": pick([None, *ALERT_IDS])}),
        (
            2,
            "resolve_quality_alert",
            lambda d: {
                "alert_id": pick(["first open", "first open", *ALERT_IDS]),
                "when": pick(["now", "now", "before it was raised"]),
            },
        ),
        (2, "return_or_retire", lambda d: {"where": pick(SEND_TO)}),
        (1, "retire", lambda d: {}),
        (
            1,
            "send_back_for_a_new_version",
            lambda d: {
                "where": pick([m.ACCEPTANCE, m.ACCEPTANCE, m.PILOT]),
                "label": pick(["v2", "v3", "v4"]),
            },
        ),
        (
            1,
            "command_from_a_reader",
            lambda d: {
                "actor": pick([VIEWER, AUDITOR]),
                "which": pick(["score", "advance", "retire", "adoption"]),
            },
        ),
    ]


@dataclass
class Portfolio:
    drivers: list[AsOfDriver]
    policies: PolicyTimeline
    clock: SharedClock


def drive(app: Stagegate, count: int, seed: int, start: datetime = START) -> Portfolio:
    """``count`` use cases, each registered at a random start and then given random rules, all
    interleaved on one clock; the policy changes at about a third and two thirds of the way."""
    rng = random.Random(seed)
    clock = SharedClock(start)
    policies = PolicyTimeline()
    drivers = [AsOfDriver(app, clock) for _ in range(count)]
    budgets = {id(d): rng.randint(*RULES_PER_USE_CASE) for d in drivers}
    rules = _rules(rng)
    weights = [w for w, _, _ in rules]
    total = sum(budgets.values()) + count
    policy_steps = {total // 3, 2 * total // 3, rng.randint(1, total - 1)}
    pending = list(drivers)
    step = 0

    def set_policy() -> None:
        now = policies.at(clock.now).values
        in_force = (now.measurement_window_days, now.min_adoption, now.min_priority_score)
        candidates = [p for p in POLICIES if p != in_force]
        window, adoption, score = rng.choice(candidates)
        fields = {
            "measurement_window_days": window,
            "min_adoption": adoption,
            "min_priority_score": score,
            "reason": "Quarterly policy review.",
        }
        at = clock.now
        with clock_set_to(lambda: at):
            changed = app.set_policy(c.SetPolicy.parse(fields), ctx(ADMIN))
        clock.now = at + timedelta(minutes=1)
        policies.changes.append((at, changed))
        for d in drivers:
            d.model.policy = model_policy(changed)

    while pending:
        step += 1
        if step in policy_steps:
            set_policy()
        if rng.random() < 0.01:
            clock.now += timedelta(days=rng.choice([1, 7, 30]))
        driver = rng.choice(pending)
        if driver.current is None:
            driver.register(rng.choice(STARTS))
        else:
            _, name, arguments = rng.choices(rules, weights)[0]
            getattr(driver, name)(**arguments(driver))
            if name == "raise_quality_alert":
                driver.keep_latest_snapshot()
            budgets[id(driver)] -= 1
            if budgets[id(driver)] <= 0:
                pending.remove(driver)
    assert clock.now < NOW - timedelta(days=1), "the shared clock ran into the real one"
    assert len(policies.changes) >= 2
    return Portfolio(drivers, policies, clock)


# --- what is compared ---------------------------------------------------------------------


def expected_view(snapshot: Snapshot, policy: PolicyInForce) -> dict[str, Any]:
    """What the reference model says the use case was at that version, under ``policy``."""
    model = copy.deepcopy(snapshot.model)
    model.policy = model_policy(policy)
    return {
        "stage": model.stage,
        "stage_since": model.stage_since,
        "owners": {role: p.id for role, p in model.owners.items()},
        "approver": model.approver.id if model.approver else None,
        "candidate": model.candidate,
        "production": model.production,
        "first_production_deployment": model.first_production_deployment,
        "baselines": sorted(model.baselines),
        "readiness": sorted(model.readiness),
        "open_alerts": sorted(a for a, alert in model.alerts.items() if alert.open),
        "scale_criteria": sorted(model.scale_criteria),
        "scale_confirmed": sorted(model.scale_confirmed),
        "value_stated_by": model.value_stated_by,
        "gate_next": model.next_stage,
        "unmet": sorted(model.unmet(snapshot.recorded_at)),
    }


def domain_view(state: UseCaseState, policy: PolicyInForce, at: datetime) -> dict[str, Any]:
    gate = gate_status(state, policy, at)
    statement = state.value_statement
    return {
        "stage": state.stage.value,
        "stage_since": state.stage_since,
        "owners": {role.value: p.id for role, p in state.owners.items()},
        "approver": state.approver.id if state.approver else None,
        "candidate": state.candidate_version,
        "production": state.production_version,
        "first_production_deployment": state.first_production_deployment_at,
        "baselines": sorted(state.baselines),
        "readiness": sorted(i.value for i in state.readiness),
        "open_alerts": sorted(state.open_quality_alerts),
        "scale_criteria": sorted(d.value for d in state.scale_criteria),
        "scale_confirmed": sorted(d.value for d in state.scale_confirmations),
        "value_stated_by": statement.stated_by if statement else None,
        "gate_next": gate.next.value if gate.next else None,
        "unmet": sorted(r.code.value for r in gate.unmet),
    }


AS_OF_SELECTION = """
  version stage stageSince updatedAt
  owners { business { id } technical { id } monitoring { id } }
  approver { id } candidateVersion { label } productionVersion firstProductionDeploymentAt
  baselines { metric } readiness { item } openQualityAlerts { alertId }
  scaleCriteria { criterion { dimension } met } valueStatement { statedBy }
  gate { next unmet { code } policyVersion }
"""


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def graphql_view(node: dict[str, Any]) -> dict[str, Any]:
    owners = {role: p["id"] for role, p in node["owners"].items() if p is not None}
    criteria = node["scaleCriteria"]
    gate = node["gate"]
    return {
        "stage": node["stage"].lower(),
        "stage_since": _time(node["stageSince"]),
        "owners": owners,
        "approver": node["approver"]["id"] if node["approver"] else None,
        "candidate": node["candidateVersion"]["label"] if node["candidateVersion"] else None,
        "production": node["productionVersion"],
        "first_production_deployment": _time(node["firstProductionDeploymentAt"]),
        "baselines": sorted(b["metric"] for b in node["baselines"]),
        "readiness": sorted(r["item"].lower() for r in node["readiness"]),
        "open_alerts": sorted(a["alertId"] for a in node["openQualityAlerts"]),
        "scale_criteria": sorted(s["criterion"]["dimension"].lower() for s in criteria),
        "scale_confirmed": sorted(
            s["criterion"]["dimension"].lower() for s in criteria if s["met"]
        ),
        "value_stated_by": node["valueStatement"]["statedBy"] if node["valueStatement"] else None,
        "gate_next": gate["next"].lower() if gate["next"] else None,
        "unmet": sorted(r["code"] for r in gate["unmet"]),
    }


def differences(actual: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    return {
        k: {"actual": actual[k], "model": expected[k]} for k in expected if actual[k] != expected[k]
    }


# --- the GraphQL client -------------------------------------------------------------------


@pytest.fixture
def graphql(services: Services) -> Iterator[Callable[[str, dict[str, Any]], dict[str, Any]]]:
    """POST /graphql to the production app in process, as an auditor."""
    token = services.tokens.issue(AUDITOR.id, Role.AUDITOR).secret_token
    with TestClient(build_api(services)) as client:

        def post(query: str, variables: dict[str, Any]) -> dict[str, Any]:
            response = client.post(
                "/graphql",
                json={"query": query, "variables": variables},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            assert "errors" not in body, body["errors"]
            return body["data"]

        yield post


def as_of_query(arguments: list[str]) -> str:
    """One request asking the use case ``$key`` for several ``asOf`` (aliases ``a0``...)."""
    fields = "\n".join(f"a{i}: asOf({a}) {{ {AS_OF_SELECTION} }}" for i, a in enumerate(arguments))
    return f"query AsOf($key: String!) {{ useCase(key: $key) {{ version\n{fields} }} }}"


def graphql_sample(driver: AsOfDriver, policies: PolicyTimeline, rng: random.Random) -> list[int]:
    """The versions asked over GraphQL: the first, the latest, the last one before and the
    first one after each policy change, and random others up to ``GRAPHQL_SAMPLE``."""
    versions = sorted(driver.snapshots)
    if GRAPHQL_SAMPLE is None:
        return versions
    chosen = {versions[0], versions[-1]}
    for changed_at, _ in policies.changes:
        before = [v for v in versions if driver.snapshots[v].recorded_at < changed_at]
        after = [v for v in versions if driver.snapshots[v].recorded_at > changed_at]
        chosen |= {before[-1]} if before else set()
        chosen |= {after[0]} if after else set()
    others = [v for v in versions if v not in chosen]
    chosen |= set(rng.sample(others, min(len(others), max(0, GRAPHQL_SAMPLE - len(chosen)))))
    return sorted(chosen)


def _store(services: Services) -> str:
    return "postgres" if services.settings.is_postgres else "sqlite"


# --- the tests ----------------------------------------------------------------------------


def test_as_of_every_version_equals_the_reference_model(
    services: Services, graphql: Callable[[str, dict[str, Any]], dict[str, Any]]
) -> None:
    started = time.monotonic()
    app = services.app
    portfolio = drive(app, USE_CASES[_store(services)], SEED)
    driven = time.monotonic()
    policies = portfolio.policies
    versions_checked = 0
    judged_by_an_older_policy = 0
    stages_seen: set[str] = set()

    # The domain: every version of every use case.
    for driver in portfolio.drivers:
        assert driver.current is not None
        latest = driver.current.version
        assert sorted(driver.snapshots) == list(range(1, latest + 1)), (
            f"{driver.key}: the driver did not keep the model at every version"
        )
        assert latest == driver.model.events
        for version, snapshot in sorted(driver.snapshots.items()):
            then = app.use_case(driver.key, version=version)
            assert then.version == version
            assert then.modified_on == snapshot.recorded_at, (
                f"{driver.key} v{version} recorded at {then.modified_on}, "
                f"the driver's clock said {snapshot.recorded_at}"
            )
            policy = policies.at(snapshot.recorded_at)
            expected = expected_view(snapshot, policy)
            actual = domain_view(then.state, policy, then.modified_on)
            assert actual == expected, f"{driver.key} v{version}: {differences(actual, expected)}"
            if expected["unmet"] != expected_view(snapshot, app.policy())["unmet"]:
                judged_by_an_older_policy += 1
            stages_seen.add(expected["stage"])
            versions_checked += 1

    # The workload was worth checking: every stage occurred, and the policy mattered.
    missing = set(STAGE_NAMES) - stages_seen
    assert not missing, f"stages the workload never reached: {missing}"
    assert judged_by_an_older_policy > 0, "no version's gate depends on the policy of its day"

    # GraphQL: asOf(version) and asOf(at) for a sample of each use case's versions (all of
    # them with STAGEGATE_AS_OF_GRAPHQL=all), a few requests of aliased fields per use case.
    services.read_models.catch_up()  # writes above went around the API (a server's thread would)
    sampler = random.Random(SEED + 1)
    graphql_checked = 0
    for driver in portfolio.drivers:
        assert driver.current is not None
        wanted = graphql_sample(driver, policies, sampler)
        items = [(v, driver.snapshots[v]) for v in wanted]
        for start in range(0, len(items), GRAPHQL_BATCH):
            batch = items[start : start + GRAPHQL_BATCH]
            arguments = [f"version: {v}" for v, _ in batch]
            arguments += [f'at: "{s.recorded_at.isoformat()}"' for _, s in batch]
            answers = graphql(as_of_query(arguments), {"key": driver.key})["useCase"]
            assert answers["version"] == driver.current.version
            for i, (version, snapshot) in enumerate(batch):
                policy = policies.at(snapshot.recorded_at)
                expected = expected_view(snapshot, policy)
                for how, node in (
                    (f"asOf(version: {version})", answers[f"a{i}"]),
                    (f"asOf(at: v{version}'s time)", answers[f"a{i + len(batch)}"]),
                ):
                    assert node is not None, f"{driver.key} {how} is null"
                    assert node["version"] == version, f"{driver.key} {how}: {node['version']}"
                    assert _time(node["updatedAt"]) == snapshot.recorded_at
                    actual = graphql_view(node)
                    assert actual == expected, (
                        f"{driver.key} {how}: {differences(actual, expected)}"
                    )
                    assert node["gate"]["policyVersion"] == policy.version, (
                        f"{driver.key} {how} judged under policy v"
                        f"{node['gate']['policyVersion']}, in force then: v{policy.version}"
                    )
                    graphql_checked += 1
    finished = time.monotonic()
    print(
        f"\n{_store(services)}: {len(portfolio.drivers)} use cases, {versions_checked} versions,"
        f" {graphql_checked} asOf over GraphQL; driving {driven - started:.1f}s,"
        f" checking {finished - driven:.1f}s"
    )


def test_as_of_an_instant_after_a_policy_change_judges_by_the_policy_then(
    services: Services, graphql: Callable[[str, dict[str, Any]], dict[str, Any]]
) -> None:
    """Between a use case's last event and the instant asked about, the policy changed: the
    gate as it stood at that instant is judged by the policy in force at that instant (the one
    ``useCase(key).gate`` and the summaries showed then), not by the one of the last event."""
    app = services.app
    at = START
    key = unique_key("asof-policy")

    def run(command: type[c.Command], actor: Any = EDITOR, **fields: Any) -> None:
        nonlocal at
        at += timedelta(minutes=1)
        moment = at
        with clock_set_to(lambda: moment):
            if command is c.SetPolicy:
                app.set_policy(c.SetPolicy.parse(fields), ctx(actor))
            else:
                app.execute(command.parse({"key": key, **fields}), ctx(actor))

    run(c.RegisterUseCase, title="Invoice triage")
    run(
        c.ScorePriority,
        leverage={"score": 5, "rationale": "r"},
        feasibility={"score": 5, "rationale": "r"},
        readiness={"score": 2, "rationale": "r"},
    )
    scored_at = at
    run(c.SetPolicy, actor=ADMIN, min_priority_score=3, reason="Stricter intake.")
    policy_changed_at = at
    services.read_models.catch_up()
    query = as_of_query(
        [
            f'at: "{(scored_at + timedelta(seconds=30)).isoformat()}"',
            f'at: "{(policy_changed_at + timedelta(seconds=30)).isoformat()}"',
            "version: 2",
        ]
    )
    answers = graphql(query, {"key": key})["useCase"]
    before, after, version_2 = answers["a0"], answers["a1"], answers["a2"]
    # Just after scoring, under the default policy, the scores were enough.
    assert before["version"] == 2
    assert "PRIORITY_SCORED" not in {r["code"] for r in before["gate"]["unmet"]}
    assert before["gate"]["policyVersion"] == 0
    # Version 2 was recorded under the default policy: that is its verdict.
    assert version_2["gate"]["policyVersion"] == 0
    # After the policy change nothing happened to the use case, but its gate then was judged
    # by the new minimum score (a readiness of 2 is below 3).
    assert after["version"] == 2
    assert after["gate"]["policyVersion"] == 1, (
        "asOf(at:) after a policy change judged the gate under the policy of the use case's "
        f"last event (v{after['gate']['policyVersion']}), not the one in force at that instant"
    )
    assert "PRIORITY_SCORED" in {r["code"] for r in after["gate"]["unmet"]}


def test_as_of_is_not_confused_by_another_use_case_with_the_same_times(
    services: Services, graphql: Callable[[str, dict[str, Any]], dict[str, Any]]
) -> None:
    """asOf(at:) counts only the asked use case's events, not others recorded meanwhile."""
    app = services.app
    one, other = unique_key("asof-one"), unique_key("asof-other")
    at = START

    def run(key: str, command: type[c.Command], actor: Any = EDITOR, **fields: Any) -> None:
        nonlocal at
        at += timedelta(minutes=1)
        moment = at
        with clock_set_to(lambda: moment):
            app.execute(command.parse({"key": key, **fields}), ctx(actor))

    run(one, c.RegisterUseCase, title="One")
    run(other, c.RegisterUseCase, title="Other")
    for _ in range(3):
        run(other, c.ConfirmReadiness, item="rollback_plan", evidence="runbook")
    registered_one = START + timedelta(minutes=1)
    run(one, c.ConfirmReadiness, item="rollback_plan", evidence="runbook")
    services.read_models.catch_up()
    answers = graphql(
        as_of_query(
            [
                f'at: "{(registered_one - timedelta(seconds=1)).isoformat()}"',
                f'at: "{registered_one.isoformat()}"',
                f'at: "{(at - timedelta(seconds=1)).isoformat()}"',
                f'at: "{at.isoformat()}"',
            ]
        ),
        {"key": one},
    )["useCase"]
    assert answers["a0"] is None
    assert answers["a1"]["version"] == 1
    assert answers["a2"]["version"] == 1
    assert answers["a3"]["version"] == 2
