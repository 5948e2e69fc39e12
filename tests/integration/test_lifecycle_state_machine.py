"""Acceptance 3: random command sequences agree with a plain reference model, on every store.

A Hypothesis state machine issues the lifecycle's commands, as the people who would issue them,
through ``Stagegate.execute`` on SQLite and on PostgreSQL, and compares every outcome with
``tests.reference_model`` (written from the specification, not from the domain code). After
every step:

- the stage moved only through an accepted advance (whose gate the model found satisfied), an
  accepted return or an accepted retirement;
- ``version`` equals the number of stored events, and the model's count of accepted commands;
- the use case reloaded from the store (through the latest snapshot, and by replaying every
  event) equals the one in memory;
- the gate status ("what blocks this use case now") names exactly the model's unmet codes;
- a refused command left version, state and stored events unchanged;
- the recorded evidence (owners, versions, production, alerts...) is what the model recorded.

Each use case lives on its own server clock (``domain.clock``), starting a year ago and moving a
minute per command and by days when a rule lets time pass, so measurement windows can elapse;
business times are chosen relative to it and never pass the real clock.

Snapshots are taken every 10 events here, so reloads cross snapshots. Budget for a local hunt:
``STAGEGATE_LIFECYCLE_EXAMPLES=400 STAGEGATE_LIFECYCLE_STEPS=80 pytest tests/integration -k
state_machine`` (about 6 minutes on SQLite, 8 on PostgreSQL).
"""

from __future__ import annotations

import contextlib
import copy
import os
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from eventsourcing.application import project_aggregate
from hypothesis import HealthCheck, note, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from domain import commands as c
from domain.application import Stagegate
from domain.clock import clock_set_to
from domain.errors import DomainError, Forbidden, GateBlocked, RuleViolated, VersionConflict
from domain.metadata import Actor
from domain.policy import PolicyValues
from domain.usecase import UseCase
from domain.values import Role
from infra.bootstrap import Services
from tests import reference_model as m
from tests.builders import (
    ADMIN,
    AI_COLLEAGUE,
    APPROVER,
    APPROVER_ACTOR,
    AUDITOR,
    BUSINESS,
    BUSINESS_ACTOR,
    CRITERIA,
    EDITOR,
    FAILING_RESULTS,
    MONITOR,
    NOW,
    PASSING_RESULTS,
    TECH,
    VIEWER,
    ctx,
    days_ago,
    last_month,
    next_month,
    unique_key,
)

START = days_ago(365)
LATEST = NOW - timedelta(minutes=10)
"""The server clock never passes the real one: business times must not be in the future."""

MACHINE_SETTINGS = settings(
    max_examples=int(os.environ.get("STAGEGATE_LIFECYCLE_EXAMPLES", "50")),
    stateful_step_count=int(os.environ.get("STAGEGATE_LIFECYCLE_STEPS", "50")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

# --- people and what they send ------------------------------------------------------------

PEOPLE = {"tech": TECH, "colleague": AI_COLLEAGUE, "business": BUSINESS}
PEOPLE |= {"approver": APPROVER, "monitor": MONITOR}
TECH_ACTOR = Actor(id=TECH["id"], role=Role.EDITOR)
COLLEAGUE_EDITOR = Actor(id=AI_COLLEAGUE["id"], role=Role.EDITOR)
COLLEAGUE_APPROVER = Actor(id=AI_COLLEAGUE["id"], role=Role.APPROVER)
SIGNERS = (APPROVER_ACTOR, COLLEAGUE_APPROVER, ADMIN, EDITOR)
VALUE_STATERS = (BUSINESS_ACTOR, TECH_ACTOR, COLLEAGUE_EDITOR, EDITOR)
ADVANCERS = (EDITOR, BUSINESS_ACTOR, ADMIN)

CRITERIA_SETS: dict[str, list[dict[str, Any]]] = {
    "standard": CRITERIA,  # accuracy >= 0.9, latency_s <= 2.0
    "strict": [{"metric": "accuracy", "comparator": "gt", "threshold": 0.95}],
    "recall": [
        {"metric": "recall", "comparator": "gte", "threshold": 0.7},
        {"metric": "latency_s", "comparator": "lt", "threshold": 1.0},
    ],
}
RESULTS: dict[str, list[dict[str, Any]]] = {
    "passing": PASSING_RESULTS,
    "failing": FAILING_RESULTS,
    "excellent": [
        {"name": "accuracy", "value": 0.99},
        {"name": "latency_s", "value": 0.5},
        {"name": "recall", "value": 0.8},
    ],
    # On every threshold: meets >= and <=, misses > and <.
    "borderline": [
        {"name": "accuracy", "value": 0.95},
        {"name": "latency_s", "value": 1.0},
        {"name": "recall", "value": 0.7},
    ],
    "accuracy only": [{"name": "accuracy", "value": 0.99}],
}
BASELINE_METRICS = ("handling_minutes", "error_rate")
READINESS = sorted(m.READINESS_ITEMS)
SCALE_DIMENSIONS = ("volume", "geography", "user_population")
ALERT_IDS = ("alert-1", "alert-2", "drift")
STAGE_NAMES = (*m.FORWARD, m.RETIRED)
STAGE_COMMANDS = (c.AdvanceStage, c.ReturnToStage, c.Retire)
# Where a use case is sent, weighted towards the realistic moves; "retire" retires it.
SEND_TO = (*[m.PILOT, m.ACCEPTANCE, m.DEPLOYMENT] * 2, m.MEASUREMENT, m.PROPOSED, m.SCALE)
SEND_TO += (m.RETIRED, "retire")


def say(text: str) -> None:
    """A note in Hypothesis' report of a failing example; nothing when replayed by hand."""
    with contextlib.suppress(InvalidArgument):
        note(text)


def person(wire: dict[str, str]) -> m.Person:
    return m.Person(wire["id"], wire.get("team"))


def caller(actor: Actor) -> m.Caller:
    return m.Caller(actor.id, actor.role.value)


def criteria_of(wire: list[dict[str, Any]]) -> tuple[m.Criterion, ...]:
    return tuple(m.Criterion(x["metric"], x["comparator"], x["threshold"]) for x in wire)


def refusal_of(error: DomainError) -> m.Refusal:
    if isinstance(error, GateBlocked):
        return m.Refusal("gate", unmet=frozenset(r.code.value for r in error.unmet))
    if isinstance(error, RuleViolated):
        return m.rule(error.code.value)
    if isinstance(error, Forbidden):
        return m.FORBIDDEN
    if isinstance(error, VersionConflict):
        return m.CONFLICT
    raise error  # NotFound or ValidationFailed: the machine itself sent something wrong


class UseCaseLifecycle(RuleBasedStateMachine):
    """One fresh use case per example, driven by random commands, checked against the model."""

    def __init__(self, app: Stagegate) -> None:
        super().__init__()
        self.app = app
        self.key = unique_key("sm")
        self.model = m.UseCaseModel()
        self.current: UseCase | None = None
        """The aggregate as the last accepted command left it in memory."""
        self.now = START
        """The server clock: the time the next command is recorded at."""

    def wait(self, duration: timedelta) -> None:
        self.now = min(self.now + duration, LATEST)

    def execute(self, command: c.Command, actor: Actor) -> UseCase:
        """Run ``command`` recorded at ``self.now``, then let a minute pass."""
        at = self.now
        try:
            with clock_set_to(lambda: at):
                return self.app.execute(command, ctx(actor))
        finally:
            self.wait(timedelta(minutes=1))

    # --- issuing and comparing ------------------------------------------------------------

    def _issue(
        self,
        command: type[c.UseCaseCommand],
        fields: dict[str, Any],
        actor: Actor,
        expected: m.Expectation,
        expected_version: int | None = None,
    ) -> UseCase | None:
        """Run one command and check its outcome against ``expected`` (the model's answer)."""
        before = self.current
        assert before is not None
        wire = {"key": self.key, **fields}
        if expected_version is not None:
            wire["expected_version"] = expected_version
        what = f"{command.__name__}({fields}) as {actor.id} [{actor.role.value}]"
        try:
            result = self.execute(command.parse(wire), actor)
        except DomainError as error:
            self._check_refusal(what, before, refusal_of(error), error.message, expected)
            return None
        say(f"v{before.version} {what}: accepted")
        assert expected.accepted, f"{what} was accepted; the model expects it {expected}"
        assert result.version == before.version + 1, f"{what} did not append exactly one event"
        if command not in STAGE_COMMANDS:
            assert result.state.stage is before.state.stage, f"{what} moved the stage"
        self.current = result
        return result

    def _check_refusal(
        self,
        what: str,
        before: UseCase,
        refusal: m.Refusal,
        message: str,
        expected: m.Expectation,
    ) -> None:
        say(f"v{before.version} {what}: refused {refusal}")
        assert not expected.accepted, (
            f"{what} was refused with {refusal} ({message}); the model expects it to be "
            f"accepted in stage {self.model.stage}"
        )
        assert refusal in expected.refusals, (
            f"{what} was refused with {refusal} ({message}); the model expects {expected}"
        )
        after = self.app.use_case(self.key)
        assert after.version == before.version, f"refused {what} changed the version"
        assert after == before, f"refused {what} changed the use case"
        stored = len(list(self.app.events.get(before.id)))
        assert stored == before.version, f"refused {what} appended to the store"

    def _as_stale(self, expectation_of: Any) -> m.Expectation:
        """What the model expects of a command without letting it record anything."""
        scratch = copy.deepcopy(self.model)
        return scratch.stale_write(expectation_of(scratch))

    # --- one helper per command (rules and the progress macro share them) -----------------

    def score(self, actor: Actor, scores: tuple[int, int, int]) -> None:
        leverage, feasibility, readiness = scores
        fields = {
            "leverage": {"score": leverage, "rationale": "Volume and error cost."},
            "feasibility": {"score": feasibility, "rationale": "Data access."},
            "readiness": {"score": readiness, "rationale": "Owner commitment."},
        }
        expected = self.model.score_priority(caller(actor), scores)
        self._issue(c.ScorePriority, fields, actor, expected)

    def assign(self, role: str, who: dict[str, str], actor: Actor = EDITOR) -> None:
        expected = self.model.assign_owner(caller(actor), role, person(who))
        self._issue(c.AssignOwner, {"role": role, "person": who}, actor, expected)

    def specify(self, exception_step: bool, first_responder: dict[str, str] | None) -> None:
        path = [first_responder, TECH] if first_responder else []
        workflow = {
            "steps": [
                {"description": "Model drafts", "performed_by_role": "system"},
                {
                    "description": "Unclear cases to the supervisor",
                    "performed_by_role": "supervisor",
                    "handles_exceptions": exception_step,
                },
            ],
            "escalation_path": path,
        }
        expected = self.model.specify_workflow(
            caller(EDITOR), exception_step, tuple(person(p) for p in path)
        )
        self._issue(c.SpecifyWorkflow, {"workflow": workflow}, EDITOR, expected)

    def define_criteria(self, which: str, approver: dict[str, str]) -> None:
        wire = CRITERIA_SETS[which]
        expected = self.model.define_acceptance_criteria(
            caller(EDITOR), criteria_of(wire), person(approver)
        )
        fields = {"criteria": wire, "approver": approver}
        self._issue(c.DefineAcceptanceCriteria, fields, EDITOR, expected)

    def baseline(self, metric: str) -> None:
        baseline = {
            "metric": metric,
            "unit": "minutes",
            "value": m.BASELINE_VALUE,
            "direction": "lower_is_better",
            "measured_at": self.now - timedelta(days=1),
            "method": "time study",
        }
        expected = self.model.capture_baseline(caller(EDITOR), metric)
        self._issue(c.CaptureBaseline, {"baseline": baseline}, EDITOR, expected)

    def candidate(self, label: str) -> None:
        version = {"label": label, "model": f"model-{label}", "prompt": f"prompt {label}"}
        expected = self.model.register_candidate_version(caller(EDITOR), label)
        self._issue(c.RegisterCandidateVersion, {"version": version}, EDITOR, expected)

    def evaluate(self, version: str, results: str) -> None:
        wire = RESULTS[results]
        values = {r["name"]: r["value"] for r in wire}
        expected = self.model.record_evaluation(caller(EDITOR), version, values)
        fields = {"version": version, "results": wire, "evaluated_at": self.now}
        self._issue(c.RecordEvaluation, fields, EDITOR, expected)

    def sign(self, actor: Actor, evaluation_number: int | None) -> None:
        expected = self.model.sign_off_acceptance(caller(actor), evaluation_number)
        fields = {"evaluation_number": evaluation_number, "comment": "Meets the criteria."}
        self._issue(c.SignOffAcceptance, fields, actor, expected)

    def ready(self, item: str) -> None:
        fields: dict[str, Any] = {"item": item, "evidence": f"evidence for {item}"}
        if item == "cost_tracking":
            fields |= {"monthly_budget": "1000", "currency": "EUR"}
        budget = (1000.0, "EUR") if item == "cost_tracking" else None
        expected = self.model.confirm_readiness(caller(EDITOR), item, budget)
        self._issue(c.ConfirmReadiness, fields, EDITOR, expected)

    def report_cost(self, start: datetime, end: datetime, amount: int, currency: str) -> None:
        expected = self.model.record_inference_cost(
            caller(EDITOR), start, end, float(amount), currency
        )
        fields = {
            "period_start": start,
            "period_end": end,
            "amount": str(amount),
            "currency": currency,
        }
        self._issue(c.RecordInferenceCost, fields, EDITOR, expected)

    def last_month(self) -> tuple[datetime, datetime]:
        """The last complete calendar month (UTC) before the server clock."""
        return last_month(self.now)

    def advance(self, actor: Actor, to: str | None) -> None:
        before = self.model.stage
        unmet_before = self.model.unmet(self.now)
        expected = self.model.advance_stage(caller(actor), to, self.now)
        result = self._issue(c.AdvanceStage, {"to": to}, actor, expected)
        if result is not None:
            moved_to = result.state.stage.value
            assert m.FORWARD.index(moved_to) == m.FORWARD.index(before) + 1
            assert not unmet_before, f"moved to {moved_to} past unmet {sorted(unmet_before)}"
            # SPEC: every gate decision records the policy version it was judged under.
            recorded = list(self.app.events.get(result.id, gt=result.version - 1))
            assert len(recorded) == 1
            assert isinstance(recorded[0], UseCase.StageAdvanced)
            assert (recorded[0].from_stage.value, recorded[0].to_stage.value) == (before, moved_to)
            assert recorded[0].policy_version == self.app.policy().version

    def deploy(self, version: str, environment: str, deployed_at: datetime) -> None:
        expected = self.model.record_deployment(caller(EDITOR), version, environment, deployed_at)
        fields = {"version": version, "environment": environment, "deployed_at": deployed_at}
        self._issue(c.RecordDeployment, fields, EDITOR, expected)

    def roll_back(self, to_version: str | None) -> None:
        expected = self.model.roll_back(caller(EDITOR), to_version)
        fields = {
            "reason": "Outputs degraded after release.",
            "to_version": to_version,
            "rolled_back_at": self.now,
        }
        self._issue(c.RollBack, fields, EDITOR, expected)

    def measure(self, metric: str, measured_at: datetime, value: float = 5.0) -> None:
        expected = self.model.record_measurement(caller(EDITOR), metric, measured_at, value)
        fields = {"metric": metric, "value": value, "measured_at": measured_at}
        self._issue(c.RecordMeasurement, fields, EDITOR, expected)

    def adopt(self, active: int, target: int, measured_at: datetime) -> None:
        expected = self.model.record_adoption(caller(EDITOR), active, target, measured_at)
        fields = {"active_users": active, "target_users": target, "measured_at": measured_at}
        self._issue(c.RecordAdoption, fields, EDITOR, expected)

    def state_value(self, actor: Actor) -> None:
        expected = self.model.state_value(caller(actor))
        fields = {"statement": "Invoices routed in 5 minutes instead of 12."}
        self._issue(c.StateValue, fields, actor, expected)

    def scale_criteria(self, dimensions: frozenset[str]) -> None:
        expected = self.model.define_scale_criteria(caller(EDITOR), dimensions)
        wire = [{"dimension": d, "target": f"{d} target"} for d in sorted(dimensions)]
        self._issue(c.DefineScaleCriteria, {"criteria": wire}, EDITOR, expected)

    def confirm_scale(self, dimension: str) -> None:
        expected = self.model.confirm_scale_criterion(caller(EDITOR), dimension)
        fields = {"dimension": dimension, "evidence": "load test"}
        self._issue(c.ConfirmScaleCriterion, fields, EDITOR, expected)

    def raise_alert(self, alert_id: str | None) -> None:
        # Open ones only: the id of a resolved alert may be given to a new one.
        known = {known_id for known_id, alert in self.model.alerts.items() if alert.open}
        expected = self.model.raise_quality_alert(caller(EDITOR), alert_id, self.now)
        fields = {
            "alert_id": alert_id,
            "severity": "high",
            "description": "Outputs degraded.",
            "raised_at": self.now,
        }
        result = self._issue(c.RaiseQualityAlert, fields, EDITOR, expected)
        if result is not None and alert_id is None:
            new = set(result.state.open_quality_alerts) - known
            assert len(new) == 1, f"raising one alert without an id added {sorted(new)}"
            self.model.name_anonymous_alert(new.pop())

    def resolve_alert(self, alert_id: str, resolved_at: datetime | None = None) -> None:
        resolved_at = resolved_at or self.now
        expected = self.model.resolve_quality_alert(caller(EDITOR), alert_id, resolved_at)
        fields = {"alert_id": alert_id, "resolution": "Fixed upstream.", "resolved_at": resolved_at}
        self._issue(c.ResolveQualityAlert, fields, EDITOR, expected)

    def send_back(self, stage: str) -> None:
        expected = self.model.return_to_stage(caller(EDITOR), stage, self.now)
        fields = {"stage": stage, "reason": "Evidence must be redone."}
        self._issue(c.ReturnToStage, fields, EDITOR, expected)

    def retire(self) -> None:
        expected = self.model.retire(caller(EDITOR), self.now)
        self._issue(c.Retire, {"reason": "No longer needed."}, EDITOR, expected)

    # --- the progress macro: do what the model says the next gate still needs -------------

    def satisfy(self, code: str) -> None:
        """Issue the commands that make ``code`` hold, chosen from the model's view."""
        model = self.model
        approver, technical = model.approver, model.owner("technical")
        if code == "PRIORITY_SCORED":
            self.score(EDITOR, (5, 5, 5))
        elif code == "TECHNICAL_OWNER":
            if approver is not None and approver.id == TECH["id"]:
                self.assign("technical", AI_COLLEAGUE)
            else:
                self.assign("technical", TECH)
        elif code in ("BUSINESS_OWNER", "OWNERS_DISTINCT"):
            self.assign("business", BUSINESS)
        elif code in ("WORKFLOW_SPECIFIED", "ESCALATION_OUTSIDE_AI_TEAM"):
            self.specify(True, BUSINESS)
        elif code == "ACCEPTANCE_CRITERIA" or (code == "EVALUATION_PASSED" and not model.criteria):
            tech_id = technical.id if technical else None
            self.define_criteria(
                "standard", APPROVER if tech_id != APPROVER["id"] else AI_COLLEAGUE
            )
            if code == "EVALUATION_PASSED":
                self.satisfy(code)
        elif code == "BASELINE":
            self.baseline(BASELINE_METRICS[0])
        elif code == "EVALUATION_PASSED":
            if model.candidate is None:
                self.candidate(next(f"v{n}" for n in range(1, 99) if f"v{n}" not in model.versions))
            self.evaluate(model.candidate or "v1", "excellent")
        elif code == "ACCEPTANCE_SIGNED_OFF":
            if not model.requirement_holds("EVALUATION_PASSED", self.now):
                self.satisfy("EVALUATION_PASSED")
            if model.approver is None:
                self.satisfy("ACCEPTANCE_CRITERIA")
            signer = Actor(id=model.approver.id if model.approver else "", role=Role.APPROVER)
            self.sign(signer, None)
        elif code == "PLATFORM_READY":
            for item in READINESS:
                if item not in model.readiness:
                    self.ready(item)
        elif code == "MONITORING_OWNER":
            self.assign("monitoring", MONITOR)
        elif code == "DEPLOYED":
            if model.sign_off is None or not model.sign_off_stands():
                self.send_back(m.ACCEPTANCE)  # signing off again happens before deployment
                return
            signed = model.sign_off.version
            for _ in range(len(model.previously_in_production) + 1):
                if model.production in (None, signed):
                    break
                self.roll_back(None)  # another version runs: take it out first
            self.deploy(signed, "production", self.now)
        elif code == "AFTER_STATE_MEASURED":
            first = model.first_production_deployment
            if first is not None:
                window = timedelta(days=model.policy.measurement_window_days)
                self.wait(max(first + window + timedelta(minutes=1) - self.now, timedelta()))
            for metric in sorted(model.baselines):
                self.measure(metric, self.now)
        elif code == "IMPROVEMENT_SHOWN":
            if not model.requirement_holds("AFTER_STATE_MEASURED", self.now):
                self.satisfy("AFTER_STATE_MEASURED")
            for metric in sorted(model.baselines):
                self.measure(metric, self.now)  # the latest, and better than the baseline
        elif code == "COST_WITHIN_BUDGET":
            if model.budget is None:
                self.ready("cost_tracking")
            if model.requirement_holds(code, self.now):
                return
            start, end = self.last_month()
            reported = any(c_start < end and c_end > start for c_start, c_end, *_ in model.costs)
            if reported:  # that month is spent (over budget, or in part): the next one
                self.wait(next_month(self.now) + timedelta(minutes=1) - self.now)
                start, end = self.last_month()
            self.report_cost(start, end, 300, "EUR")
        elif code == "ADOPTION":
            self.adopt(50, 50, self.now)
        elif code == "VALUE_STATEMENT":
            if model.owner("business") is None:
                self.assign("business", BUSINESS)
            business = model.owner("business")
            assert business is not None
            self.state_value(Actor(id=business.id, role=Role.EDITOR))
        elif code == "SCALE_CRITERIA_MET":
            if not model.scale_criteria:
                self.scale_criteria(frozenset({"volume"}))
            for dimension in sorted(model.scale_criteria - model.scale_confirmed):
                self.confirm_scale(dimension)
        elif code == "NO_OPEN_QUALITY_ALERT":
            for alert_id, alert in sorted(model.alerts.items()):
                if alert.open:
                    self.resolve_alert(alert_id)
        else:  # pragma: no cover - a new requirement needs a branch here
            raise AssertionError(f"no way to satisfy {code}")

    def progress_through_gate(self) -> None:
        target = self.model.next_stage
        if target is None:
            return
        for code in m.GATES[target]:
            if code in self.model.unmet(self.now, target) and self.model.stage != m.RETIRED:
                self.satisfy(code)
        if self.model.next_stage == target:
            self.advance(EDITOR, None)

    # --- rules ----------------------------------------------------------------------------

    @initialize(
        start=st.sampled_from(
            [m.PROPOSED, m.PILOT, m.ACCEPTANCE, *[m.DEPLOYMENT] * 2, *[m.MEASUREMENT] * 2, m.SCALE]
        )
    )
    def register(self, start: str) -> None:
        """A fresh use case under default policy, brought to ``start`` through every gate."""
        if self.app.policy().values != PolicyValues():
            defaults = PolicyValues().model_dump(exclude={"stuck_after_days"})
            with clock_set_to(lambda: START):
                self.app.set_policy(c.SetPolicy.parse(defaults), ctx(ADMIN))
        fields = {"key": self.key, "title": "Invoice triage", "business_unit": "Finance"}
        self.current = self.execute(c.RegisterUseCase.parse(fields), EDITOR)
        say(f"registered {self.key}, starting from {start}")
        for _ in range(len(m.FORWARD) * 2):
            if self.model.stage == start:
                break
            self.progress_through_gate()
        assert self.model.stage == start, f"could not bring a fresh use case to {start}"

    @rule(pick=st.integers(0, 4))
    def progress_one_requirement(self, pick: int) -> None:
        unmet = [
            code
            for code in m.GATES.get(self.model.next_stage or "", ())
            if code in self.model.unmet(self.now)
        ]
        if unmet:
            self.satisfy(unmet[pick % len(unmet)])
        else:
            self.advance(EDITOR, None)

    @rule()
    def progress_to_next_stage(self) -> None:
        self.progress_through_gate()

    @rule(scores=st.tuples(*[st.integers(1, 5)] * 3))
    def score_priority(self, scores: tuple[int, int, int]) -> None:
        self.score(EDITOR, scores)

    @rule(
        role=st.sampled_from(["business", "technical", "monitoring"]),
        who=st.sampled_from(sorted(PEOPLE)),
    )
    def assign_owner(self, role: str, who: str) -> None:
        self.assign(role, PEOPLE[who])

    @rule(
        exception_step=st.booleans(),
        first_responder=st.sampled_from([None, *sorted(PEOPLE)]),
    )
    def specify_workflow(self, exception_step: bool, first_responder: str | None) -> None:
        self.specify(exception_step, PEOPLE[first_responder] if first_responder else None)

    @rule(which=st.sampled_from(sorted(CRITERIA_SETS)), approver=st.sampled_from(sorted(PEOPLE)))
    def define_acceptance_criteria(self, which: str, approver: str) -> None:
        self.define_criteria(which, PEOPLE[approver])

    @rule(metric=st.sampled_from(BASELINE_METRICS))
    def capture_baseline(self, metric: str) -> None:
        self.baseline(metric)

    @rule(label=st.sampled_from(["v1", "v2", "v3"]))
    def register_candidate_version(self, label: str) -> None:
        self.candidate(label)

    @rule(
        version=st.sampled_from(["candidate", "v1", "v2", "v3", "v9"]),
        results=st.sampled_from(sorted(RESULTS)),
    )
    def record_evaluation(self, version: str, results: str) -> None:
        if version == "candidate":
            version = self.model.candidate or "v1"
        self.evaluate(version, results)

    @rule(
        signer=st.sampled_from(SIGNERS),
        evaluation_number=st.one_of(st.none(), st.integers(1, 6)),
    )
    def sign_off_acceptance(self, signer: Actor, evaluation_number: int | None) -> None:
        self.sign(signer, evaluation_number)

    @rule(item=st.sampled_from(READINESS))
    def confirm_readiness(self, item: str) -> None:
        self.ready(item)

    @rule(
        actor=st.sampled_from(ADVANCERS),
        to=st.sampled_from([None, None, "next", *STAGE_NAMES]),
    )
    def advance_stage(self, actor: Actor, to: str | None) -> None:
        self.advance(actor, self.model.next_stage if to == "next" else to)

    @rule(
        amount=st.sampled_from([300, 300, 2500]),
        span=st.sampled_from(["last month", "last month", "its first half", "up to now"]),
        currency=st.sampled_from(["EUR", "EUR", "EUR", "USD"]),
    )
    def record_inference_cost(self, amount: int, span: str, currency: str) -> None:
        start, end = self.last_month()
        if span == "its first half":
            end = start + (end - start) / 2
        elif span == "up to now":  # from the middle of last month into this one
            start, end = start + (end - start) / 2, self.now
        self.report_cost(start, end, amount, currency)

    @rule(days=st.sampled_from([1, 7, 30, 61]))
    def time_passes(self, days: int) -> None:
        self.wait(timedelta(days=days))

    @rule(
        version=st.sampled_from(["signed-off", "signed-off", "candidate", "v1", "v2", "v9"]),
        environment=st.sampled_from(["production", "production", "staging"]),
        when=st.sampled_from(["now", "now", "a day before the gate"]),
    )
    def record_deployment(self, version: str, environment: str, when: str) -> None:
        if version == "signed-off":
            version = self.model.sign_off.version if self.model.sign_off else "v1"
        elif version == "candidate":
            version = self.model.candidate or "v1"
        deployed_at = self.now
        if when != "now":
            deployed_at = (self.model.entered_deployment_at or self.now) - timedelta(days=1)
        self.deploy(version, environment, deployed_at)

    @rule(to=st.sampled_from(["unchecked", "previous", "v9"]))
    def roll_back_production(self, to: str) -> None:
        previous = self.model.previously_in_production
        expected_target = previous[-1] if previous else None
        self.roll_back({"unchecked": None, "previous": expected_target, "v9": "v9"}[to])

    @rule(
        metric=st.sampled_from([*BASELINE_METRICS, BASELINE_METRICS[0], "throughput"]),
        days_before_now=st.sampled_from([0, 0, 1, 30]),
        # Better than the baseline (lower is better), the same, or worse.
        value=st.sampled_from([5.0, 5.0, m.BASELINE_VALUE, 13.0]),
    )
    def record_measurement(self, metric: str, days_before_now: int, value: float) -> None:
        self.measure(metric, self.now - timedelta(days=days_before_now), value)

    @rule(
        metric=st.sampled_from([*BASELINE_METRICS, BASELINE_METRICS[0]]),
        seconds_after_window=st.sampled_from([-1, 0, 0, 1]),
    )
    def record_measurement_at_the_window(self, metric: str, seconds_after_window: int) -> None:
        """An after-state just before, exactly at, or just after the measurement window; the
        clock moves there first, since a measurement is not taken in the future."""
        first = self.model.first_production_deployment or self.now
        window = timedelta(days=self.model.policy.measurement_window_days)
        measured_at = first + window + timedelta(seconds=seconds_after_window)
        self.wait(max(measured_at - self.now, timedelta()))
        self.measure(metric, min(measured_at, self.now))

    @rule(
        users=st.sampled_from([(40, 50), (25, 50), (10, 50), (0, 10), (9, 10)]),
        days_before_now=st.sampled_from([20, 5, 1, 0, 0]),
    )
    def record_adoption(self, users: tuple[int, int], days_before_now: int) -> None:
        self.adopt(*users, self.now - timedelta(days=days_before_now))

    @rule(actor=st.sampled_from(VALUE_STATERS))
    def state_value_statement(self, actor: Actor) -> None:
        self.state_value(actor)

    @rule(dimensions=st.frozensets(st.sampled_from(SCALE_DIMENSIONS), min_size=1))
    def define_scale_criteria(self, dimensions: frozenset[str]) -> None:
        self.scale_criteria(dimensions)

    @rule(dimension=st.sampled_from(SCALE_DIMENSIONS))
    def confirm_scale_criterion(self, dimension: str) -> None:
        self.confirm_scale(dimension)

    @rule(alert_id=st.sampled_from([None, *ALERT_IDS]))
    def raise_quality_alert(self, alert_id: str | None) -> None:
        self.raise_alert(alert_id)

    @rule(
        alert_id=st.sampled_from(["first open", "first open", *ALERT_IDS]),
        when=st.sampled_from(["now", "now", "before it was raised"]),
    )
    def resolve_quality_alert(self, alert_id: str, when: str) -> None:
        if alert_id == "first open":
            open_ids = sorted(a for a, alert in self.model.alerts.items() if alert.open)
            alert_id = open_ids[0] if open_ids else "drift"
        resolved_at = self.now
        if when != "now":
            alert = self.model.alerts.get(alert_id)
            resolved_at = (alert.raised_at if alert else self.now) - timedelta(hours=1)
        self.resolve_alert(alert_id, resolved_at)

    @rule(where=st.sampled_from(SEND_TO))
    def return_or_retire(self, where: str) -> None:
        if where == "retire":
            self.retire()
        else:
            self.send_back(where)

    @rule(
        window=st.sampled_from([30, 60, 90]),
        min_adoption=st.sampled_from([0.2, 0.5, 0.8]),
        min_score=st.sampled_from([1, 3]),
    )
    def set_policy(self, window: int, min_adoption: float, min_score: int) -> None:
        fields = {
            "measurement_window_days": window,
            "min_adoption": min_adoption,
            "min_priority_score": min_score,
            "reason": "Quarterly policy review.",
        }
        with clock_set_to(lambda: self.now):
            self.app.set_policy(c.SetPolicy.parse(fields), ctx(ADMIN))
        self.model.policy = replace(
            self.model.policy,
            measurement_window_days=window,
            min_adoption=min_adoption,
            min_priority_score=min_score,
        )

    @rule(
        actor=st.sampled_from([VIEWER, AUDITOR]),
        which=st.sampled_from(["score", "advance", "retire", "adoption"]),
    )
    def command_from_a_reader(self, actor: Actor, which: str) -> None:
        who = caller(actor)
        if which == "score":
            self.score(actor, (3, 3, 3))
        elif which == "advance":
            self.advance(actor, None)
        elif which == "retire":
            expected = self.model.retire(who, self.now)
            self._issue(c.Retire, {"reason": "Not mine to retire."}, actor, expected)
        else:
            expected = self.model.record_adoption(who, 5, 10, self.now)
            fields = {"active_users": 5, "target_users": 10, "measured_at": self.now}
            self._issue(c.RecordAdoption, fields, actor, expected)

    @rule(offset=st.sampled_from([0, 0, -1, 1, 3]), which=st.sampled_from(["advance", "readiness"]))
    def command_with_an_expected_version(self, offset: int, which: str) -> None:
        """``expectedVersion`` equal to the current version changes nothing; any other refuses."""
        assert self.current is not None
        version = max(1, self.current.version + offset)
        if offset and version == self.current.version:
            version += 1
        if which == "advance":
            command, fields = c.AdvanceStage, {}

            def expect(model: m.UseCaseModel) -> m.Expectation:
                return model.advance_stage(caller(EDITOR), None, self.now)
        else:
            command, fields = c.ConfirmReadiness, {"item": "rollback_plan", "evidence": "runbook"}

            def expect(model: m.UseCaseModel) -> m.Expectation:
                return model.confirm_readiness(caller(EDITOR), "rollback_plan")

        current = version == self.current.version
        expected = expect(self.model) if current else self._as_stale(expect)
        self._issue(command, fields, EDITOR, expected, expected_version=version)

    @rule(
        where=st.sampled_from([m.ACCEPTANCE, m.ACCEPTANCE, m.PILOT]),
        label=st.sampled_from(["v2", "v3", "v4"]),
    )
    def send_back_for_a_new_version(self, where: str, label: str) -> None:
        """The realistic rework loop: back to an earlier stage, then a new candidate."""
        self.send_back(where)
        self.candidate(label)

    # --- invariants -----------------------------------------------------------------------

    @invariant()
    def store_memory_and_model_agree(self) -> None:
        if self.current is None:
            return
        in_memory = self.current
        cached = self.app.use_case(self.key)
        assert cached == in_memory, "the application's use case differs from the one in memory"
        assert in_memory.version == self.model.events, (
            f"version {in_memory.version}, but the model counts {self.model.events} events"
        )
        stored = list(self.app.events.get(in_memory.id))
        assert len(stored) == in_memory.version, (
            f"version {in_memory.version}, but the store holds {len(stored)} events"
        )
        assert [e.originator_version for e in stored] == list(range(1, len(stored) + 1))
        reloaded = self.app.repository.get(in_memory.id, version=in_memory.version)
        assert reloaded == in_memory, "reloading through the snapshot store differs"
        replayed = project_aggregate(None, stored)
        assert replayed == in_memory, "replaying every stored event differs"
        assert in_memory.state.stage.value == self.model.stage

    @invariant()
    def recorded_evidence_agrees_with_the_model(self) -> None:
        """What the API shows of the evidence is what the accepted commands recorded."""
        if self.current is None:
            return
        state, model = self.current.state, self.model
        assert state.candidate_version == model.candidate
        assert state.production_version == model.production, "production runs another version"
        assert state.first_production_deployment_at == model.first_production_deployment
        assert set(state.baselines) == model.baselines
        assert {r.value: p.id for r, p in state.owners.items()} == {
            role: p.id for role, p in model.owners.items()
        }
        assert (state.approver.id if state.approver else None) == (
            model.approver.id if model.approver else None
        )
        assert {i.value for i in state.readiness} == model.readiness
        assert set(state.open_quality_alerts) == {
            alert_id for alert_id, alert in model.alerts.items() if alert.open
        }
        assert {d.value for d in state.scale_criteria} == model.scale_criteria
        assert {d.value for d in state.scale_confirmations} == model.scale_confirmed
        stated_by = state.value_statement.stated_by if state.value_statement else None
        assert stated_by == model.value_stated_by

    @invariant()
    def gate_status_names_the_models_unmet_requirements(self) -> None:
        if self.current is None:
            return
        with clock_set_to(lambda: self.now):
            gate = self.app.gate(self.current)
        assert (gate.next.value if gate.next else None) == self.model.next_stage
        unmet = {r.code.value for r in gate.unmet}
        assert unmet == self.model.unmet(self.now), (
            f"in {self.model.stage} the gate reports unmet {sorted(unmet)}; the model expects "
            f"{sorted(self.model.unmet(self.now))}"
        )


def test_random_command_sequences_agree_with_the_reference_model(services: Services) -> None:
    run_state_machine_as_test(lambda: UseCaseLifecycle(services.app), settings=MACHINE_SETTINGS)


DEPLOY_THE_SIGNED_OFF_VERSION = {
    "version": "signed-off",
    "environment": "production",
    "when": "now",
}

# Sequences replayed on every run, so what they cover does not hang on the luck of a random
# search: ones the machine found (shrunk) and paths it reaches only rarely.
# (start stage, [(rule, arguments), ...]).
KNOWN_SEQUENCES: dict[str, tuple[str, list[tuple[str, dict[str, Any]]]]] = {
    # Found: an alert raised without an id got "alert-<count + 1>", which an earlier alert
    # could already carry, and was refused as "already raised" (fixed in b744d42).
    # (Found too: the id of a resolved alert given to a new one, which is allowed; the check
    # of the new id now compares it with the open alerts only.)
    "alert without an id after alert-2": (
        m.PROPOSED,
        [
            ("raise_quality_alert", {"alert_id": "alert-2"}),
            ("raise_quality_alert", {"alert_id": None}),
        ],
    ),
    "alert without an id after alert-2 was resolved": (
        m.PROPOSED,
        [
            ("raise_quality_alert", {"alert_id": "alert-2"}),
            ("resolve_quality_alert", {"alert_id": "alert-2", "when": "now"}),
            ("raise_quality_alert", {"alert_id": None}),
        ],
    ),
    # Sent back, a new candidate signed off: the old version still in production must not
    # satisfy DEPLOYED on the way forward again (fixed in 8f83477).
    "old version in production after a new sign-off": (
        m.MEASUREMENT,
        [
            ("send_back_for_a_new_version", {"where": m.ACCEPTANCE, "label": "v2"}),
            ("progress_to_next_stage", {}),
            ("advance_stage", {"actor": EDITOR, "to": None}),
        ],
    ),
    # While v1 runs, the newly signed-off v2 is not installed over it without a change; taking
    # v1 out by a rollback first is always allowed.
    "a new sign-off replaces the running version only after a rollback": (
        m.MEASUREMENT,
        [
            ("send_back_for_a_new_version", {"where": m.ACCEPTANCE, "label": "v2"}),
            ("progress_to_next_stage", {}),
            (
                "record_deployment",
                {"version": "signed-off", "environment": "production", "when": "now"},
            ),
            ("roll_back_production", {"to": "previous"}),
            (
                "record_deployment",
                {"version": "signed-off", "environment": "production", "when": "now"},
            ),
            ("advance_stage", {"actor": EDITOR, "to": None}),
        ],
    ),
    # The after-state counts from exactly the end of the measurement window, not a second
    # before it.
    "after-state one second before, then exactly at, the window": (
        m.MEASUREMENT,
        [
            (
                "record_measurement_at_the_window",
                {"metric": BASELINE_METRICS[0], "seconds_after_window": -1},
            ),
            (
                "record_measurement_at_the_window",
                {"metric": BASELINE_METRICS[0], "seconds_after_window": 0},
            ),
        ],
    ),
    # Adoption is judged by the latest measurement in business time, at or above the minimum.
    "adoption: latest by business time, boundary included": (
        m.MEASUREMENT,
        [
            ("record_adoption", {"users": (25, 50), "days_before_now": 0}),
            ("record_adoption", {"users": (10, 50), "days_before_now": 20}),
            ("record_adoption", {"users": (10, 50), "days_before_now": 0}),
        ],
    ),
    "an alert is not resolved before it was raised": (
        m.MEASUREMENT,
        [
            ("raise_quality_alert", {"alert_id": "drift"}),
            ("resolve_quality_alert", {"alert_id": "drift", "when": "before it was raised"}),
            ("resolve_quality_alert", {"alert_id": "drift", "when": "now"}),
        ],
    ),
    "a retired use case accepts nothing": (
        m.DEPLOYMENT,
        [
            ("return_or_retire", {"where": "retire"}),
            ("confirm_readiness", {"item": "rollback_plan"}),
            ("score_priority", {"scores": (3, 3, 3)}),
            ("record_deployment", DEPLOY_THE_SIGNED_OFF_VERSION),
            ("advance_stage", {"actor": EDITOR, "to": None}),
            ("return_or_retire", {"where": m.PILOT}),
            ("return_or_retire", {"where": "retire"}),
        ],
    ),
    # New criteria (even the same ones) are not what the approver signed off.
    "criteria redefined after the sign-off void it": (
        m.DEPLOYMENT,
        [
            ("return_or_retire", {"where": m.ACCEPTANCE}),
            ("define_acceptance_criteria", {"which": "standard", "approver": "approver"}),
            ("sign_off_acceptance", {"signer": APPROVER_ACTOR, "evaluation_number": None}),
        ],
    ),
}


@pytest.mark.parametrize("name", sorted(KNOWN_SEQUENCES))
def test_known_sequences_agree_with_the_reference_model(services: Services, name: str) -> None:
    start, steps = KNOWN_SEQUENCES[name]
    machine = UseCaseLifecycle(services.app)
    machine.register(start=start)
    for rule_name, arguments in steps:
        getattr(machine, rule_name)(**arguments)
        machine.store_memory_and_model_agree()
        machine.gate_status_names_the_models_unmet_requirements()
