"""Fill a database with a realistic portfolio: N use cases, about M events, fast.

    python bench/generate.py postgresql://postgres@127.0.0.1:5432/DBNAME \\
        --use-cases 100000 --events 2000000 [--long-events 10000] [--workers 2] [--create]

Every event is produced by the real commands (``Command.parse(...)`` then ``execute`` on the
aggregate, the rules and gates checked as in ``Stagegate``), on a simulated server clock
(``domain.clock.clock_set_to``), so timestamps span the last three years. For speed the
aggregates are built in memory, a cohort at a time, and each cohort's events are interleaved
in time order and appended with ``app.save(*events)`` in large batches (one transaction each,
the hash-chain trigger computing every hash as in production); snapshots are taken in memory
every ``snapshot_interval`` events, exactly where the application would take them. Cohorts
are built by ``--workers`` processes in parallel (appends still serialise on the table lock).

The mix: a quarter of the use cases stay proposed, the rest climb the stages; some are sent
back or retired; those in production report inference cost, adoption, measurements, quality
alerts and changes (evaluated, approved, deployed) until the event budget is spent. A few
policy changes are interleaved. With ``--long-events`` one more use case ("long-lived") gets
that many events (for ``asOf``). The read models are not touched: rebuild them afterwards
(``bench/readside.py rebuild``).
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
from psycopg import sql

from domain import clock
from domain import commands as c
from domain.application import Stagegate
from domain.metadata import Actor, CommandContext
from domain.policy import PolicyInForce
from domain.usecase import UseCase
from domain.values import FORWARD_STAGES, Channel, Role, Stage
from infra import chain, deliveries, outbox
from infra.bootstrap import bootstrap
from infra.database import database_of
from infra.settings import Settings

NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
YEAR = timedelta(days=365)
COHORT = 2_000
SAVE_BATCH = 5_000

UNITS = [
    ("Finance", "finance"),
    ("Claims", "claims"),
    ("Customer Service", "service"),
    ("Legal", "legal"),
    ("Procurement", "procurement"),
    ("HR", "hr"),
    ("Sales", "sales"),
    ("Risk", "risk"),
    ("Compliance", "compliance"),
    ("Operations", "ops"),
    ("Marketing", "marketing"),
    ("IT", "it"),
]
SUBJECTS = [
    ("Invoice triage", "invoice-triage"),
    ("Claims summarisation", "claims-summaries"),
    ("Contract clause extraction", "contract-clauses"),
    ("Support reply drafting", "support-replies"),
    ("Demand forecast", "demand-forecast"),
    ("Policy assistant", "policy-assistant"),
    ("Call notes", "call-notes"),
    ("Fraud alert explainer", "fraud-explainer"),
    ("Spend classifier", "spend-classifier"),
    ("Document check", "document-check"),
    ("Email routing", "email-routing"),
    ("Churn signals", "churn-signals"),
]
METRICS = [
    ("handling_minutes", "minutes", "lower_is_better"),
    ("first_time_right", "percent", "higher_is_better"),
    ("cost_per_case", "EUR", "lower_is_better"),
]
CRITERIA = [
    {"metric": "accuracy", "comparator": "gte", "threshold": 0.9},
    {"metric": "latency_s", "comparator": "lte", "threshold": 2.0},
]
READINESS = (
    "repeatable_deployment",
    "quality_monitoring",
    "data_pipeline_checks",
    "cost_tracking",
    "rollback_plan",
)


def _people(prefix: str, team: str | None, count: int) -> list[dict[str, str]]:
    return [
        {
            "id": f"{prefix}{i:03d}@example.com",
            "name": f"{prefix.title()} {i}",
            **({"team": team} if team else {}),
        }
        for i in range(count)
    ]


AI_TEAM = _people("engineer", "AI Platform", 40)
MONITORS = _people("monitor", "ML Operations", 20)
APPROVERS = _people("approver", "AI Governance", 25)
BUSINESS = {unit: _people(f"{slug}.owner", f"{unit} Operations", 25) for unit, slug in UNITS}
EDITORS = [Actor(id=p["id"], role=Role.EDITOR) for p in AI_TEAM]

# Target share of use cases per final stage (retired ones retire from anywhere).
STAGE_MIX = [
    (Stage.PROPOSED, 0.25),
    (Stage.PILOT, 0.20),
    (Stage.ACCEPTANCE, 0.15),
    (Stage.DEPLOYMENT, 0.10),
    (Stage.MEASUREMENT, 0.12),
    (Stage.SCALE, 0.08),
    (Stage.RETIRED, 0.10),
]


@dataclass
class Journey:
    """One use case being built in memory, with its own timeline."""

    use_case: UseCase
    unit: str
    now: datetime
    business: dict[str, str] | None = None
    technical: dict[str, str] | None = None
    approver: dict[str, str] | None = None
    deployed_at: datetime | None = None
    labels: int = 0
    metric: str = "handling_minutes"
    baseline: float = 20.0
    lower_is_better: bool = True
    snapshots: list[Any] = field(default_factory=list)


class Generator:
    def __init__(self, seed: int, policy: PolicyInForce, snapshot_interval: int) -> None:
        self.rng = random.Random(seed)
        self.policy = policy
        self.snapshot_interval = snapshot_interval
        self.t = NOW  # the simulated server clock, read by domain.clock.now()
        self.correlation = 0

    # --- issuing commands on an in-memory aggregate ----------------------------------------

    def ctx(self, actor: Actor, channel: Channel = Channel.GRAPHQL) -> CommandContext:
        self.correlation += 1
        if channel is Channel.CLOUDEVENTS:
            delivery = f"delivery-{self.rng.getrandbits(64):016x}"
            return CommandContext(
                actor=actor,
                channel=channel,
                correlation_id=f"gen-{self.correlation}",
                source="https://ci.example.com/pipelines",
                delivery_id=delivery,
                delivery_fingerprint=f"sha256:{delivery}",
            )
        return CommandContext(
            actor=actor, channel=channel, correlation_id=f"gen-{self.correlation}"
        )

    def step(self, j: Journey, low_hours: float = 0.2, high_hours: float = 72.0) -> None:
        j.now += timedelta(hours=self.rng.uniform(low_hours, high_hours))

    def issue(
        self,
        j: Journey,
        command_class: type[c.UseCaseCommand],
        actor: Actor | None = None,
        channel: Channel = Channel.GRAPHQL,
        **fields: Any,
    ) -> bool:
        """Run a command on the aggregate at the journey's time; False if it ran past now."""
        if j.now > NOW:
            return False
        fields["key"] = j.use_case.state.key
        command = command_class.parse(fields)
        context = self.ctx(actor or self.rng.choice(EDITORS), channel)
        self.t = j.now
        command.execute(j.use_case, context.meta(reason=command.reason_text), self.policy)
        if j.use_case.version % self.snapshot_interval == 0:
            j.snapshots.append(UseCase.Snapshot.take(j.use_case))
        return True

    # --- a use case's life -----------------------------------------------------------------

    def register(self, key: str, title: str, unit: str, start: datetime) -> Journey:
        self.t = start
        context = self.ctx(self.rng.choice(EDITORS))
        command = c.RegisterUseCase.parse(
            {
                "key": key,
                "title": title,
                "businessUnit": unit,
                "description": f"{title} for {unit}: let the model draft, people decide.",
            }
        )
        use_case = UseCase.register(
            command.key, command.title, command.description, command.business_unit, context.meta()
        )
        return Journey(use_case=use_case, unit=unit, now=start)

    def to_pilot(self, j: Journey) -> bool:
        r = self.rng
        self.step(j)
        self.issue(
            j,
            c.ScorePriority,
            **{
                dim: {"score": r.randint(1, 5), "rationale": f"{dim} judged in the intake review"}
                for dim in ("leverage", "feasibility", "readiness")
            },
        )
        j.technical = r.choice(AI_TEAM)
        self.step(j)
        self.issue(j, c.AssignOwner, role="technical", person=j.technical)
        self.step(j, 24, 24 * 20)
        return self.issue(j, c.AdvanceStage, to="pilot")

    def to_acceptance(self, j: Journey) -> bool:
        r = self.rng
        j.business = r.choice(BUSINESS[j.unit])
        self.step(j)
        self.issue(j, c.AssignOwner, role="business", person=j.business)
        self.step(j)
        self.issue(
            j,
            c.SpecifyWorkflow,
            workflow={
                "steps": [
                    {"description": "Model drafts", "performed_by_role": "system"},
                    {"description": "Clerk reviews", "performed_by_role": "clerk"},
                    {
                        "description": "Unclear cases to the supervisor",
                        "performed_by_role": "supervisor",
                        "handles_exceptions": True,
                    },
                ],
                "escalation_path": [j.business, j.technical],
            },
        )
        j.approver = r.choice(APPROVERS)
        self.step(j)
        self.issue(j, c.DefineAcceptanceCriteria, criteria=CRITERIA, approver=j.approver)
        self.step(j, 24, 24 * 30)
        return self.issue(j, c.AdvanceStage, to="acceptance")

    def new_label(self, j: Journey) -> str:
        j.labels += 1
        return f"v{j.labels}"

    def evaluate(self, j: Journey, label: str, passing: bool, hours: float = 48) -> None:
        self.step(j, hours / 48, hours)
        accuracy = self.rng.uniform(0.91, 0.99) if passing else self.rng.uniform(0.7, 0.89)
        self.issue(
            j,
            c.RecordEvaluation,
            actor=Actor(id="eval-harness", role=Role.INTEGRATION),
            channel=Channel.CLOUDEVENTS,
            version=label,
            results=[
                {"name": "accuracy", "value": round(accuracy, 3)},
                {"name": "latency_s", "value": round(self.rng.uniform(0.4, 1.9), 2)},
            ],
            evaluatedAt=j.now,
            harness="evalkit",
            dataset="golden-set-2",
        )

    def to_deployment(self, j: Journey) -> bool:
        r = self.rng
        metric, unit, direction = r.choice(METRICS)
        j.metric = metric
        j.baseline = round(r.uniform(5, 50), 1)
        j.lower_is_better = direction == "lower_is_better"
        self.step(j)
        self.issue(
            j,
            c.CaptureBaseline,
            baseline={
                "metric": metric,
                "unit": unit,
                "value": j.baseline,
                "direction": direction,
                "measured_at": j.now - timedelta(days=1),
                "method": "time study over two weeks",
            },
        )
        label = self.new_label(j)
        self.step(j)
        self.issue(
            j,
            c.RegisterCandidateVersion,
            version={
                "label": label,
                "model": r.choice(["gpt-x", "claude-y", "llama-z"]),
                "prompt": f"prompt revision {r.randint(1, 40)}",
            },
        )
        if r.random() < 0.4:
            self.evaluate(j, label, passing=False)
        self.evaluate(j, label, passing=True)
        self.step(j)
        assert j.approver is not None
        self.issue(
            j,
            c.SignOffAcceptance,
            actor=Actor(id=j.approver["id"], role=Role.APPROVER),
            comment="meets the criteria on the golden set",
        )
        for item in READINESS:
            extra = {"monthlyBudget": "1500", "currency": "EUR"} if item == "cost_tracking" else {}
            self.step(j, 0.5, 48)
            self.issue(
                j, c.ConfirmReadiness, item=item, evidence=f"runbook section for {item}", **extra
            )
        self.step(j)
        self.issue(j, c.AssignOwner, role="monitoring", person=r.choice(MONITORS))
        self.step(j, 24, 24 * 20)
        return self.issue(j, c.AdvanceStage, to="deployment")

    def to_measurement(self, j: Journey) -> bool:
        self.step(j, 1, 24 * 7)
        j.deployed_at = j.now
        self.issue(
            j,
            c.RecordDeployment,
            actor=Actor(id="cd-pipeline", role=Role.INTEGRATION),
            channel=Channel.CLOUDEVENTS,
            version=f"v{j.labels}",
            deployedAt=j.now,
        )
        self.step(j, 1, 48)
        return self.issue(j, c.AdvanceStage, to="measurement")

    def to_scale(self, j: Journey) -> bool:
        r = self.rng
        assert j.deployed_at is not None
        assert j.business is not None
        j.now = max(j.now, j.deployed_at + timedelta(days=61))
        # Better than the baseline in its direction (IMPROVEMENT_SHOWN).
        better = r.uniform(0.4, 0.9) if j.lower_is_better else r.uniform(1.1, 1.8)
        self.issue(
            j,
            c.RecordMeasurement,
            metric=j.metric,
            value=round(j.baseline * better, 1),
            measuredAt=j.now,
            method="time study",
        )
        self.step(j)
        self.issue(
            j, c.RecordAdoption, activeUsers=r.randint(60, 100), targetUsers=100, measuredAt=j.now
        )
        self.step(j)
        self.issue(
            j,
            c.StateValue,
            actor=Actor(id=j.business["id"], role=Role.EDITOR),
            statement="Cases are handled in a third of the time, errors halved.",
            estimatedAnnualValue=str(r.randint(20, 900) * 1000),
            currency="EUR",
        )
        self.step(j)
        self.issue(
            j,
            c.DefineScaleCriteria,
            criteria=[{"dimension": "volume", "target": "50k cases/month"}],
        )
        self.step(j)
        self.issue(j, c.ConfirmScaleCriterion, dimension="volume", evidence="load test report")
        self.step(j, 24, 24 * 10)
        # The last complete month's cost, reported in full and within the 1,500 EUR budget
        # confirmed with cost tracking (COST_WITHIN_BUDGET).
        this_month = j.now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        last_month = (this_month - timedelta(days=1)).replace(day=1)
        self.issue(
            j,
            c.RecordInferenceCost,
            actor=Actor(id="ops-monitor", role=Role.INTEGRATION),
            channel=Channel.CLOUDEVENTS,
            periodStart=last_month,
            periodEnd=this_month,
            amount=str(Decimal(r.randint(20_000, 140_000)) / 100),
            currency="EUR",
        )
        # At once: a step could cross into the next month, whose last complete month is
        # then the one just reported in part.
        return self.issue(j, c.AdvanceStage, to="scale")

    def operate(self, j: Journey, count: int, until: datetime = NOW) -> int:
        """Events of a use case in production: cost, adoption, measurements, alerts, changes.

        Spread evenly from the journey's time to ``until``.
        """
        r = self.rng
        assert j.deployed_at is not None
        assert j.approver is not None
        done = 0
        span = max((until - j.now).total_seconds() / 3600, 1.0)
        gap = span / (count + 1)
        alert_open: str | None = None
        integration = Actor(id="ops-monitor", role=Role.INTEGRATION)
        while done < count:
            self.step(j, gap * 0.5, gap)
            if j.now > until:
                break
            roll = r.random()
            before = j.use_case.version
            if alert_open is not None and roll < 0.5:
                self.issue(
                    j,
                    c.ResolveQualityAlert,
                    actor=integration,
                    channel=Channel.CLOUDEVENTS,
                    alertId=alert_open,
                    resolution="retrained the retriever",
                    resolvedAt=j.now,
                )
                alert_open = None
            elif roll < 0.35:
                start = j.now - timedelta(days=30)
                self.issue(
                    j,
                    c.RecordInferenceCost,
                    actor=integration,
                    channel=Channel.CLOUDEVENTS,
                    periodStart=start,
                    periodEnd=j.now,
                    amount=str(Decimal(r.randint(20_000, 200_000)) / 100),
                    currency="EUR",
                )
            elif roll < 0.65:
                self.issue(
                    j,
                    c.RecordAdoption,
                    actor=integration,
                    channel=Channel.CLOUDEVENTS,
                    activeUsers=r.randint(30, 100),
                    targetUsers=100,
                    measuredAt=j.now,
                )
            elif roll < 0.85:
                self.issue(
                    j,
                    c.RecordMeasurement,
                    actor=integration,
                    channel=Channel.CLOUDEVENTS,
                    metric=j.metric,
                    value=round(r.uniform(2, 20), 1),
                    measuredAt=j.now,
                )
            elif roll < 0.93 and alert_open is None:
                self.issue(
                    j,
                    c.RaiseQualityAlert,
                    actor=integration,
                    channel=Channel.CLOUDEVENTS,
                    severity="medium",
                    description="answer quality dipped below the alert threshold",
                    raisedAt=j.now,
                )
                alert_open = next(iter(j.use_case.state.open_quality_alerts), None)
            elif count - done >= 4:
                # A change: requested, evaluated, approved, deployed.
                label = self.new_label(j)
                self.issue(
                    j,
                    c.RequestChange,
                    reason="newer model is cheaper",
                    toVersion={
                        "label": label,
                        "model": "gpt-x-mini",
                        "prompt": f"prompt for {label}",
                    },
                )
                self.evaluate(j, label, passing=True, hours=min(48, gap))
                self.step(j, min(1, gap / 2), min(24, gap))
                self.issue(
                    j,
                    c.ApproveChange,
                    actor=Actor(id=j.approver["id"], role=Role.APPROVER),
                    changeNumber=len(j.use_case.state.changes),
                )
                self.step(j, min(1, gap / 2), min(24, gap))
                self.issue(
                    j,
                    c.RecordDeployment,
                    actor=Actor(id="cd-pipeline", role=Role.INTEGRATION),
                    channel=Channel.CLOUDEVENTS,
                    version=label,
                    deployedAt=j.now,
                )
            done += j.use_case.version - before
        return done

    def life(self, key: str, title: str, unit: str, target: Stage) -> tuple[Journey, bool]:
        """A use case driven to ``target``; True if it is to be retired (after ``operate``)."""
        r = self.rng
        retire = target is Stage.RETIRED
        if retire:
            target = r.choice([Stage.PROPOSED, Stage.PILOT, Stage.ACCEPTANCE, Stage.MEASUREMENT])
        rank = FORWARD_STAGES.index(target)
        earliest = NOW - 3 * YEAR
        # Those that reach production start early enough to have been operated for a while.
        latest = NOW - timedelta(days=30 + 90 * rank) - (YEAR if rank >= 3 else timedelta(0))
        start = earliest + (latest - earliest) * r.random()
        j = self.register(key, title, unit, start)
        steps = (
            self.to_pilot,
            self.to_acceptance,
            self.to_deployment,
            self.to_measurement,
            self.to_scale,
        )
        for i in range(rank):
            if not steps[i](j):
                break
            if i == 1 and r.random() < 0.05:  # sent back once, then forward again
                self.step(j)
                self.issue(
                    j,
                    c.ReturnToStage,
                    stage="pilot",
                    reason="criteria need the business owner's review",
                )
                self.step(j)
                self.issue(j, c.AdvanceStage, to="acceptance")
        return j, retire

    def retire(self, j: Journey) -> None:
        self.step(j, 24, 24 * 60)
        self.issue(j, c.Retire, reason="superseded by a vendor product")


def _stage_for(rng: random.Random) -> Stage:
    roll, total = rng.random(), 0.0
    for stage, share in STAGE_MIX:
        total += share
        if roll < total:
            return stage
    return Stage.PROPOSED


# --- building and saving cohorts -------------------------------------------------------------


def _app(url: str, snapshot_interval: int) -> Stagegate:
    return bootstrap(Settings(database_url=url, snapshot_interval=snapshot_interval)).app


_worker_app: Stagegate | None = None
_worker_args: dict[str, Any] = {}


def _init_worker(url: str, snapshot_interval: int, via: str) -> None:
    global _worker_app
    _worker_app = _app(url, snapshot_interval)
    _worker_args.update(snapshot_interval=snapshot_interval, via=via)


def copy_events(app: Stagegate, events: list[Any]) -> None:
    """Append with COPY: the application's own serialisation and table, the store's own
    hash chain, delivery and outbox rows, without the library's per-batch parameter dumping
    (which holds the table lock while it runs in Python). ``events`` are whole lives: every
    use case's from its first version."""
    datastore = app.factory.datastore  # type: ignore[attr-defined]

    def qualified(name: str) -> sql.Composed:
        return sql.SQL("{}.{}").format(sql.Identifier(datastore.schema), sql.Identifier(name))

    events_table = qualified(app.recorder.events_table_name)  # type: ignore[attr-defined]
    statement = sql.SQL(
        "COPY {} (originator_id, originator_version, topic, state) FROM STDIN"
    ).format(events_table)
    copy_hashes = sql.SQL(
        "COPY {} (originator_id, originator_version, prev_hash, hash) FROM STDIN"
    ).format(qualified(chain.HASHES_TABLE))
    delivery_table = f'"{datastore.schema}"."{deliveries.DELIVERIES_TABLE}"'
    outbox_table = f'"{datastore.schema}"."{outbox.OUTBOX_TABLE}"'
    database = database_of(datastore)
    stored = [app.mapper.to_stored_event(e) for e in events]
    hashes = chain.chain_rows(stored, {})
    for start in range(0, len(stored), 20_000):
        rows = stored[start : start + 20_000]
        with datastore.transaction(commit=True) as curs:
            with curs.copy(statement) as copy:
                for row in rows:
                    copy.write_row(
                        (row.originator_id, row.originator_version, row.topic, row.state)
                    )
            with curs.copy(copy_hashes) as copy:
                for link in hashes[start : start + 20_000]:
                    copy.write_row(link)
            database.insert_rows(curs, delivery_table, deliveries.COLUMNS, deliveries.rows(rows))
            database.insert_rows(curs, outbox_table, outbox.COLUMNS, outbox.rows(rows))


def build_cohort(spec: tuple[int, int, int, float, int]) -> tuple[int, int, float, float]:
    """Build use cases [first, first+count) and save them; returns (use cases, events, s, s)."""
    try:
        return _build_cohort(spec)
    except Exception as error:  # domain errors do not pickle: send the traceback as text
        import traceback

        raise RuntimeError(traceback.format_exc()) from error


def _build_cohort(spec: tuple[int, int, int, float, int]) -> tuple[int, int, float, float]:
    _cohort, first, count, target_events, seed = spec
    assert _worker_app is not None
    app = _worker_app
    started = time.perf_counter()
    gen = Generator(seed, app.policy(), _worker_args["snapshot_interval"])
    lives = []
    with clock.clock_set_to(lambda: gen.t):
        for n in range(first, first + count):
            unit, slug = UNITS[n % len(UNITS)]
            title, subject = SUBJECTS[(n // len(UNITS)) % len(SUBJECTS)]
            lives.append(gen.life(f"{slug}-{subject}-{n:06d}", title, unit, _stage_for(gen.rng)))
        # The rest of the cohort's event budget: production events, unevenly shared.
        remaining = target_events - sum(j.use_case.version for j, _ in lives)
        deployed = [j for j, _ in lives if j.deployed_at is not None]
        weights = [gen.rng.expovariate(1.0) for _ in deployed]
        total = sum(weights) or 1.0
        for j, weight in zip(deployed, weights, strict=True):
            share = int(remaining * weight / total)
            if share > 0:
                gen.operate(j, share)
        for j, retire in lives:
            if retire:
                gen.retire(j)
    journeys = [j for j, _ in lives]
    events = [event for j in journeys for event in j.use_case.collect_events()]
    snapshots = [s for j in journeys for s in j.snapshots]
    # Many teams at work at once: interleave the cohort's events in time order.
    events.sort(key=lambda e: (e.timestamp, e.originator_version))
    built = time.perf_counter() - started
    if _worker_args["via"] == "save":
        for start in range(0, len(events), SAVE_BATCH):
            app.save(*events[start : start + SAVE_BATCH])
    else:
        copy_events(app, events)
    if snapshots:
        assert app.snapshots is not None
        app.snapshots.put(snapshots)
    return count, len(events), built, time.perf_counter() - started - built


def build_long(app: Stagegate, events: int, snapshot_interval: int, key: str) -> int:
    """One use case in production for three years with ``events`` events."""
    gen = Generator(7, app.policy(), snapshot_interval)
    with clock.clock_set_to(lambda: gen.t):
        j = gen.register(
            key, "Long-lived assistant", "Operations", NOW - 3 * YEAR - timedelta(days=30)
        )
        for step in (gen.to_pilot, gen.to_acceptance, gen.to_deployment, gen.to_measurement):
            assert step(j)
        while j.use_case.version < events:
            # A thousand at a time, each over its share of the time that remains.
            chunk = min(events - j.use_case.version, 1000)
            until = j.now + (NOW - j.now) * chunk / (events - j.use_case.version + 1)
            if not gen.operate(j, chunk, until):
                raise AssertionError("the long-lived use case ran out of time")
            pending = j.use_case.collect_events()
            app.save(*pending)
        assert app.snapshots is not None
        if j.snapshots:
            app.snapshots.put(j.snapshots)
    return j.use_case.version


POLICY_CHANGES = [
    {"stuckAfterDays": 45, "reason": "pilots take longer than we thought"},
    {"measurementWindowDays": 45, "reason": "monthly reporting suffices"},
    {"minAdoption": 0.4, "reason": "large target populations"},
    {"stuckAfterDays": 60, "reason": "annual planning cycle"},
]


def set_policy(app: Stagegate, change: dict[str, Any], when: datetime) -> None:
    ctx = CommandContext(
        actor=Actor(id="admin", role=Role.ADMIN), channel=Channel.CLI, correlation_id="gen-policy"
    )
    with clock.clock_set_to(lambda: when):
        app.set_policy(c.SetPolicy.parse(change), ctx)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("database_url")
    parser.add_argument("--use-cases", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--long-events", type=int, default=0)
    parser.add_argument("--long-key", default="long-lived")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--policy-changes", type=int, default=3)
    parser.add_argument("--snapshot-interval", type=int, default=50)
    parser.add_argument("--create", action="store_true", help="CREATE DATABASE first")
    parser.add_argument(
        "--via",
        choices=("copy", "save"),
        default="copy",
        help="append with COPY (fast; default) or app.save(*events) (the library's insert)",
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    url = args.database_url
    if args.create:
        server, name = url.rsplit("/", 1)
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    started = time.perf_counter()
    app = _app(url, args.snapshot_interval)

    per_use_case = max(0, args.events - args.long_events - args.policy_changes - 1) / max(
        1, args.use_cases
    )
    cohorts = [
        (i, first, n, round(per_use_case * n), args.seed * 1_000_003 + i)
        for i, first in enumerate(range(0, args.use_cases, COHORT))
        for n in [min(COHORT, args.use_cases - first)]
    ]
    change_at = {
        len(cohorts) * (k + 1) // (args.policy_changes + 1): POLICY_CHANGES[k % len(POLICY_CHANGES)]
        for k in range(args.policy_changes)
    }
    done_cases = done_events = 0
    build_s = save_s = 0.0
    policy_when = NOW - 3 * YEAR
    with multiprocessing.get_context("fork").Pool(
        args.workers, initializer=_init_worker, initargs=(url, args.snapshot_interval, args.via)
    ) as pool:
        for finished, (cases, events, built, saved) in enumerate(
            pool.imap_unordered(build_cohort, cohorts), start=1
        ):
            done_cases += cases
            done_events += events
            build_s += built
            save_s += saved
            if finished in change_at:
                policy_when += YEAR * 3 / (args.policy_changes + 1)
                set_policy(app, change_at[finished], policy_when)
                done_events += 1
            elapsed = time.perf_counter() - started
            print(
                f"{done_cases:>8} use cases {done_events:>9} events  {elapsed:7.1f} s"
                f"  ({done_events / elapsed:,.0f} events/s)",
                flush=True,
            )
    if args.long_events:
        done_events += build_long(app, args.long_events, args.snapshot_interval, args.long_key)
        done_cases += 1
    app.close()
    # What an operator does after a bulk load (autovacuum is off on the benchmark machine):
    # without statistics the planner misjudges every lookup.
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE")
    elapsed = time.perf_counter() - started
    print(
        f"generated {done_cases} use cases, {done_events} events in {elapsed:.1f} s"
        f" ({done_events / elapsed:,.0f} events/s; worker time building {build_s:.0f} s,"
        f" saving {save_s:.0f} s)"
    )


if __name__ == "__main__":
    main()
