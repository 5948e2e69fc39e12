"""Value objects of the use-case lifecycle: enums, people, evidence.

Every value is a frozen pydantic model, so it is validated where it is built, serialises into
events without a custom codec, and compares by value (which the replay tests rely on).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
)
from pydantic.alias_generators import to_camel

# --- constrained scalars ------------------------------------------------------------------

_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _no_control_characters(value: str) -> str:
    if _CONTROL_CHARACTERS.search(value):
        raise ValueError("must not contain control characters")
    return value


ShortText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_no_control_characters),
]
"""A name, label or title: 1-200 characters after trimming."""

LongText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=4000),
    AfterValidator(_no_control_characters),
]
"""A rationale, description, evidence or reason: 1-4000 characters after trimming."""

UseCaseKey = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        min_length=2,
        max_length=64,
        pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$",
    ),
]
"""A use case's slug, e.g. ``invoice-triage``: lower-case letters, digits and single hyphens."""

PersonId = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=120, pattern=r"^[A-Za-z0-9._@+:-]+$"
    ),
]
"""The identity of a person or system, as it appears on their API token (e.g. an e-mail)."""


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


FiniteFloat = Annotated[float, AfterValidator(_finite)]


class NamedValue(BaseModel):
    """A named number: an evaluation result or a threshold."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: ShortText
    value: FiniteFloat


def _unique_names(values: tuple[NamedValue, ...]) -> tuple[NamedValue, ...]:
    counts = Counter(v.name for v in values)  # linear: a list may be long before it is refused
    duplicates = sorted(name for name, seen in counts.items() if seen > 1)
    if duplicates:
        raise ValueError(f"names given more than once: {', '.join(duplicates)}")
    return values


NamedValues = Annotated[
    # The cap first: in this order pydantic checks the length inside the tuple's own schema,
    # before the names are compared.
    tuple[NamedValue, ...],
    Field(max_length=200),
    AfterValidator(_unique_names),
]
"""Numbers by name, as a list of ``{name, value}`` pairs (GraphQL has no maps)."""

CLOCK_SKEW = timedelta(minutes=5)
EARLIEST_BUSINESS_TIME = datetime(1970, 1, 1, tzinfo=UTC)
"""No business time lies before this. Nothing an AI use case records happened earlier, and
the range from here to now converts to UTC, and back, on every store and clock stagegate
uses (a year-1 time with a positive offset does not: it would stop the read models)."""


def _in_business_range(value: datetime) -> datetime:
    if value < EARLIEST_BUSINESS_TIME:
        raise ValueError("must not be before 1970-01-01T00:00:00Z")
    if value > datetime.now(UTC) + CLOCK_SKEW:
        raise ValueError("must not be in the future")
    return value


PastTime = Annotated[AwareDatetime, AfterValidator(_in_business_range)]
"""A business time (timezone-aware) that has already happened (give or take clock skew),
from 1970-01-01T00:00:00Z on."""
Score = Annotated[int, Field(ge=1, le=5)]
Money = Annotated[Decimal, Field(ge=0, max_digits=18, decimal_places=2)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]


class Value(BaseModel):
    """Base for value objects: immutable, strict about unknown fields, camelCase on the wire."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        use_attribute_docstrings=True,
    )


# --- enumerations -------------------------------------------------------------------------


class Stage(StrEnum):
    PROPOSED = "proposed"
    PILOT = "pilot"
    ACCEPTANCE = "acceptance"
    DEPLOYMENT = "deployment"
    MEASUREMENT = "measurement"
    SCALE = "scale"
    RETIRED = "retired"

    @property
    def rank(self) -> int:
        """Position on the forward path; retired ranks after everything."""
        return _STAGE_ORDER.index(self) if self in _STAGE_ORDER else len(_STAGE_ORDER)

    @property
    def next(self) -> Stage | None:
        """The stage a forward move leads to, or None from ``scale`` and ``retired``."""
        if self not in _STAGE_ORDER or self is Stage.SCALE:
            return None
        return _STAGE_ORDER[_STAGE_ORDER.index(self) + 1]


_STAGE_ORDER = (
    Stage.PROPOSED,
    Stage.PILOT,
    Stage.ACCEPTANCE,
    Stage.DEPLOYMENT,
    Stage.MEASUREMENT,
    Stage.SCALE,
)
FORWARD_STAGES = _STAGE_ORDER


class OwnerRole(StrEnum):
    BUSINESS = "business"
    TECHNICAL = "technical"
    MONITORING = "monitoring"


class Comparator(StrEnum):
    GTE = "gte"
    GT = "gt"
    LTE = "lte"
    LT = "lt"

    def holds(self, value: float, threshold: float) -> bool:
        if self is Comparator.GTE:
            return value >= threshold
        if self is Comparator.GT:
            return value > threshold
        if self is Comparator.LTE:
            return value <= threshold
        return value < threshold

    @property
    def symbol(self) -> str:
        return {"gte": ">=", "gt": ">", "lte": "<=", "lt": "<"}[self.value]


class Direction(StrEnum):
    LOWER_IS_BETTER = "lower_is_better"
    HIGHER_IS_BETTER = "higher_is_better"


class BaselineKind(StrEnum):
    """What a baseline metric has to show at scale: an outcome must improve on its baseline,
    a guardrail must not get worse than it by more than the policy tolerates."""

    OUTCOME = "outcome"
    GUARDRAIL = "guardrail"


class ReadinessItem(StrEnum):
    REPEATABLE_DEPLOYMENT = "repeatable_deployment"
    QUALITY_MONITORING = "quality_monitoring"
    DATA_PIPELINE_CHECKS = "data_pipeline_checks"
    COST_TRACKING = "cost_tracking"
    ROLLBACK_PLAN = "rollback_plan"


class RegistrySystem(StrEnum):
    """A model registry a use case's models may live in."""

    MLFLOW = "mlflow"
    SAGEMAKER = "sagemaker"
    WANDB = "wandb"


class ScaleDimension(StrEnum):
    VOLUME = "volume"
    GEOGRAPHY = "geography"
    USER_POPULATION = "user_population"


class ChangeComponent(StrEnum):
    MODEL = "model"
    PROMPT = "prompt"
    THRESHOLDS = "thresholds"


class AlertSeverity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class ChangeStatus(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    DEPLOYED = "deployed"


class Role(StrEnum):
    """What a token may do; who its holder is matters separately (see ``Actor``)."""

    ADMIN = "admin"
    EDITOR = "editor"
    APPROVER = "approver"
    AUDITOR = "auditor"
    VIEWER = "viewer"
    INTEGRATION = "integration"


class Channel(StrEnum):
    """Through what a command arrived."""

    GRAPHQL = "graphql"
    CLOUDEVENTS = "cloudevents"
    CLI = "cli"


PRODUCTION = "production"


# --- people -------------------------------------------------------------------------------


class Person(Value):
    """A named person. ``id`` is how stagegate recognises them (their token's actor id)."""

    id: PersonId
    name: ShortText | None = None
    team: ShortText | None = None

    def same_person(self, other: Person | str | None) -> bool:
        other_id = other.id if isinstance(other, Person) else other
        return other_id is not None and self.id.casefold() == other_id.casefold()

    def on_team(self, team: str | None) -> bool:
        return bool(team) and bool(self.team) and self.team.casefold() == team.casefold()  # type: ignore[union-attr]


# --- evidence -----------------------------------------------------------------------------


class DimensionScore(Value):
    score: Score
    rationale: LongText


class PriorityScore(Value):
    """The three prioritisation dimensions of the seed, each scored 1-5 with a rationale."""

    leverage: DimensionScore
    feasibility: DimensionScore
    readiness: DimensionScore

    def lowest(self) -> int:
        return min(self.leverage.score, self.feasibility.score, self.readiness.score)


def _has_team(person: Person) -> Person:
    if not person.team:
        raise ValueError("name the responder's team: the gate checks it is not the AI team")
    return person


Responder = Annotated[Person, AfterValidator(_has_team)]
"""A person on an escalation path; their team is what ``ESCALATION_OUTSIDE_AI_TEAM`` judges."""


class WorkflowStep(Value):
    description: ShortText
    performed_by_role: ShortText
    handles_exceptions: bool = False


class WorkflowSpec(Value):
    """The changed workflow: ordered steps with who performs each, and the escalation path."""

    steps: tuple[WorkflowStep, ...] = Field(min_length=1, max_length=100)
    escalation_path: tuple[Responder, ...] = Field(default=(), max_length=20)
    """Who responds to an operational issue, in order; the first must be outside the AI team."""


class Criterion(Value):
    metric: ShortText
    comparator: Comparator
    threshold: FiniteFloat

    def met_by(self, results: dict[str, float]) -> bool:
        value = results.get(self.metric)
        return value is not None and self.comparator.holds(value, self.threshold)

    def describe(self) -> str:
        return f"{self.metric} {self.comparator.symbol} {self.threshold:g}"


class Baseline(Value):
    metric: ShortText
    unit: ShortText
    value: FiniteFloat
    direction: Direction
    measured_at: PastTime
    method: LongText
    kind: BaselineKind = BaselineKind.OUTCOME
    """An outcome (what the use case is meant to improve) or a guardrail (what it must not
    make worse); declared when the baseline is captured."""


class ModelVersion(Value):
    """A candidate version: the model, the prompt and the thresholds, under one label."""

    label: ShortText
    model: ShortText
    prompt: LongText | None = None
    """Null for a classic model, which has no prompt (a version from a model registry)."""
    thresholds: NamedValues = ()

    def threshold_values(self) -> dict[str, float]:
        return {t.name: t.value for t in self.thresholds}

    def differences(self, other: ModelVersion) -> tuple[ChangeComponent, ...]:
        changed = []
        if self.model != other.model:
            changed.append(ChangeComponent.MODEL)
        if self.prompt != other.prompt:
            changed.append(ChangeComponent.PROMPT)
        if self.threshold_values() != other.threshold_values():
            changed.append(ChangeComponent.THRESHOLDS)
        return tuple(changed)


class CriterionOutcome(Value):
    criterion: Criterion
    value: float | None
    met: bool


class Evaluation(Value):
    number: int
    version: str
    results: dict[str, float]
    outcomes: tuple[CriterionOutcome, ...]
    passed: bool
    evaluated_at: datetime
    harness: str | None = None
    dataset: str | None = None


class SignOff(Value):
    evaluation_number: int
    version: str
    signed_by: str
    comment: str | None = None


class ReadinessConfirmation(Value):
    item: ReadinessItem
    evidence: str
    confirmed_by: str
    monthly_budget: Decimal | None = None
    currency: str | None = None


class Deployment(Value):
    version: str
    environment: str
    deployed_at: datetime
    change_number: int | None = None

    @property
    def is_production(self) -> bool:
        return self.environment == PRODUCTION


class Measurement(Value):
    metric: str
    value: float
    measured_at: datetime
    method: str | None = None


class Adoption(Value):
    active_users: int
    target_users: int
    measured_at: datetime

    @property
    def rate(self) -> float:
        return self.active_users / self.target_users


class InferenceCost(Value):
    period_start: datetime
    period_end: datetime
    amount: Decimal
    currency: str


class ValueStatement(Value):
    statement: str
    stated_by: str
    estimated_annual_value: Decimal | None = None
    currency: str | None = None


class ExternalModel(Value):
    """A model in an external registry, linked to a use case: its registry events about this
    model are the use case's (MLflow: a registered model's name; SageMaker: a model package
    group's name; W&B: an artifact collection, ``entity/project/collection``)."""

    system: RegistrySystem
    name: ShortText
    linked_by: str

    @property
    def ref(self) -> str:
        """How the use case's state keys it: ``system:name``."""
        return f"{self.system.value}:{self.name}"


class ScaleCriterion(Value):
    dimension: ScaleDimension
    target: ShortText
    description: LongText | None = None


class ScaleConfirmation(Value):
    dimension: ScaleDimension
    evidence: str
    confirmed_by: str


class Change(Value):
    number: int
    from_version: str | None
    to_version: str
    components: tuple[ChangeComponent, ...]
    why: str
    requested_by: str
    status: ChangeStatus = ChangeStatus.REQUESTED
    approved_by: str | None = None


class QualityAlert(Value):
    alert_id: str
    severity: AlertSeverity
    description: str
    raised_at: datetime
