"""A randomised, reproducible workload for the read side, and a dump of every read-model row.

``Workload(app, seed).run(...)`` drives many use cases through the real commands, interleaved
the way a real log is: registrations, priority scores, owners (changed now and then), workflows,
criteria, baselines, candidate versions, passing and failing evaluations, sign-offs, readiness,
stage advances, deployments (production and not), change requests and approvals, rollbacks,
after-state measurements, adoption, inference costs, quality alerts raised and resolved,
corrections, returns to earlier stages, retirements and a few policy changes. The same seed
gives the same sequence of commands on any store.

``dump_read_models(db)`` returns every row of every read-model table as plain values, sorted,
so two dumps compare with ``==`` and a difference can be shown row by row.
"""

from __future__ import annotations

import contextlib
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from domain import commands as c
from domain.application import Stagegate
from domain.clock import clock_set_to
from domain.errors import DomainError
from domain.gates import RequirementCode, gate_status
from domain.improvement import improvements
from domain.metadata import Actor, CommandContext
from domain.usecase import UseCase
from domain.values import Channel, OwnerRole, Role, Stage
from infra.bootstrap import Services
from infra.database import Database
from infra.readmodels import schema
from tests.builders import (
    ADMIN,
    APPROVER_ACTOR,
    BASELINE_METRIC,
    EDITOR,
    FAILING_RESULTS,
    PASSING_RESULTS,
    TECH,
    Journey,
    days_ago,
)

R = RequirementCode

BUSINESS_UNITS = ("Finance", "Operations", "Customer Service", "Legal", "HR", None)
BUSINESS_PEOPLE = (
    {"id": "bob.business@example.com", "name": "Bob Business", "team": "Operations"},
    {"id": "fay.finance@example.com", "name": "Fay Finance", "team": "Finance"},
    {"id": "cy.service@example.com", "name": "Cy Service", "team": "Customer Service"},
    {"id": "lou.legal@example.com", "name": "Lou Legal", "team": "Legal"},
)
TECHNICAL_PEOPLE = (
    TECH,
    {"id": "alan.ai@example.com", "name": "Alan AI", "team": "AI Platform"},
    {"id": "nina.ml@example.com", "name": "Nina ML", "team": "AI Platform"},
)
MONITORING_PEOPLE = (
    {"id": "mo.monitor@example.com", "name": "Mo Monitor", "team": "ML Operations"},
    {"id": "sam.sre@example.com", "name": "Sam SRE", "team": "ML Operations"},
)
EXTRA_METRICS = ("error_rate", "cost_per_case")
SOURCES = ("urn:eval-harness", "urn:cd-pipeline", "urn:monitoring", "urn:bi")
LATEST_BUSINESS_TIME = datetime.now(UTC) - timedelta(days=2)
"""No journey's clock moves past this, so every business time it reports is in the past."""


@dataclass
class WorkloadStats:
    """What a run did, so a test can check the workload really covered the read models."""

    commands: Counter[str] = field(default_factory=Counter)
    """Accepted commands by class name (policy changes as ``SetPolicy``)."""
    refused: Counter[str] = field(default_factory=Counter)
    """Commands the domain refused (a random move that did not apply); nothing was written."""
    stages_reached: Counter[str] = field(default_factory=Counter)
    batches: int = 0

    @property
    def accepted(self) -> int:
        return sum(self.commands.values())


class Workload:
    """Drives many use cases at random, interleaved, through ``Stagegate.execute``."""

    def __init__(self, app: Stagegate, seed: int, key_prefix: str = "wl") -> None:
        self.app = app
        self.seed = seed
        self.rng = random.Random(seed)
        self.key_prefix = key_prefix
        self.journeys: list[Journey] = []
        self.active: list[Journey] = []
        self.stats = WorkloadStats()
        self._versions: dict[str, int] = {}
        self._deliveries = 0
        self.retirements = True
        self.policy = app.policy()

    # --- running ---------------------------------------------------------------------------

    def run(
        self,
        commands: int,
        use_cases: int,
        after_batch: Callable[[], object] | None = None,
        batch_size: tuple[int, int] = (5, 60),
        policy_changes: int = 2,
        retirements: bool = True,
    ) -> WorkloadStats:
        """Issue about ``commands`` accepted commands over ``use_cases`` new use cases.

        ``after_batch`` runs after every batch of a random size in ``batch_size`` (and once
        at the end), e.g. to keep the projections current inline. ``policy_changes`` policy
        changes fall at random points; ``retirements=False`` retires nothing in this run.
        """
        self.retirements = retirements
        rng = self.rng
        target_registrations = len(self.journeys) + use_cases
        policy_at = sorted(rng.sample(range(commands // 10, commands), policy_changes))
        next_batch = rng.randint(*batch_size)
        done = attempts = 0
        while done < commands:
            attempts += 1
            if attempts > commands * 20:
                raise AssertionError(f"workload stalled: {self.stats}")
            before = self.stats.accepted
            if policy_at and done >= policy_at[0]:
                policy_at.pop(0)
                self.change_policy()
            elif len(self.journeys) < target_registrations and (
                not self.active or rng.random() < 0.25
            ):
                self.register()
            elif self.active:
                self.step(rng.choice(self.active))
            else:  # every use case retired and no more to register: start another
                target_registrations += 1
            accepted = self.stats.accepted - before
            done += accepted
            next_batch -= accepted
            if next_batch <= 0 and after_batch is not None:
                after_batch()
                self.stats.batches += 1
                next_batch = rng.randint(*batch_size)
        if after_batch is not None:
            after_batch()
            self.stats.batches += 1
        return self.stats

    # --- issuing ---------------------------------------------------------------------------

    def issue(
        self,
        journey: Journey,
        command_class: type[c.Command],
        actor: Actor = EDITOR,
        channel: Channel = Channel.GRAPHQL,
        **fields: Any,
    ) -> UseCase | None:
        """Run one command on the journey's clock; None (and nothing written) if refused."""
        fields.setdefault("key", journey.key)
        journey.now += timedelta(minutes=1)
        source = delivery = None
        if channel is Channel.CLOUDEVENTS:
            self._deliveries += 1
            source = self.rng.choice(SOURCES)
            delivery = f"delivery-{self.seed}-{self._deliveries}"
        context = CommandContext(
            actor=actor,
            channel=channel,
            correlation_id=f"wl-{self.seed}-{self.stats.accepted}-{self.rng.randrange(10**9)}",
            source=source,
            delivery_id=delivery,
            delivery_fingerprint=None if delivery is None else f"sha256:{delivery}",
        )
        name = command_class.__name__
        try:
            with clock_set_to(lambda: journey.now):
                use_case = self.app.execute(command_class.parse(fields), context)
        except DomainError:
            self.stats.refused[name] += 1
            return None
        self.stats.commands[name] += 1
        if isinstance(journey, _WorkloadJourney):
            journey.current = use_case
        if name in ("AdvanceStage", "ReturnToStage", "Retire", "RegisterUseCase"):
            self.stats.stages_reached[use_case.state.stage.value] += 1
        return use_case

    def integration(self) -> dict[str, Any]:
        """Half the evidence arrives from integrations over CloudEvents, half from people."""
        if self.rng.random() < 0.5:
            return {
                "actor": Actor(id="integration:ci", role=Role.INTEGRATION),
                "channel": Channel.CLOUDEVENTS,
            }
        return {}

    def money(self, low: int, high: int) -> str:
        return f"{self.rng.randint(low, high)}.{self.rng.randint(0, 99):02d}"

    # --- moves -----------------------------------------------------------------------------

    def register(self) -> None:
        index = len(self.journeys)
        journey = _WorkloadJourney(self, key=f"{self.key_prefix}-{self.seed}-{index}")
        journey.now = days_ago(400) + timedelta(days=self.rng.uniform(0, 120))
        unit = self.rng.choice(BUSINESS_UNITS)
        fields: dict[str, Any] = {"title": f"Use case {index} of workload {self.seed}"}
        if unit is not None:
            fields["business_unit"] = unit
        if self.rng.random() < 0.3:
            fields["description"] = f"Described at length, number {index}."
        # Like a real portfolio, many use cases stall early; some go all the way.
        journey.ambition = self.rng.choices(
            (Stage.PROPOSED, Stage.PILOT, Stage.ACCEPTANCE, Stage.MEASUREMENT, Stage.SCALE),
            weights=(1, 1, 1, 1, 3),
        )[0]
        self.journeys.append(journey)
        if self.issue(journey, c.RegisterUseCase, **fields) is not None:
            self.active.append(journey)

    def change_policy(self) -> None:
        rng = self.rng
        values = {
            "measurement_window_days": rng.choice((30, 45, 60, 75)),
            "min_adoption": rng.choice((0.3, 0.5, 0.6, 0.75)),
            "min_priority_score": rng.choice((1, 2, 3)),
            "stuck_after_days": rng.choice((14, 30, 45)),
            "reason": "Quarterly policy review",
        }
        chosen = dict(rng.sample(sorted(values.items()), rng.randint(1, 4)))
        if set(chosen) == {"reason"}:
            chosen["min_adoption"] = values["min_adoption"]
        context = CommandContext(
            actor=ADMIN, channel=Channel.CLI, correlation_id=f"wl-{self.seed}-policy"
        )
        self.policy = self.app.set_policy(c.SetPolicy.parse(chosen), context)
        self.stats.commands["SetPolicy"] += 1

    def step(self, journey: Journey) -> None:
        state = journey.use_case.state
        stage = state.stage
        moves: list[tuple[float, Callable[[Journey], None]]] = [
            (10.0, self.progress),
            (0.5, self.score),
            (0.5, self.reassign),
            (0.8, self.adoption),
            (0.8, self.cost),
            (0.6, self.raise_alert),
            (0.3, self.wait),
        ]
        if state.open_quality_alerts:
            moves.append((1.2, self.resolve_alert))
        if state.candidate_version is not None:
            moves.append((0.6, self.evaluate))
            moves.append((0.3, self.staging_deployment))
        if stage in (Stage.PROPOSED, Stage.PILOT, Stage.ACCEPTANCE):
            moves.append((0.4, self.extra_baseline))
        if state.first_production_deployment_at is not None and state.baselines:
            moves.append((1.0, self.measure))
        if state.production_version is not None:
            moves.append((1.5, self.change))
            moves.append((0.6, self.roll_back))
        if stage.rank >= Stage.ACCEPTANCE.rank:
            moves.append((0.25, self.return_to_stage))
        if self.retirements:
            moves.append((0.12, self.retire))
        weights = [w for w, _ in moves]
        move = self.rng.choices([m for _, m in moves], weights=weights)[0]
        move(journey)

    def progress(self, journey: Journey) -> None:
        """Satisfy one unmet requirement of the next gate, or advance through it."""
        use_case = journey.use_case
        gate = gate_status(use_case.state, self.policy, journey.now)
        ambition = getattr(journey, "ambition", Stage.SCALE)
        if use_case.state.stage.rank >= ambition.rank:
            gate = replace(gate, next=None)  # as far as this one goes
        if gate.next is None:  # as far as it goes: run it, measure it, change it
            moves = [self.score, self.reassign, self.cost, self.adoption]
            if use_case.state.production_version is not None:
                moves += [self.value_statement, self.measure, self.change]
            self.rng.choice(moves)(journey)
            return
        if not gate.unmet:
            self.issue(journey, c.AdvanceStage, to=gate.next.value)
            return
        code = self.rng.choice(gate.unmet).code
        if code is R.VALUE_STATEMENT:
            self.value_statement(journey)
        elif code is R.AFTER_STATE_MEASURED:
            self.after_state(journey)
        elif code is R.IMPROVEMENT_SHOWN:
            self.improvement(journey)
        elif code is R.DEPLOYED:
            self.deploy_signed_off(journey)
        elif code is R.PRIORITY_SCORED:
            self.score(journey, floor=3)
        else:
            with contextlib.suppress(_Refused):  # counted; a later move may make it possible
                journey.satisfy(code)

    def score(self, journey: Journey, floor: int = 1) -> None:
        def dimension(name: str) -> dict[str, Any]:
            return {"score": self.rng.randint(floor, 5), "rationale": f"{name} judged"}

        self.issue(
            journey,
            c.ScorePriority,
            leverage=dimension("leverage"),
            feasibility=dimension("feasibility"),
            readiness=dimension("readiness"),
        )

    def reassign(self, journey: Journey) -> None:
        role = self.rng.choice(list(OwnerRole))
        people = {
            OwnerRole.BUSINESS: BUSINESS_PEOPLE,
            OwnerRole.TECHNICAL: TECHNICAL_PEOPLE,
            OwnerRole.MONITORING: MONITORING_PEOPLE,
        }[role]
        self.issue(journey, c.AssignOwner, role=role.value, person=self.rng.choice(people))

    def value_statement(self, journey: Journey) -> None:
        business = journey.use_case.state.owner(OwnerRole.BUSINESS)
        if business is None:
            self.issue(journey, c.AssignOwner, role="business", person=BUSINESS_PEOPLE[0])
            return
        fields: dict[str, Any] = {"statement": "Cases are handled in half the time they were."}
        if self.rng.random() < 0.7:
            fields["estimated_annual_value"] = self.money(1_000, 900_000)
            fields["currency"] = self.rng.choice(("EUR", "USD"))
        self.issue(journey, c.StateValue, actor=Actor(id=business.id, role=Role.EDITOR), **fields)

    def after_state(self, journey: Journey) -> None:
        state = journey.use_case.state
        first = state.first_production_deployment_at
        assert first is not None
        window = self.policy.values.measurement_window_days
        # Too late to measure that far out: the measurement is taken, but does not count.
        journey.now = max(
            journey.now, min(first + timedelta(days=window + 1), LATEST_BUSINESS_TIME)
        )
        for metric in state.baselines:
            self.issue(
                journey,
                c.RecordMeasurement,
                **self.integration(),
                metric=metric,
                value=round(self.rng.uniform(1, 20), 2),
                measured_at=journey.now,
            )

    def deploy_signed_off(self, journey: Journey) -> None:
        state = journey.use_case.state
        label = state.sign_off.version if state.sign_off else state.candidate_version
        self.issue(
            journey,
            c.RecordDeployment,
            **self.integration(),
            version=label,
            deployed_at=journey.now,
        )

    def adoption(self, journey: Journey) -> None:
        target = self.rng.randint(10, 500)
        self.issue(
            journey,
            c.RecordAdoption,
            **self.integration(),
            active_users=self.rng.randint(0, target),
            target_users=target,
            measured_at=journey.now - timedelta(hours=self.rng.randint(0, 48)),
        )

    def cost(self, journey: Journey) -> None:
        end = journey.now - timedelta(hours=self.rng.randint(0, 72))
        start = end - timedelta(days=self.rng.choice((1, 7, 30)))
        self.issue(
            journey,
            c.RecordInferenceCost,
            **self.integration(),
            period_start=start,
            period_end=end,
            amount=self.money(0, 600),  # mostly within the 1,000 EUR monthly budget
            currency=self.rng.choice(("EUR", "EUR", "USD")),
        )

    def raise_alert(self, journey: Journey) -> None:
        fields: dict[str, Any] = {}
        if self.rng.random() < 0.5:
            fields["alert_id"] = f"mon-{self.rng.randint(1, 6)}"
        self.issue(
            journey,
            c.RaiseQualityAlert,
            **self.integration(),
            severity=self.rng.choice(("low", "medium", "high", "critical")),
            description="Output quality dropped below the monitoring threshold.",
            raised_at=journey.now,
            **fields,
        )

    def resolve_alert(self, journey: Journey) -> None:
        alerts = sorted(journey.use_case.state.open_quality_alerts)
        self.issue(
            journey,
            c.ResolveQualityAlert,
            **self.integration(),
            alert_id=self.rng.choice(alerts),
            resolution="Fixed upstream and verified.",
            resolved_at=journey.now,
        )

    def wait(self, journey: Journey) -> None:
        later = journey.now + timedelta(days=self.rng.uniform(0.5, 12))
        journey.now = max(journey.now, min(later, days_ago(40)))  # never back, never too late

    def evaluate(self, journey: Journey) -> None:
        state = journey.use_case.state
        version = self.rng.choice(sorted(state.versions))
        results = PASSING_RESULTS if self.rng.random() < 0.6 else FAILING_RESULTS
        fields: dict[str, Any] = {}
        if self.rng.random() < 0.15 and journey.use_case.version > 2:
            fields["corrects"] = self.rng.randint(1, journey.use_case.version)
        self.issue(
            journey,
            c.RecordEvaluation,
            **self.integration(),
            version=version,
            results=results,
            evaluated_at=journey.now,
            harness="harness-1",
            **fields,
        )

    def staging_deployment(self, journey: Journey) -> None:
        version = self.rng.choice(sorted(journey.use_case.state.versions))
        self.issue(
            journey,
            c.RecordDeployment,
            **self.integration(),
            version=version,
            environment="staging",
            deployed_at=journey.now,
        )

    def improvement(self, journey: Journey) -> None:
        """After-states a fifth better than their baselines, for the metrics that fall short."""
        for judged in improvements(journey.use_case.state, self.policy.values):
            if judged.counts:
                continue
            baseline = judged.baseline
            better = 0.8 if baseline.direction.value == "lower_is_better" else 1.2
            self.issue(
                journey,
                c.RecordMeasurement,
                **self.integration(),
                metric=baseline.metric,
                value=round(baseline.value * better, 2),
                measured_at=journey.now,
            )

    def extra_baseline(self, journey: Journey) -> None:
        self.issue(
            journey,
            c.CaptureBaseline,
            **self.integration(),
            baseline={
                "metric": self.rng.choice((BASELINE_METRIC, *EXTRA_METRICS)),
                "unit": "units",
                "value": round(self.rng.uniform(1, 50), 2),
                "direction": self.rng.choice(("lower_is_better", "higher_is_better")),
                "measured_at": journey.now - timedelta(days=1),
                "method": "sampled by hand",
            },
        )

    def measure(self, journey: Journey) -> None:
        state = journey.use_case.state
        if not state.baselines:
            self.adoption(journey)
            return
        fields: dict[str, Any] = {}
        if self.rng.random() < 0.2:
            fields["corrects"] = journey.use_case.version
        self.issue(
            journey,
            c.RecordMeasurement,
            **self.integration(),
            metric=self.rng.choice(sorted(state.baselines)),
            value=round(self.rng.uniform(1, 20), 2),
            measured_at=journey.now,
            method="weekly sample",
            **fields,
        )

    def change(self, journey: Journey) -> None:
        """Change management end to end: request, evaluate, approve, deploy (some stop early)."""
        key = journey.key
        number = self._versions[key] = self._versions.get(key, 1) + 1
        label = f"v{number}"
        requested = self.issue(
            journey,
            c.RequestChange,
            to_version={"label": label, "model": "gpt-x", "prompt": f"prompt-{number}"},
            reason="Cheaper model with the same quality.",
        )
        if requested is None or self.rng.random() < 0.2:
            return
        passing = self.rng.random() < 0.8
        self.issue(
            journey,
            c.RecordEvaluation,
            **self.integration(),
            version=label,
            results=PASSING_RESULTS if passing else FAILING_RESULTS,
            evaluated_at=journey.now,
        )
        change_number = len(journey.use_case.state.changes)
        if self.issue(journey, c.ApproveChange, actor=APPROVER_ACTOR, change_number=change_number):
            self.issue(
                journey,
                c.RecordDeployment,
                **self.integration(),
                version=label,
                deployed_at=journey.now,
            )

    def roll_back(self, journey: Journey) -> None:
        self.issue(
            journey,
            c.RollBack,
            **self.integration(),
            reason="Error rate doubled after the release.",
            rolled_back_at=journey.now,
        )

    def return_to_stage(self, journey: Journey) -> None:
        stage = journey.use_case.state.stage
        earlier = [
            s
            for s in (Stage.PILOT, Stage.ACCEPTANCE, Stage.DEPLOYMENT, Stage.MEASUREMENT)
            if s.rank < stage.rank
        ]
        self.issue(
            journey,
            c.ReturnToStage,
            stage=self.rng.choice(earlier).value,
            reason="The evidence needs another look.",
        )

    def retire(self, journey: Journey) -> None:
        if self.issue(journey, c.Retire, reason="No longer a priority.") is not None:
            self.active.remove(journey)


class _Refused(Exception):
    """A command ``Journey.satisfy`` issued was refused (counted already)."""


class _WorkloadJourney(Journey):
    """A journey whose commands (``satisfy`` included) go through the workload's ``issue``."""

    def __init__(self, workload: Workload, key: str) -> None:
        super().__init__(workload.app, key)
        self.workload = workload
        self.ambition = Stage.SCALE
        """The stage this use case is going for; it stops there."""
        self.current: UseCase | None = None
        """The use case after this journey's last accepted command (only this journey writes it)."""

    @property
    def use_case(self) -> UseCase:
        if self.current is None:
            self.current = self.app.use_case(self.key)
        return self.current

    def issue(
        self, command_class: type[c.Command], actor: Actor = EDITOR, **fields: Any
    ) -> UseCase:
        result = self.workload.issue(self, command_class, actor=actor, **fields)
        if result is None:
            raise _Refused(command_class.__name__)
        return result


# --- reading the read models back ------------------------------------------------------------

READ_MODEL_TABLES = tuple(table for name in schema.PROJECTIONS for table in schema.tables_of(name))
"""Every table a projection writes (a new one is compared and reset as soon as it is added)."""

Rows = dict[str, list[tuple[tuple[str, Any], ...]]]


def _plain(value: Any) -> Any:
    """The same value from either driver as the same plain Python value."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (bytes, memoryview)):
        return bytes(value)
    return value


def _sort_key(row: tuple[tuple[str, Any], ...]) -> tuple[Any, ...]:
    return tuple((value is not None, value if value is not None else 0) for _, value in row)


NOT_FROM_THE_LOG = {"judged_at"}
"""Columns that say when a row was written, not what the log holds: a rebuild writes them anew."""


def dump_read_models(db: Database) -> Rows:
    """Every row of every read-model table: {table: sorted rows of (column, value) pairs}."""
    dump: Rows = {}
    with db.transaction() as curs:
        for table in READ_MODEL_TABLES:
            curs.execute(f"SELECT * FROM {db.table(table)}")
            rows = [
                tuple(
                    sorted(
                        (column, _plain(value))
                        for column, value in row.items()
                        if column not in NOT_FROM_THE_LOG
                    )
                )
                for row in curs.fetchall()
            ]
            dump[table] = sorted(rows, key=_sort_key)
    return dump


def read_models_as_read(services: Services) -> Rows:
    """``dump_read_models`` as a reader is answered: a summary judged in an earlier month
    (the workload's clock is months back) is judged again, now, first."""
    services.read_models.judge_again_if_the_month_turned(recheck=True)
    return dump_read_models(services.database)


def positions(db: Database) -> dict[str, int]:
    """Each read-model projection's position (the webhook fan-out keeps its own row beside)."""
    with db.transaction() as curs:
        curs.execute(f"SELECT projection, position FROM {db.table(schema.POSITIONS)}")
        return {
            row["projection"]: int(row["position"])
            for row in curs.fetchall()
            if row["projection"] in schema.PROJECTIONS
        }


def log_notification_ids(db: Database, app: Stagegate) -> list[int]:
    """The notification id of every event in the log, in order."""
    number = "notification_id" if db.is_postgres else "rowid"
    events = db.table(app.recorder.events_table_name)  # type: ignore[attr-defined]
    with db.transaction() as curs:
        curs.execute(f"SELECT {number} AS n FROM {events} ORDER BY {number}")
        return [int(row["n"]) for row in curs.fetchall()]


def log_event_types(db: Database, app: Stagegate) -> Counter[str]:
    """How many events of each type the log holds (by the last part of the topic)."""
    events = db.table(app.recorder.events_table_name)  # type: ignore[attr-defined]
    with db.transaction() as curs:
        curs.execute(f"SELECT topic FROM {events}")
        return Counter(str(row["topic"]).rsplit(".", 1)[-1] for row in curs.fetchall())


def reset_read_models(db: Database) -> None:
    """Empty every read model and move every position back to 0 (as a fresh install has)."""
    with db.transaction() as curs:
        for table in READ_MODEL_TABLES:
            curs.execute(f"DELETE FROM {db.table(table)}")
        curs.execute(f"UPDATE {db.table(schema.POSITIONS)} SET position = 0")


def describe_differences(expected: Rows, actual: Rows, limit: int = 6) -> str:
    """The first rows that differ between two dumps, table by table, for a failure message."""
    lines = []
    for table in READ_MODEL_TABLES:
        want, got = expected.get(table, []), actual.get(table, [])
        if want == got:
            continue
        missing = [row for row in want if row not in got]
        extra = [row for row in got if row not in want]
        lines.append(
            f"{table}: {len(want)} rows expected, {len(got)} found; "
            f"{len(missing)} missing, {len(extra)} unexpected"
        )
        for label, rows in (("missing", missing), ("unexpected", extra)):
            for row in rows[:limit]:
                lines.append(f"  {label}: {_short(row)}")
        if missing and extra:
            lines.append(f"  first differing columns: {_column_diff(missing[0], extra, table)}")
    return "\n".join(lines) or "no differences"


def _short(row: tuple[tuple[str, Any], ...]) -> str:
    return ", ".join(
        f"{column}={str(value)[:60]!s}" for column, value in row if column != "state_json"
    )


def _column_diff(row: tuple[tuple[str, Any], ...], candidates: list[Any], table: str) -> str:
    key_column = {schema.SUMMARIES: "id", schema.HISTORY: "notification_id"}.get(table)
    wanted = dict(row)
    for candidate in candidates:
        other = dict(candidate)
        if key_column is None or other.get(key_column) == wanted.get(key_column):
            diffs = [
                f"{column}: {str(wanted[column])[:200]!r} != {str(other.get(column))[:200]!r}"
                for column in wanted
                if wanted[column] != other.get(column)
            ]
            return "; ".join(diffs)
    return "no row with the same key"
