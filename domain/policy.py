"""Organisational policy: thresholds the gates judge by, event-sourced like everything else.

Every gate decision records the policy version it was judged under. Version 0 is the built-in
default, in force until the first ``setPolicy``.
"""

from __future__ import annotations

from typing import Any, ClassVar
from uuid import UUID, uuid5

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from domain.eventmodel import AggregateCreated, AggregateEvent, StatefulAggregate
from domain.metadata import EventMeta

STAGEGATE_NAMESPACE = UUID("7d3b1a52-5f0e-4d0c-9a57-3f1f4a6c2b10")
POLICY_ID = uuid5(STAGEGATE_NAMESPACE, "policy:organisation")


class PolicyValues(BaseModel):
    """The thresholds. Each has the default the spec names."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        use_attribute_docstrings=True,
    )

    measurement_window_days: int = Field(default=60, ge=1, le=3650)
    """After-state only counts when measured at least this long after the first deployment."""
    min_adoption: float = Field(default=0.5, ge=0.0, le=1.0)
    """Share of target users who must be active before scaling."""
    min_priority_score: int = Field(default=1, ge=1, le=5)
    """Each priority dimension must score at least this to leave ``proposed``."""
    stuck_after_days: int = Field(default=30, ge=1, le=3650)
    """A use case with no transition for this long counts as stuck."""
    min_improvement: float = Field(default=0.0, ge=0.0, le=100.0)
    """How much better than its baseline each outcome metric must be to scale, relative to
    the baseline (0.1: 10 % better); 0 means strictly better."""
    guardrail_tolerance: float = Field(default=0.05, ge=0.0, le=100.0)
    """How much worse than its baseline a guardrail metric may be, relative to the baseline
    (0.05: 5 % worse)."""


class PolicyState(BaseModel):
    values: PolicyValues


class Policy(StatefulAggregate[PolicyState]):
    """The organisation's single policy aggregate."""

    state_class = PolicyState

    class Event(AggregateEvent):
        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Version 2 adds the thresholds of ``IMPROVEMENT_SHOWN``; a policy set before
            them had their defaults (the gate did not exist, and it judges by those)."""
            state["values"].setdefault("min_improvement", 0.0)
            state["values"].setdefault("guardrail_tolerance", 0.05)

    class Defined(Event, AggregateCreated):
        class_version: ClassVar[int] = 2

        values: PolicyValues

        def apply(self, aggregate: Any) -> None:
            aggregate.state = PolicyState(values=self.values)

    class Changed(Event):
        class_version: ClassVar[int] = 2

        values: PolicyValues

        def apply(self, aggregate: Any) -> None:
            aggregate.state = PolicyState(values=self.values)

    @classmethod
    def define(cls, values: PolicyValues, meta: EventMeta) -> Policy:
        return cls._create(cls.Defined, id=POLICY_ID, values=values, meta=meta)

    def change(self, values: PolicyValues, meta: EventMeta) -> None:
        self.trigger_event(self.Changed, values=values, meta=meta)

    @property
    def values(self) -> PolicyValues:
        return self.state.values


class PolicyInForce(BaseModel):
    """The policy a decision is judged under, with the version an auditor can look up."""

    model_config = ConfigDict(frozen=True)

    version: int
    values: PolicyValues

    @classmethod
    def default(cls) -> PolicyInForce:
        return cls(version=0, values=PolicyValues())
