"""The lifecycle events other systems post, and the command each one becomes.

An evaluation harness, a CD pipeline or a monitor posts a CloudEvent; its ``type`` names one of
the kinds below, its ``subject`` is the use case key, its ``time`` is when the fact happened
(the business time), and its ``data`` follows the kind's schema. Each data model builds the
same domain command a person would issue (``command``), judged by the same gates and rules; a
field the command refuses is named as the event names it (``time``, ``data.<field>``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from pydantic import BeforeValidator, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from domain import commands as c
from domain.errors import FieldError, ValidationFailed
from domain.state import UseCaseState
from domain.values import (
    AlertSeverity,
    Currency,
    Direction,
    FiniteFloat,
    LongText,
    Money,
    NamedValues,
    ShortText,
    Value,
)


def _lower_case(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


# Integrations write enum values as GraphQL does (LOWER_IS_BETTER) or as stored (lower_is_better).
AnyCaseDirection = Annotated[Direction, BeforeValidator(_lower_case)]
AnyCaseSeverity = Annotated[AlertSeverity, BeforeValidator(_lower_case)]


class EventData(Value):
    """A posted event's ``data``: immutable, strict about unknown fields, camelCase."""

    def command(self, key: str, occurred_at: datetime, state: UseCaseState) -> c.UseCaseCommand:
        """The command this event stands for; ``state`` decides what a measurement is."""
        raise NotImplementedError


def build_command(
    command: type[c.UseCaseCommand], from_time: set[str], **fields: Any
) -> c.UseCaseCommand:
    """``command`` from these fields (None ones left to its defaults); a refusal names the
    event's fields: ``time`` for those in ``from_time`` (command field names), ``data.*``
    for the rest."""
    present = {name: value for name, value in fields.items() if value is not None}
    try:
        return command.model_validate(present)
    except ValidationError as error:
        refused = ValidationFailed.from_pydantic(error)
    times = {to_camel(name) for name in from_time}
    raise ValidationFailed(
        [
            FieldError(
                path="time"
                if e.path in times or e.path.removeprefix("baseline.") in times
                else "data." + e.path.removeprefix("baseline.")
                if e.path
                else "data",
                message=e.message,
            )
            for e in refused.errors
        ]
    ) from None


class EvaluationCompleted(EventData):
    """An evaluation run of a version; stagegate judges pass or fail from the criteria."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "version": "v3",
                "results": [
                    {"name": "accuracy", "value": 0.94},
                    {"name": "p95_latency_s", "value": 2.1},
                ],
                "harness": "eval-harness 2.3",
                "dataset": "golden-set-2026-q3",
            }
        }
    )

    version: ShortText
    results: Annotated[NamedValues, Field(min_length=1)]
    harness: ShortText | None = None
    dataset: ShortText | None = None

    def command(self, key: str, occurred_at: datetime, state: UseCaseState) -> c.UseCaseCommand:
        return build_command(
            c.RecordEvaluation,
            {"evaluated_at"},
            key=key,
            version=self.version,
            results=self.results,
            evaluated_at=occurred_at,
            harness=self.harness,
            dataset=self.dataset,
        )


class DeploymentCompleted(EventData):
    """A version was deployed to an environment."""

    model_config = ConfigDict(
        json_schema_extra={"example": {"version": "v3", "environment": "production"}}
    )

    version: ShortText
    environment: str = "production"
    """``production`` (or prod, prd, live) is held to the production rules."""

    def command(self, key: str, occurred_at: datetime, state: UseCaseState) -> c.UseCaseCommand:
        return build_command(
            c.RecordDeployment,
            {"deployed_at"},
            key=key,
            version=self.version,
            environment=self.environment,
            deployed_at=occurred_at,
        )


class DeploymentRolledBack(EventData):
    """Production was rolled back to the previously deployed version."""

    model_config = ConfigDict(
        json_schema_extra={"example": {"reason": "p95 latency doubled", "toVersion": "v2"}}
    )

    reason: LongText
    to_version: ShortText | None = None
    """Optional check: the version the pipeline returned to."""

    def command(self, key: str, occurred_at: datetime, state: UseCaseState) -> c.UseCaseCommand:
        return build_command(
            c.RollBack,
            {"rolled_back_at"},
            key=key,
            reason=self.reason,
            to_version=self.to_version,
            rolled_back_at=occurred_at,
        )


class MetricMeasured(EventData):
    """A business metric: a baseline before the use case first reaches deployment, an
    after-state once it is in production."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "metric": "handling_minutes",
                "value": 4.2,
                "unit": "minutes per invoice",
                "direction": "LOWER_IS_BETTER",
                "method": "time study of 400 invoices",
            }
        }
    )

    metric: ShortText
    value: FiniteFloat
    unit: ShortText | None = None
    """Required for a baseline."""
    direction: AnyCaseDirection | None = None
    """Required for a baseline: LOWER_IS_BETTER or HIGHER_IS_BETTER."""
    method: LongText | None = None
    """How it was measured; required for a baseline."""

    def command(self, key: str, occurred_at: datetime, state: UseCaseState) -> c.UseCaseCommand:
        if state.reached_deployment:
            return build_command(
                c.RecordMeasurement,
                {"measured_at"},
                key=key,
                metric=self.metric,
                value=self.value,
                measured_at=occurred_at,
                method=self.method,
            )
        required = (("unit", self.unit), ("direction", self.direction), ("method", self.method))
        missing = [name for name, value in required if value is None]
        if missing:
            raise ValidationFailed.single(
                f"data.{missing[0]}",
                "a measurement before deployment is a baseline, which needs " + ", ".join(missing),
            )
        return build_command(
            c.CaptureBaseline,
            {"measured_at"},
            key=key,
            baseline={
                "metric": self.metric,
                "unit": self.unit,
                "value": self.value,
                "direction": self.direction,
                "measured_at": occurred_at,
                "method": self.method,
            },
        )


class AdoptionMeasured(EventData):
    """Active users against the users the changed workflow targets."""

    model_config = ConfigDict(json_schema_extra={"example": {"activeUsers": 39, "targetUsers": 50}})

    active_users: int = Field(ge=0, le=100_000_000)
    target_users: int = Field(ge=1, le=100_000_000)

    def command(self, key: str, occurred_at: datetime, state: UseCaseState) -> c.UseCaseCommand:
        return build_command(
            c.RecordAdoption,
            {"measured_at"},
            key=key,
            active_users=self.active_users,
            target_users=self.target_users,
            measured_at=occurred_at,
        )


class CostReported(EventData):
    """Inference cost for a period (the period ends at the event's ``time`` unless given)."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "periodStart": "2026-10-01T00:00:00Z",
                "periodEnd": "2026-11-01T00:00:00Z",
                "amount": "2875.40",
                "currency": "EUR",
            }
        }
    )

    period_start: datetime
    period_end: datetime | None = None
    amount: Money
    currency: Currency

    def command(self, key: str, occurred_at: datetime, state: UseCaseState) -> c.UseCaseCommand:
        return build_command(
            c.RecordInferenceCost,
            {"period_end"} if self.period_end is None else set(),  # it ends at the event's time
            key=key,
            period_start=self.period_start,
            period_end=self.period_end or occurred_at,
            amount=self.amount,
            currency=self.currency,
        )


class QualityAlertRaised(EventData):
    """Output quality degraded."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "alertId": "grafana-8812",
                "severity": "HIGH",
                "description": "Hallucinated policy numbers in 3% of summaries.",
            }
        }
    )

    alert_id: ShortText | None = None
    severity: AnyCaseSeverity
    description: LongText

    def command(self, key: str, occurred_at: datetime, state: UseCaseState) -> c.UseCaseCommand:
        return build_command(
            c.RaiseQualityAlert,
            {"raised_at"},
            key=key,
            alert_id=self.alert_id,
            severity=self.severity,
            description=self.description,
            raised_at=occurred_at,
        )


class QualityAlertResolved(EventData):
    """An output-quality alert was resolved."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {"alertId": "grafana-8812", "resolution": "Prompt v4 deployed."}
        }
    )

    alert_id: ShortText
    resolution: LongText

    def command(self, key: str, occurred_at: datetime, state: UseCaseState) -> c.UseCaseCommand:
        return build_command(
            c.ResolveQualityAlert,
            {"resolved_at"},
            key=key,
            alert_id=self.alert_id,
            resolution=self.resolution,
            resolved_at=occurred_at,
        )


@dataclass(frozen=True)
class EventKind:
    """One CloudEvents type stagegate accepts."""

    name: str
    schema: type[EventData]
    summary: str


KINDS: dict[str, EventKind] = {
    kind.name: kind
    for kind in (
        EventKind(
            "stagegate.evaluation.completed",
            EvaluationCompleted,
            "records an evaluation of a version",
        ),
        EventKind(
            "stagegate.deployment.completed",
            DeploymentCompleted,
            "records a deployment of a version to an environment",
        ),
        EventKind("stagegate.deployment.rolled_back", DeploymentRolledBack, "records a rollback"),
        EventKind(
            "stagegate.metric.measured",
            MetricMeasured,
            "records a baseline (before deployment) or an after-state measurement",
        ),
        EventKind("stagegate.adoption.measured", AdoptionMeasured, "records active / target users"),
        EventKind("stagegate.cost.reported", CostReported, "records inference cost for a period"),
        EventKind(
            "stagegate.quality.alert_raised", QualityAlertRaised, "raises an output-quality alert"
        ),
        EventKind(
            "stagegate.quality.alert_resolved",
            QualityAlertResolved,
            "resolves an output-quality alert",
        ),
    )
}


def parse_data(event_type: str, data: Any) -> EventData:
    """The event's ``data`` validated against its kind (ValidationFailed names each field)."""
    kind = KINDS[event_type]
    if not isinstance(data, dict):
        raise ValidationFailed.single("data", f"{event_type} needs a JSON object as data")
    try:
        return kind.schema.model_validate(data)
    except ValidationError as error:
        raise ValidationFailed.from_pydantic(error, prefix="data") from None
