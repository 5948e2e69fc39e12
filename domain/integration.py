"""Lifecycle events posted by other systems, and the commands they become.

An evaluation harness, a CD pipeline or a monitor posts a CloudEvent; its ``type`` names one of
the kinds below, its ``subject`` is the use case key, its ``time`` is when the fact happened
(the business time), and its ``data`` follows the kind's schema. Each becomes the same domain
command a person would issue, judged by the same gates and rules.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
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
)


def _lower_case(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


# Integrations write enum values as GraphQL does (LOWER_IS_BETTER) or as stored (lower_is_better).
AnyCaseDirection = Annotated[Direction, BeforeValidator(_lower_case)]
AnyCaseSeverity = Annotated[AlertSeverity, BeforeValidator(_lower_case)]


class Notification(StrEnum):
    """What other systems can subscribe to hear about (webhooks)."""

    STAGE_ADVANCED = "stagegate.stage.advanced"
    STAGE_RETURNED = "stagegate.stage.returned"
    USE_CASE_RETIRED = "stagegate.use_case.retired"
    GATE_BLOCKED = "stagegate.gate.blocked"
    DEPLOYMENT_RECORDED = "stagegate.deployment.recorded"
    DEPLOYMENT_ROLLED_BACK = "stagegate.deployment.rolled_back"
    QUALITY_ALERT_RAISED = "stagegate.quality.alert_raised"
    QUALITY_ALERT_RESOLVED = "stagegate.quality.alert_resolved"


class EventData(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        use_attribute_docstrings=True,
    )


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


class DeploymentCompleted(EventData):
    """A version was deployed to an environment."""

    model_config = ConfigDict(
        json_schema_extra={"example": {"version": "v3", "environment": "production"}}
    )

    version: ShortText
    environment: str = "production"
    """``production`` (or prod, prd, live) is held to the production rules."""


class DeploymentRolledBack(EventData):
    """Production was rolled back to the previously deployed version."""

    model_config = ConfigDict(
        json_schema_extra={"example": {"reason": "p95 latency doubled", "toVersion": "v2"}}
    )

    reason: LongText
    to_version: ShortText | None = None
    """Optional check: the version the pipeline returned to."""


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


class AdoptionMeasured(EventData):
    """Active users against the users the changed workflow targets."""

    model_config = ConfigDict(json_schema_extra={"example": {"activeUsers": 39, "targetUsers": 50}})

    active_users: int = Field(ge=0, le=100_000_000)
    target_users: int = Field(ge=1, le=100_000_000)


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


class QualityAlertResolved(EventData):
    """An output-quality alert was resolved."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {"alertId": "grafana-8812", "resolution": "Prompt v4 deployed."}
        }
    )

    alert_id: ShortText
    resolution: LongText


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


def delivery_fingerprint(event: Mapping[str, Any]) -> str:
    """SHA-256 of a posted event's canonical JSON: what a redelivery must repeat exactly."""
    canonical = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def parse_data(event_type: str, data: Any) -> EventData:
    """The event's ``data`` validated against its kind (ValidationFailed names each field)."""
    kind = KINDS[event_type]
    if not isinstance(data, dict):
        raise ValidationFailed.single("data", f"{event_type} needs a JSON object as data")
    try:
        return kind.schema.model_validate(data)
    except ValidationError as error:
        raise ValidationFailed.from_pydantic(error, prefix="data") from None


# Command fields that come from the event's ``time``; any other field comes from ``data``.
_FROM_TIME = {
    "evaluatedAt",
    "deployedAt",
    "rolledBackAt",
    "measuredAt",
    "raisedAt",
    "resolvedAt",
    "baseline.measuredAt",
}


def _as_event_paths(error: ValidationFailed, from_time: set[str]) -> ValidationFailed:
    """Name the CloudEvent's fields, not the command's, in a refusal of the mapped command.

    ``from_time`` names the command fields this event filled from its ``time``.
    """
    return ValidationFailed(
        [
            FieldError(
                path="time"
                if e.path in from_time
                else "data." + e.path.removeprefix("baseline.")
                if e.path
                else "data",
                message=e.message,
            )
            for e in error.errors
        ]
    )


def command_for(
    key: str, occurred_at: datetime, data: EventData, state: UseCaseState
) -> c.UseCaseCommand:
    """The command a posted event stands for. ``state`` decides what a measurement is."""
    fields: dict[str, Any]
    if isinstance(data, EvaluationCompleted):
        command: type[c.UseCaseCommand] = c.RecordEvaluation
        fields = {
            "version": data.version,
            "results": [{"name": r.name, "value": r.value} for r in data.results],
            "evaluatedAt": occurred_at,
            "harness": data.harness,
            "dataset": data.dataset,
        }
    elif isinstance(data, DeploymentCompleted):
        command = c.RecordDeployment
        fields = {
            "version": data.version,
            "environment": data.environment,
            "deployedAt": occurred_at,
        }
    elif isinstance(data, DeploymentRolledBack):
        command = c.RollBack
        fields = {"reason": data.reason, "toVersion": data.to_version, "rolledBackAt": occurred_at}
    elif isinstance(data, MetricMeasured):
        command, fields = _measurement(data, occurred_at, state)
    elif isinstance(data, AdoptionMeasured):
        command = c.RecordAdoption
        fields = {
            "activeUsers": data.active_users,
            "targetUsers": data.target_users,
            "measuredAt": occurred_at,
        }
    elif isinstance(data, CostReported):
        command = c.RecordInferenceCost
        fields = {
            "periodStart": data.period_start,
            "periodEnd": data.period_end or occurred_at,
            "amount": data.amount,
            "currency": data.currency,
        }
    elif isinstance(data, QualityAlertRaised):
        command = c.RaiseQualityAlert
        fields = {
            "alertId": data.alert_id,
            "severity": data.severity,
            "description": data.description,
            "raisedAt": occurred_at,
        }
    elif isinstance(data, QualityAlertResolved):
        command = c.ResolveQualityAlert
        fields = {
            "alertId": data.alert_id,
            "resolution": data.resolution,
            "resolvedAt": occurred_at,
        }
    else:  # pragma: no cover - every kind has a branch
        raise TypeError(type(data).__name__)
    present = {name: value for name, value in fields.items() if value is not None}
    from_time = set(_FROM_TIME)
    if isinstance(data, CostReported) and data.period_end is None:
        from_time.add("periodEnd")  # the period ends at the event's time
    try:
        parsed: c.UseCaseCommand = command.parse({"key": key, **present})
    except ValidationFailed as error:
        raise _as_event_paths(error, from_time) from None
    return parsed


def _measurement(
    data: MetricMeasured, occurred_at: datetime, state: UseCaseState
) -> tuple[type[c.UseCaseCommand], dict[str, Any]]:
    if state.reached_deployment:
        return c.RecordMeasurement, {
            "metric": data.metric,
            "value": data.value,
            "measuredAt": occurred_at,
            "method": data.method,
        }
    missing = [
        name
        for name, value in (
            ("unit", data.unit),
            ("direction", data.direction),
            ("method", data.method),
        )
        if value is None
    ]
    if missing:
        raise ValidationFailed.single(
            f"data.{missing[0]}",
            f"a measurement before deployment is a baseline, which needs {', '.join(missing)}",
        )
    return c.CaptureBaseline, {
        "baseline": {
            "metric": data.metric,
            "unit": data.unit,
            "value": data.value,
            "direction": data.direction,
            "measuredAt": occurred_at,
            "method": data.method,
        }
    }
