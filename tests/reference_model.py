"""A plain reference model of one use case's lifecycle, written from the spec alone
(its rules are written up in docs/domain.md).

It knows nothing of the domain package beyond names: stages, requirement codes and rule codes are
plain strings, state is dataclasses and sets. For each command it answers whether the spec says the
command is accepted and, if not, every refusal that would be a correct answer (a command may break
several rules at once and the spec does not say which one is reported first). A gate refusal is
exact: the spec says it names *every* unmet requirement.

Where the spec is silent the model takes the reading a Head of AI or an auditor would expect; each
such choice is marked "Reading:" so a disagreement can be judged against the spec, not the code.
It covers the commands the lifecycle state machine issues (no change management). Times are
plain datetimes: the server time a stage was entered at, and business times (deployed, measured,
raised...) as the caller gave them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

PROPOSED, PILOT, ACCEPTANCE = "proposed", "pilot", "acceptance"
DEPLOYMENT, MEASUREMENT, SCALE, RETIRED = "deployment", "measurement", "scale", "retired"
FORWARD = (PROPOSED, PILOT, ACCEPTANCE, DEPLOYMENT, MEASUREMENT, SCALE)
BEFORE_DEPLOYMENT = (PROPOSED, PILOT, ACCEPTANCE)
IN_PRODUCTION = (DEPLOYMENT, MEASUREMENT, SCALE)

READINESS_ITEMS = frozenset(
    {
        "repeatable_deployment",
        "quality_monitoring",
        "data_pipeline_checks",
        "cost_tracking",
        "rollback_plan",
    }
)
PRODUCTION = "production"
BASELINE_VALUE = 12.0
"""Every baseline the model captures: an outcome, lower is better (the driver sends it)."""

# The gate into each stage, as the spec's table lists it.
GATES: dict[str, tuple[str, ...]] = {
    PILOT: ("PRIORITY_SCORED", "TECHNICAL_OWNER"),
    ACCEPTANCE: (
        "BUSINESS_OWNER",
        "TECHNICAL_OWNER",
        "OWNERS_DISTINCT",
        "WORKFLOW_SPECIFIED",
        "ESCALATION_OUTSIDE_AI_TEAM",
        "ACCEPTANCE_CRITERIA",
    ),
    DEPLOYMENT: (
        "BASELINE",
        "EVALUATION_PASSED",
        "ACCEPTANCE_SIGNED_OFF",
        "PLATFORM_READY",
        "MONITORING_OWNER",
    ),
    MEASUREMENT: ("DEPLOYED",),
    SCALE: (
        "AFTER_STATE_MEASURED",
        "IMPROVEMENT_SHOWN",
        "COST_WITHIN_BUDGET",
        "ADOPTION",
        "VALUE_STATEMENT",
        "SCALE_CRITERIA_MET",
        "NO_OPEN_QUALITY_ALERT",
    ),
}

# Who may issue what (the spec's "Roles"): editors work the lifecycle, approvers sign off, the
# business owner states value whatever their token's writing role, auditors and viewers write
# nothing.
WRITERS = frozenset({"admin", "editor"})
SIGNERS = frozenset({"admin", "approver"})
VALUE_STATERS = frozenset({"admin", "editor", "approver"})


# --- values -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    id: str
    team: str | None = None


@dataclass(frozen=True)
class Caller:
    """Who issues a command: their identity and their token's role."""

    id: str
    role: str


@dataclass(frozen=True)
class Criterion:
    metric: str
    comparator: str  # gte, gt, lte, lt
    threshold: float

    def met_by(self, results: dict[str, float]) -> bool:
        if self.metric not in results:
            return False
        value = results[self.metric]
        return {
            "gte": value >= self.threshold,
            "gt": value > self.threshold,
            "lte": value <= self.threshold,
            "lt": value < self.threshold,
        }[self.comparator]


@dataclass(frozen=True)
class Policy:
    """The organisation's thresholds; the spec's defaults."""

    measurement_window_days: int = 60
    min_adoption: float = 0.5
    min_priority_score: int = 1


@dataclass(frozen=True)
class Refusal:
    """One correct way to refuse: ``forbidden``, ``rule`` (with a code), ``gate`` (with every
    unmet code) or ``conflict`` (a stale expected version)."""

    kind: str
    code: str | None = None
    unmet: frozenset[str] = frozenset()

    def __str__(self) -> str:
        if self.kind == "gate":
            return f"gate{sorted(self.unmet)}"
        return f"{self.kind}({self.code})" if self.code else self.kind


FORBIDDEN = Refusal("forbidden")
CONFLICT = Refusal("conflict")


def rule(code: str) -> Refusal:
    return Refusal("rule", code)


@dataclass(frozen=True)
class Expectation:
    """Accepted when ``refusals`` is empty; otherwise the domain must answer one of them."""

    refusals: frozenset[Refusal] = frozenset()

    @property
    def accepted(self) -> bool:
        return not self.refusals

    def __str__(self) -> str:
        if self.accepted:
            return "accepted"
        return "refused with one of: " + ", ".join(sorted(str(r) for r in self.refusals))


ACCEPTED = Expectation()


@dataclass
class Evaluation:
    version: str
    results: dict[str, float]


@dataclass
class SignOff:
    evaluation_number: int
    version: str
    signed_by: str


@dataclass
class Alert:
    raised_at: datetime
    open: bool = True


# --- the model ----------------------------------------------------------------------------


@dataclass
class UseCaseModel:
    """What the spec says one use case is, after the commands it accepted."""

    policy: Policy = field(default_factory=Policy)
    events: int = 1  # registration
    stage: str = PROPOSED
    reached_deployment: bool = False
    entered_deployment_at: datetime | None = None  # server time, the last time it did

    lowest_priority_score: int | None = None
    owners: dict[str, Person] = field(default_factory=dict)
    workflow_has_exception_step: bool | None = None  # None: no workflow specified
    escalation_path: tuple[Person, ...] = ()
    criteria: tuple[Criterion, ...] = ()
    approver: Person | None = None
    baselines: set[str] = field(default_factory=set)
    versions: set[str] = field(default_factory=set)
    candidate: str | None = None
    evaluations: list[Evaluation] = field(default_factory=list)
    sign_off: SignOff | None = None
    readiness: set[str] = field(default_factory=set)
    budget: tuple[float, str] | None = None
    """The monthly budget (amount, currency) stated when cost tracking was last confirmed."""
    costs: list[tuple[datetime, datetime, float, str]] = field(default_factory=list)
    """(period start, period end, amount, currency) of every cost reported."""

    production: str | None = None
    previously_in_production: list[str] = field(default_factory=list)
    first_production_deployment: datetime | None = None

    measurements: list[tuple[str, datetime, float]] = field(default_factory=list)
    """(metric, measured at, value), in the order recorded."""
    adoption: list[tuple[int, int, datetime]] = field(default_factory=list)
    value_stated_by: str | None = None
    scale_criteria: set[str] = field(default_factory=set)
    scale_confirmed: set[str] = field(default_factory=set)
    alerts: dict[str, Alert] = field(default_factory=dict)
    anonymous_alerts: list[datetime] = field(default_factory=list)
    """When alerts raised without an id were raised, until told which id they got."""

    # --- questions ------------------------------------------------------------------------

    @property
    def next_stage(self) -> str | None:
        if self.stage in (SCALE, RETIRED):
            return None
        return FORWARD[FORWARD.index(self.stage) + 1]

    def owner(self, role: str) -> Person | None:
        return self.owners.get(role)

    def passes(self, evaluation: Evaluation) -> bool:
        """Judged against the acceptance criteria in force now (SPEC: 'whose results meet
        every acceptance criterion')."""
        return bool(self.criteria) and all(c.met_by(evaluation.results) for c in self.criteria)

    def passing_evaluations_of(self, version: str | None) -> list[int]:
        return [
            number
            for number, e in enumerate(self.evaluations, start=1)
            if e.version == version and self.passes(e)
        ]

    def sign_off_stands(self) -> bool:
        """The named approver, not the technical owner, signed off a passing evaluation of the
        current candidate."""
        s, technical = self.sign_off, self.owner("technical")
        return (
            s is not None
            and self.approver is not None
            and s.signed_by == self.approver.id
            and (technical is None or technical.id != s.signed_by)
            and s.version == self.candidate
            and self.passes(self.evaluations[s.evaluation_number - 1])
        )

    def deployable(self, version: str) -> bool:
        """Without change management: onto an empty production, the standing signed-off
        version; onto a running one, only that same version again (SPEC: "A deployment of a
        version without an approved change is refused"; going back is a rollback)."""
        if self.production is not None:
            return version == self.production
        return (
            self.sign_off is not None
            and self.sign_off_stands()
            and version == self.sign_off.version
        )

    def requirement_holds(self, code: str, at: datetime) -> bool:
        """Whether ``code`` holds when judged at server time ``at``."""
        technical, business = self.owner("technical"), self.owner("business")
        if code == "PRIORITY_SCORED":
            score = self.lowest_priority_score
            return score is not None and score >= self.policy.min_priority_score
        if code == "TECHNICAL_OWNER":
            return technical is not None
        if code == "BUSINESS_OWNER":
            return business is not None
        if code == "OWNERS_DISTINCT":
            # Reading: only two named owners who are one person break it.
            return not (business and technical and business.id == technical.id)
        if code == "WORKFLOW_SPECIFIED":
            return bool(self.workflow_has_exception_step)
        if code == "ESCALATION_OUTSIDE_AI_TEAM":
            if not self.escalation_path:
                return False
            first = self.escalation_path[0]
            if technical is None:
                return True
            # Reading: the AI team is the technical owner's team (SPEC: "technical owner (AI
            # team)"); no other record says who is on it.
            on_ai_team = first.team is not None and first.team == technical.team
            return first.id != technical.id and not on_ai_team
        if code == "ACCEPTANCE_CRITERIA":
            return bool(self.criteria) and self.approver is not None
        if code == "BASELINE":
            return bool(self.baselines)
        if code == "EVALUATION_PASSED":
            return bool(self.passing_evaluations_of(self.candidate))
        if code == "ACCEPTANCE_SIGNED_OFF":
            return self.sign_off_stands()
        if code == "PLATFORM_READY":
            return self.readiness >= READINESS_ITEMS
        if code == "MONITORING_OWNER":
            return self.owner("monitoring") is not None
        if code == "DEPLOYED":
            # SPEC: "a production deployment of the signed-off version was recorded".
            # Reading: and production still runs it: not rolled back to another version or to
            # nothing, and not a version an earlier pass through the gates signed off.
            return (
                self.sign_off is not None
                and self.sign_off_stands()
                and self.production == self.sign_off.version
            )
        if code == "AFTER_STATE_MEASURED":
            first = self.first_production_deployment
            if not self.baselines or first is None:
                return False
            not_before = first + timedelta(days=self.policy.measurement_window_days)
            measured = {metric for metric, at, _ in self.measurements if at >= not_before}
            return self.baselines <= measured
        if code == "IMPROVEMENT_SHOWN":
            # Every baseline here is an outcome of BASELINE_VALUE, lower is better, and the
            # policy's minimum improvement is its default: strictly better. Reading: "latest"
            # by business time; of equal times, the one recorded last.
            if not self.requirement_holds("AFTER_STATE_MEASURED", at):
                return False
            for metric in self.baselines:
                _, _, latest = max(
                    (at, n, value)
                    for n, (m, at, value) in enumerate(self.measurements)
                    if m == metric
                )
                if not latest < BASELINE_VALUE:
                    return False
            return True
        if code == "COST_WITHIN_BUDGET":
            return self.cost_within_budget(at)
        if code == "ADOPTION":
            if not self.adoption:
                return False
            # Reading: "latest" by business time; of equal times, the one recorded last.
            latest = max(enumerate(self.adoption), key=lambda p: (p[1][2], p[0]))[1]
            active, target, _ = latest
            return active / target >= self.policy.min_adoption
        if code == "VALUE_STATEMENT":
            return business is not None and self.value_stated_by == business.id
        if code == "SCALE_CRITERIA_MET":
            return bool(self.scale_criteria) and self.scale_criteria <= self.scale_confirmed
        if code == "NO_OPEN_QUALITY_ALERT":
            return not any(a.open for a in self.alerts.values())
        raise AssertionError(f"unknown requirement {code}")

    def cost_within_budget(self, at: datetime) -> bool:
        """SPEC: the cost reported for the last complete calendar month is within the monthly
        budget (same currency); no cost reported for that month does not meet it. Reading:
        the month is UTC's; a report counts for the share of its period inside the month, and
        the month counts as reported when its reports leave less than a day of it uncovered
        (a report for half the month is not the month's cost)."""
        if self.budget is None:
            return False
        limit, currency = self.budget
        month_end = at.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        month_start = (month_end - timedelta(days=1)).replace(day=1)
        inside = [
            (max(start, month_start), min(end, month_end), amount * 1.0, start, end)
            for start, end, amount, c in self.costs
            if c == currency and start < month_end and end > month_start
        ]
        if not inside:
            return False
        covered, reach = timedelta(), month_start
        for start, end, *_ in sorted(inside):
            if end > reach:
                covered += end - max(start, reach)
                reach = end
        if month_end - month_start - covered >= timedelta(days=1):
            return False
        spent = sum(
            amount * ((end - start) / (whole_end - whole_start))
            for start, end, amount, whole_start, whole_end in inside
        )
        return spent <= limit

    def unmet(self, at: datetime, target: str | None = None) -> frozenset[str]:
        """Every requirement of the gate into ``target`` (default: the next stage) not met at
        server time ``at``."""
        target = target or self.next_stage
        if target is None:
            return frozenset()
        return frozenset(c for c in GATES[target] if not self.requirement_holds(c, at))

    # --- commands -------------------------------------------------------------------------
    # Each returns what the spec expects; when that is acceptance, the model records the event.

    def _guards(self, caller: Caller, roles: frozenset[str] = WRITERS) -> set[Refusal]:
        refusals = set()
        if caller.role not in roles:
            refusals.add(FORBIDDEN)
        if self.stage == RETIRED:  # "Nothing happens to a retired one."
            refusals.add(rule("RETIRED"))
        return refusals

    def _decide(self, refusals: set[Refusal]) -> Expectation:
        if refusals:
            return Expectation(frozenset(refusals))
        self.events += 1
        return ACCEPTED

    def score_priority(self, caller: Caller, scores: tuple[int, int, int]) -> Expectation:
        expectation = self._decide(self._guards(caller))
        if expectation.accepted:
            self.lowest_priority_score = min(scores)
        return expectation

    def assign_owner(self, caller: Caller, role: str, person: Person) -> Expectation:
        refusals = self._guards(caller)
        # SPEC: "The approver may not be the technical owner (separation of duties)."
        if role == "technical" and self.approver is not None and self.approver.id == person.id:
            refusals.add(rule("SEPARATION_OF_DUTIES"))
        expectation = self._decide(refusals)
        if expectation.accepted:
            self.owners[role] = person
        return expectation

    def specify_workflow(
        self, caller: Caller, exception_step: bool, escalation_path: tuple[Person, ...]
    ) -> Expectation:
        expectation = self._decide(self._guards(caller))
        if expectation.accepted:
            self.workflow_has_exception_step = exception_step
            self.escalation_path = escalation_path
        return expectation

    def define_acceptance_criteria(
        self, caller: Caller, criteria: tuple[Criterion, ...], approver: Person
    ) -> Expectation:
        refusals = self._guards(caller)
        # Reading: from deployment on, new criteria would change what was approved outside
        # change management; the use case goes back to acceptance for that.
        if self.stage in IN_PRODUCTION:
            refusals.add(rule("STAGE_DOES_NOT_ALLOW"))
        technical = self.owner("technical")
        if technical is not None and technical.id == approver.id:
            refusals.add(rule("SEPARATION_OF_DUTIES"))
        expectation = self._decide(refusals)
        if expectation.accepted:
            self.criteria, self.approver = criteria, approver
            # Reading: a sign-off was given under the criteria and approver it replaces.
            self.sign_off = None
        return expectation

    def capture_baseline(self, caller: Caller, metric: str) -> Expectation:
        refusals = self._guards(caller)
        # SPEC: "A baseline can only be captured before the use case first reaches deployment."
        if self.reached_deployment:
            refusals.add(rule("BASELINE_AFTER_DEPLOYMENT"))
        expectation = self._decide(refusals)
        if expectation.accepted:
            self.baselines.add(metric)
        return expectation

    def register_candidate_version(self, caller: Caller, label: str) -> Expectation:
        refusals = self._guards(caller)
        # Reading: from deployment on a new version comes through change management.
        if self.stage in IN_PRODUCTION:
            refusals.add(rule("STAGE_DOES_NOT_ALLOW"))
        # Reading: a version is immutable, so a label names one version only.
        if label in self.versions:
            refusals.add(rule("VERSION_LABEL_TAKEN"))
        expectation = self._decide(refusals)
        if expectation.accepted:
            self.versions.add(label)
            self.candidate = label
            self.sign_off = None  # SPEC: "A newer candidate version voids the sign-off."
        return expectation

    def record_evaluation(
        self, caller: Caller, version: str, results: dict[str, float]
    ) -> Expectation:
        refusals = self._guards(caller)
        if version not in self.versions:
            refusals.add(rule("UNKNOWN_VERSION"))
        expectation = self._decide(refusals)
        if expectation.accepted:
            self.evaluations.append(Evaluation(version, dict(results)))
        return expectation

    def sign_off_acceptance(self, caller: Caller, evaluation_number: int | None) -> Expectation:
        refusals = self._guards(caller, SIGNERS)
        # Reading: acceptance is signed off before deployment; later approvals are changes'.
        if self.stage not in BEFORE_DEPLOYMENT:
            refusals.add(rule("STAGE_DOES_NOT_ALLOW"))
        technical = self.owner("technical")
        if self.approver is None:
            refusals |= {rule("NO_APPROVER_NAMED"), FORBIDDEN}
        elif self.approver.id != caller.id:
            refusals.add(FORBIDDEN)  # SPEC: "only the named approver signs off"
        elif technical is not None and technical.id == caller.id:
            refusals.add(rule("SEPARATION_OF_DUTIES"))
        if self.candidate is None:
            refusals.add(rule("NO_CANDIDATE_VERSION"))
        passing = self.passing_evaluations_of(self.candidate)
        if evaluation_number is None:
            if not passing:
                refusals.add(rule("EVALUATION_NOT_PASSED"))
            signed = passing[-1] if passing else 0
        else:
            if not 0 < evaluation_number <= len(self.evaluations):
                refusals.add(rule("UNKNOWN_EVALUATION"))
            elif evaluation_number not in passing:
                refusals.add(rule("EVALUATION_NOT_PASSED"))
            signed = evaluation_number
        expectation = self._decide(refusals)
        if expectation.accepted:
            assert self.candidate is not None
            self.sign_off = SignOff(signed, self.candidate, caller.id)
        return expectation

    def confirm_readiness(
        self, caller: Caller, item: str, budget: tuple[float, str] | None = None
    ) -> Expectation:
        expectation = self._decide(self._guards(caller))
        if expectation.accepted:
            self.readiness.add(item)
            if item == "cost_tracking":
                self.budget = budget
        return expectation

    def record_inference_cost(
        self, caller: Caller, start: datetime, end: datetime, amount: float, currency: str
    ) -> Expectation:
        expectation = self._decide(self._guards(caller))
        if expectation.accepted:
            self.costs.append((start, end, amount, currency))
        return expectation

    def advance_stage(self, caller: Caller, to: str | None, at: datetime) -> Expectation:
        """``at``: the server time the command is recorded at."""
        refusals = self._guards(caller)
        target = self.next_stage
        if self.stage != RETIRED:
            if target is None:
                refusals.add(rule("NO_NEXT_STAGE"))
                if to is not None:
                    refusals.add(rule("NOT_NEXT_STAGE"))
            elif to is not None and to != target:
                refusals.add(rule("NOT_NEXT_STAGE"))  # one stage at a time
            elif not refusals and self.unmet(at, target):
                refusals.add(Refusal("gate", unmet=self.unmet(at, target)))
        expectation = self._decide(refusals)
        if expectation.accepted:
            assert target is not None
            self._enter(target, at)
        return expectation

    def record_deployment(
        self, caller: Caller, version: str, environment: str, deployed_at: datetime
    ) -> Expectation:
        refusals = self._guards(caller)
        if version not in self.versions:
            refusals.add(rule("UNKNOWN_VERSION"))
        if environment == PRODUCTION:
            # Reading: production comes after the gate into deployment...
            if self.stage not in IN_PRODUCTION:
                refusals.add(rule("STAGE_DOES_NOT_ALLOW"))
            # ... and not before it either: a backdated deployment would shorten the window.
            entered = self.entered_deployment_at
            if entered is not None and deployed_at < entered:
                refusals.add(rule("DEPLOYMENT_PREDATES_GATE"))
            if not self.deployable(version):
                refusals.add(rule("VERSION_NOT_APPROVED"))
        expectation = self._decide(refusals)
        if expectation.accepted and environment == PRODUCTION:
            if self.production is not None and self.production != version:
                self.previously_in_production.append(self.production)
            self.production = version
            first = self.first_production_deployment
            # The measurement window counts from the earliest production deployment.
            if first is None or deployed_at < first:
                self.first_production_deployment = deployed_at
        return expectation

    def roll_back(self, caller: Caller, to_version: str | None) -> Expectation:
        """SPEC: 'A rollback to the previously deployed version is always allowed'."""
        refusals = self._guards(caller)
        previous = self.previously_in_production[-1] if self.previously_in_production else None
        if self.production is None:
            refusals.add(rule("NOTHING_DEPLOYED"))
        if to_version is not None and to_version != previous:
            refusals.add(rule("ROLLBACK_TARGET_MISMATCH"))
        expectation = self._decide(refusals)
        if expectation.accepted:
            if self.previously_in_production:
                self.previously_in_production.pop()
            self.production = previous
        return expectation

    def record_measurement(
        self, caller: Caller, metric: str, measured_at: datetime, value: float
    ) -> Expectation:
        refusals = self._guards(caller)
        # An after-state compares with a baseline, and follows a production deployment.
        if metric not in self.baselines:
            refusals.add(rule("NO_BASELINE_FOR_METRIC"))
        if self.first_production_deployment is None:
            refusals.add(rule("NOT_YET_DEPLOYED"))
        expectation = self._decide(refusals)
        if expectation.accepted:
            self.measurements.append((metric, measured_at, value))
        return expectation

    def record_adoption(
        self, caller: Caller, active: int, target: int, measured_at: datetime
    ) -> Expectation:
        expectation = self._decide(self._guards(caller))
        if expectation.accepted:
            self.adoption.append((active, target, measured_at))
        return expectation

    def state_value(self, caller: Caller) -> Expectation:
        refusals = self._guards(caller, VALUE_STATERS)
        business = self.owner("business")
        # SPEC: "the business owner (that person, no one else) stated the value".
        if business is None:
            refusals |= {rule("NO_BUSINESS_OWNER_NAMED"), FORBIDDEN}
        elif business.id != caller.id:
            refusals.add(FORBIDDEN)
        expectation = self._decide(refusals)
        if expectation.accepted:
            self.value_stated_by = caller.id
        return expectation

    def define_scale_criteria(self, caller: Caller, dimensions: frozenset[str]) -> Expectation:
        expectation = self._decide(self._guards(caller))
        if expectation.accepted:
            self.scale_criteria = set(dimensions)
            # Reading: confirmations were of the targets these criteria replace.
            self.scale_confirmed = set()
        return expectation

    def confirm_scale_criterion(self, caller: Caller, dimension: str) -> Expectation:
        refusals = self._guards(caller)
        if dimension not in self.scale_criteria:
            refusals.add(rule("UNKNOWN_SCALE_CRITERION"))
        expectation = self._decide(refusals)
        if expectation.accepted:
            self.scale_confirmed.add(dimension)
        return expectation

    def raise_quality_alert(
        self, caller: Caller, alert_id: str | None, raised_at: datetime
    ) -> Expectation:
        """Without an id, stagegate names the new alert (``name_anonymous_alert``)."""
        refusals = self._guards(caller)
        # Reading: an alert id that fires again after it was resolved is a new alert.
        if alert_id is not None and alert_id in self.alerts and self.alerts[alert_id].open:
            refusals.add(rule("ALERT_ALREADY_RAISED"))
        expectation = self._decide(refusals)
        if expectation.accepted:
            if alert_id is None:
                self.anonymous_alerts.append(raised_at)
            else:
                self.alerts[alert_id] = Alert(raised_at)
        return expectation

    def name_anonymous_alert(self, alert_id: str) -> None:
        assert self.anonymous_alerts, "no alert was raised without an id"
        taken = alert_id in self.alerts and self.alerts[alert_id].open
        assert not taken, f"the new alert got the id of an open alert {alert_id!r}"
        self.alerts[alert_id] = Alert(self.anonymous_alerts.pop(0))

    def resolve_quality_alert(
        self, caller: Caller, alert_id: str, resolved_at: datetime
    ) -> Expectation:
        refusals = self._guards(caller)
        alert = self.alerts.get(alert_id)
        if alert is None or not alert.open:
            refusals.add(rule("UNKNOWN_ALERT"))  # Reading: only open alerts can be resolved
        elif resolved_at < alert.raised_at:
            refusals.add(rule("RESOLVED_BEFORE_RAISED"))  # Reading: time runs forward
        expectation = self._decide(refusals)
        if expectation.accepted:
            self.alerts[alert_id].open = False
        return expectation

    def return_to_stage(self, caller: Caller, stage: str, at: datetime) -> Expectation:
        refusals = self._guards(caller)
        # SPEC: "sent back to any earlier stage (not proposed)".
        earlier = self.stage in FORWARD and stage in FORWARD[1 : FORWARD.index(self.stage)]
        if self.stage != RETIRED and not earlier:
            refusals.add(rule("INVALID_RETURN_TARGET"))
        expectation = self._decide(refusals)
        if expectation.accepted:
            self._enter(stage, at)
        return expectation

    def retire(self, caller: Caller, at: datetime) -> Expectation:
        expectation = self._decide(self._guards(caller))
        if expectation.accepted:
            self._enter(RETIRED, at)
        return expectation

    def stale_write(self, expectation_if_current: Expectation) -> Expectation:
        """A command sent with an expected version that is not the current one."""
        return Expectation(expectation_if_current.refusals | {CONFLICT})

    def _enter(self, stage: str, at: datetime) -> None:
        self.stage = stage
        if stage == DEPLOYMENT:
            self.reached_deployment = True
            self.entered_deployment_at = at
